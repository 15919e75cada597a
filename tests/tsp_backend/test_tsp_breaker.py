"""Tests for networks.call_through: pybreaker's rules without its lock around the network call."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pybreaker
import pytest

from tsp_backend.services.networks import call_through


class NetworkDown(Exception):
    """A failure of the network (counts towards opening the breaker)."""


def _breaker(fail_max: int = 2) -> pybreaker.CircuitBreaker:
    return pybreaker.CircuitBreaker(fail_max=fail_max, reset_timeout=60, throw_new_error_on_trip=False)


def test_calls_run_concurrently_through_one_breaker() -> None:
    """Two threads are inside the guarded call at once (pybreaker's own call would serialize them)."""
    breaker = _breaker()
    both_inside = threading.Barrier(2, timeout=10)

    def network_call() -> str:
        both_inside.wait()
        return "answered"

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: call_through(breaker, network_call), range(2)))
    assert answers == ["answered", "answered"]
    assert breaker.current_state == pybreaker.STATE_CLOSED


def test_failures_open_the_breaker_then_it_fails_fast() -> None:
    """fail_max failures open the breaker; the next call fails fast without reaching the network."""
    breaker = _breaker(fail_max=2)
    reached = []

    def failing() -> None:
        reached.append(1)
        raise NetworkDown("no answer")

    for _ in range(2):
        with pytest.raises(NetworkDown):
            call_through(breaker, failing)
    assert breaker.current_state == pybreaker.STATE_OPEN
    with pytest.raises(pybreaker.CircuitBreakerError):
        call_through(breaker, failing)
    assert len(reached) == 2


def test_success_resets_the_failure_count() -> None:
    """A success between failures keeps the breaker closed, as with pybreaker's own call."""
    breaker = _breaker(fail_max=2)
    with pytest.raises(NetworkDown):
        call_through(breaker, lambda: (_ for _ in ()).throw(NetworkDown("x")))
    assert call_through(breaker, lambda: 42) == 42
    with pytest.raises(NetworkDown):
        call_through(breaker, lambda: (_ for _ in ()).throw(NetworkDown("x")))
    assert breaker.current_state == pybreaker.STATE_CLOSED
    assert breaker.fail_counter == 1


def test_an_answer_stands_when_the_breaker_opened_during_the_call() -> None:
    """A call answered while another thread tripped the breaker returns its answer, not an error."""
    breaker = _breaker(fail_max=1)

    def answered_while_tripping() -> str:
        with pytest.raises(NetworkDown):
            breaker.call(lambda: (_ for _ in ()).throw(NetworkDown("trip")))
        assert breaker.current_state == pybreaker.STATE_OPEN
        return "approved"

    assert call_through(breaker, answered_while_tripping) == "approved"
