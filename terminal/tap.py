"""The tap runner: drives the sans-I/O kernel over a transport, times it, and asks the host.

This is where the kernel meets I/O and the clock (docs/architecture.md, "Sans-I/O cores"): the runner
feeds each command to a :class:`~terminal.transmission.Transmission`, feeds the response back,
measures the tap with ``time.perf_counter``, and, for an online request, sends the
authorization to the host and finishes the outcome with its answer.

>>> from terminal.transports.replay import ReplayTransport
>>> from apdu.trace import TraceRecord
>>> card = ReplayTransport([TraceRecord("C", bytes.fromhex("00A404000E325041592E5359532E444446303100")),
...                         TraceRecord("R", bytes.fromhex("6A82"))])
>>> result = run_tap(card, Transaction(amount=100))
>>> result.outcome.outcome.value, len(result.timing.apdus)
('try_another_interface', 1)
"""

from __future__ import annotations

import dataclasses
import datetime
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from apdu.trace import Tracer
from terminal.config import TerminalConfig, Transaction
from terminal.kernel import Kernel, UnpredictableSource
from terminal.outcome import HostAnswer, KernelOutcome, Outcome, authorization_request, finish
from terminal.timing import TapTiming, phases_of
from terminal.transmission import Transmission
from terminal.transports.base import Transport


class Authorizer(Protocol):
    """Anything that answers an authorization request body (:class:`terminal.host.AuthorizationClient`)."""

    def authorize(self, body: dict[str, Any]) -> HostAnswer:
        """Send ``body`` and return the host's answer."""


@dataclass(frozen=True, slots=True)
class TapResult:
    """A finished tap: the outcome, its timing, and the request sent to the host (if any)."""

    outcome: KernelOutcome
    timing: TapTiming
    request: dict[str, Any] | None = None

    def to_json(self, *, masked: bool = True) -> dict[str, Any]:
        """The outcome's fields, ``timing``, and the authorization data; masked unless told not to."""
        doc = self.outcome.to_json(masked=masked)
        doc["timing"] = self.timing.to_json(masked=masked)
        return doc


def today() -> str:
    """Today's date as EMV's Transaction Date (9A) digits, YYMMDD, local time."""
    return datetime.date.today().strftime("%y%m%d")


def now_time() -> str:
    """The time of day as EMV's Transaction Time (9F21) digits, HHMMSS, local time."""
    return datetime.datetime.now().strftime("%H%M%S")


def run_tap(
    transport: Transport,
    transaction: Transaction,
    *,
    config: TerminalConfig | None = None,
    host: Authorizer | None = None,
    tracers: Sequence[Tracer] = (),
    unpredictable: UnpredictableSource = secrets.token_bytes,
    clock: Callable[[], float] = time.perf_counter,
) -> TapResult:
    """Run one tap over ``transport``; with ``host`` an online request is sent and finished.

    Transport errors (:class:`~terminal.errors.CardRemoved` …) and host errors propagate.
    """
    config = config or TerminalConfig()
    if transaction.time is None:
        transaction = dataclasses.replace(transaction, time=now_time())
    started = clock()
    transmission = Transmission(transport, tracers=tracers, clock=clock, started=started)
    kernel = Kernel(config, transaction, unpredictable=unpredictable)
    command = kernel.start()
    while command is not None:
        response = transmission.exchange(command, kernel.step)
        command = kernel.receive(response)
    tap_ms = (clock() - started) * 1000.0
    outcome = kernel.outcome
    assert outcome is not None
    request = None
    authorization_ms = None
    if host is not None and outcome.outcome is Outcome.ONLINE_REQUEST:
        request = authorization_request(outcome, terminal_id=config.terminal_id)
        sent = clock()
        answer = host.authorize(request)
        authorization_ms = (clock() - sent) * 1000.0
        outcome = finish(outcome, answer)
    apdus = tuple(transmission.exchanges)
    timing = TapTiming(
        apdus=apdus,
        phases=phases_of(apdus, tap_ms, authorization_ms),
        tap_ms=tap_ms,
        authorization_ms=authorization_ms,
    )
    return TapResult(outcome=outcome, timing=timing, request=request)
