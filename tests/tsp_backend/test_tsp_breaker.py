"""Tests for networks.Gate: pybreaker's rules without its lock around the network call."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pybreaker
import pytest

from tests.tsp_backend.tsp_helpers import Servers
from tsp_backend.services.networks import BREAKER_REFRESH_S, Gate, SharedBreakerStorage


class NetworkDown(Exception):
    """A failure of the network (counts towards opening the breaker)."""


def _breaker(fail_max: int = 2) -> pybreaker.CircuitBreaker:
    return pybreaker.CircuitBreaker(fail_max=fail_max, reset_timeout=60, throw_new_error_on_trip=False)


def _down() -> None:
    raise NetworkDown("no answer")


def test_calls_run_concurrently_through_one_breaker() -> None:
    """Two threads are inside the guarded call at once (pybreaker's own call would serialize them)."""
    gate = Gate(_breaker())
    both_inside = threading.Barrier(2, timeout=10)

    def network_call() -> str:
        both_inside.wait()
        return "answered"

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: gate.call(network_call), range(2)))
    assert answers == ["answered", "answered"]
    assert gate.breaker.current_state == pybreaker.STATE_CLOSED


def test_failures_open_the_breaker_then_it_fails_fast() -> None:
    """fail_max failures open the breaker; the next call fails fast without reaching the network."""
    gate = Gate(_breaker(fail_max=2))
    reached = []

    def failing() -> None:
        reached.append(1)
        _down()

    for _ in range(2):
        with pytest.raises(NetworkDown):
            gate.call(failing)
    assert gate.breaker.current_state == pybreaker.STATE_OPEN
    with pytest.raises(pybreaker.CircuitBreakerError):
        gate.call(failing)
    assert len(reached) == 2


def test_success_resets_the_failure_count() -> None:
    """A success between failures keeps the breaker closed, as with pybreaker's own call."""
    gate = Gate(_breaker(fail_max=2))
    with pytest.raises(NetworkDown):
        gate.call(_down)
    assert gate.call(lambda: 42) == 42
    with pytest.raises(NetworkDown):
        gate.call(_down)
    assert gate.breaker.current_state == pybreaker.STATE_CLOSED
    assert gate.breaker.fail_counter == 1


def test_a_breaker_opened_elsewhere_fails_fast_at_once() -> None:
    """Two gates on one breaker (two processes sharing its storage): once one opens it, the other
    fails fast without reaching the network."""
    breaker = _breaker(fail_max=1)
    tripping, other = Gate(breaker), Gate(breaker)
    with pytest.raises(NetworkDown):
        tripping.call(_down)
    reached = []
    with pytest.raises(pybreaker.CircuitBreakerError):
        other.call(lambda: reached.append(1))
    assert reached == []


def test_an_answer_stands_when_the_breaker_opened_during_the_call() -> None:
    """A call answered while another thread tripped the breaker returns its answer, not an error."""
    gate = Gate(_breaker(fail_max=1))

    def answered_while_tripping() -> str:
        with pytest.raises(NetworkDown):
            gate.breaker.call(_down)
        assert gate.breaker.current_state == pybreaker.STATE_OPEN
        return "approved"

    assert gate.call(answered_while_tripping) == "approved"


# ---------------------------------------------------------------------------- shared through Redis


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _shared(redis: Any, clock: _Clock, namespace: str) -> pybreaker.CircuitBreaker:
    storage = SharedBreakerStorage(pybreaker.STATE_CLOSED, redis, namespace, clock=clock)
    return pybreaker.CircuitBreaker(
        fail_max=2, reset_timeout=60, state_storage=storage, throw_new_error_on_trip=False
    )


def _commands(redis: Any) -> int:
    return sum(int(v["calls"]) for v in redis.info("commandstats").values())


@pytest.mark.integration
def test_successes_cost_no_redis_command(servers: Servers) -> None:
    """Once the state is read, fifty successful calls send Redis nothing (pybreaker's storage: 150)."""
    clock = _Clock()
    gate = Gate(_shared(servers.redis, clock, "test:quiet"))
    assert gate.call(lambda: "warm") == "warm"
    before = _commands(servers.redis)
    for _ in range(50):
        assert gate.call(lambda: "ok") == "ok"
    assert _commands(servers.redis) - before == 1  # the INFO of _commands itself


@pytest.mark.integration
def test_a_trip_reaches_another_process_within_the_refresh(servers: Servers) -> None:
    """Two processes' breakers on one Redis: one trips; the other fails fast once its copy is due."""
    clock = _Clock()
    tripping = Gate(_shared(servers.redis, clock, "test:trip"))
    other = Gate(_shared(servers.redis, clock, "test:trip"))
    assert other.call(lambda: "ok") == "ok"
    for _ in range(2):
        with pytest.raises(NetworkDown):
            tripping.call(_down)
    assert tripping.breaker.current_state == pybreaker.STATE_OPEN
    clock.now += BREAKER_REFRESH_S
    reached: list[int] = []
    with pytest.raises(pybreaker.CircuitBreakerError):
        other.call(lambda: reached.append(1))
    assert reached == []


@pytest.mark.integration
def test_failures_of_two_processes_add_up_and_a_success_resets_them(servers: Servers) -> None:
    """The failure counter is shared: one failure in each process opens a breaker of fail_max 2,
    unless a success in between reset it."""
    clock = _Clock()
    first = Gate(_shared(servers.redis, clock, "test:count"))
    second = Gate(_shared(servers.redis, clock, "test:count"))
    with pytest.raises(NetworkDown):
        first.call(_down)
    clock.now += BREAKER_REFRESH_S
    assert second.call(lambda: "ok") == "ok"
    with pytest.raises(NetworkDown):
        second.call(_down)
    assert second.breaker.current_state == pybreaker.STATE_CLOSED
    with pytest.raises(NetworkDown):
        first.call(_down)
    assert first.breaker.current_state == pybreaker.STATE_OPEN
