"""The 500 ms budget, instrumented: per-APDU, per-phase and whole-tap timing of one tap.

A contactless tap has to finish while the card is in the field; EMV Contactless Book A §5
sets the target at 500 ms from the first command to the outcome, and field measurements put
phone taps at 165-250 ms and plastic cards at 250-800 ms. :class:`TapTiming` keeps what a
runner measured against that budget:

- per APDU the round trip, the card's own time (when the transport can tell it apart: the
  in-process card and a replayed trace can, a USB reader cannot) and so the transport's time;
- per phase (SELECT PPSE, SELECT AID, GET PROCESSING OPTIONS, READ RECORD, GENERATE AC,
  authorization) its start and length, for a waterfall;
- the terminal's own processing (the tap minus its round trips), the authorization round trip
  and the total.

The values are plain milliseconds measured by the runner with ``time.perf_counter``; nothing
here reads a clock.

>>> t = TapTiming(apdus=(), phases=(), tap_ms=12.0, authorization_ms=8.0)
>>> t.total_ms, t.budget_left_ms
(20.0, 480.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

BUDGET_MS = 500.0
"""The contactless transaction time budget (EMV Contactless Book A §5, "Performance")."""

#: Phase names in tap order, with the label people see.
PHASES: dict[str, str] = {
    "select_ppse": "SELECT PPSE",
    "select_aid": "SELECT AID",
    "gpo": "GET PROCESSING OPTIONS",
    "read_record": "READ RECORD",
    "internal_authenticate": "INTERNAL AUTHENTICATE",
    "compute_cryptographic_checksum": "COMPUTE CRYPTOGRAPHIC CHECKSUM",
    "generate_ac": "GENERATE AC",
    "terminal": "terminal processing",
    "authorization": "authorization",
}


@dataclass(frozen=True, slots=True)
class ApduTiming:
    """One command/response exchange as it crossed the transport.

    ``start_ms`` is measured from the start of the tap; ``card_ms`` is ``None`` when the
    transport cannot separate the card's time from its own.
    """

    phase: str
    name: str
    command: bytes
    response: bytes
    start_ms: float
    round_trip_ms: float
    card_ms: float | None = None

    @property
    def transport_ms(self) -> float | None:
        """Round trip minus the card's time, or ``None`` when the card's time is unknown."""
        if self.card_ms is None:
            return None
        return max(self.round_trip_ms - self.card_ms, 0.0)

    @property
    def sw(self) -> str:
        """The response's status word as four hex digits."""
        return self.response[-2:].hex().upper() if len(self.response) >= 2 else ""

    def to_json(self, *, masked: bool = True) -> dict[str, Any]:
        """A JSON-ready dict; the APDUs' bytes go through :func:`apdu.trace.mask_apdu` unless unmasked."""
        command, response = self.command, self.response
        if masked:
            from apdu.trace import mask_apdu

            command, response = mask_apdu(command, "C"), mask_apdu(response, "R")
        return {
            "phase": self.phase,
            "name": self.name,
            "command": command.hex().upper(),
            "response": response.hex().upper(),
            "sw": self.sw,
            "start_ms": round(self.start_ms, 3),
            "round_trip_ms": round(self.round_trip_ms, 3),
            "card_ms": None if self.card_ms is None else round(self.card_ms, 3),
            "transport_ms": None if self.transport_ms is None else round(self.transport_ms, 3),
        }


@dataclass(frozen=True, slots=True)
class Phase:
    """A stretch of the tap: its name (a key of :data:`PHASES`), start and length in ms."""

    name: str
    start_ms: float
    ms: float

    @property
    def label(self) -> str:
        """The phase as people read it."""
        return PHASES.get(self.name, self.name)


@dataclass(frozen=True, slots=True)
class TapTiming:
    """Everything timed in one tap, compared with the 500 ms budget."""

    apdus: tuple[ApduTiming, ...]
    phases: tuple[Phase, ...]
    tap_ms: float
    authorization_ms: float | None = None
    budget_ms: float = BUDGET_MS

    @property
    def round_trip_ms(self) -> float:
        """All exchanges' round trips added."""
        return sum(a.round_trip_ms for a in self.apdus)

    @property
    def card_ms(self) -> float | None:
        """The card's time over all exchanges, or ``None`` when no exchange could tell it."""
        known = [a.card_ms for a in self.apdus if a.card_ms is not None]
        return sum(known) if known else None

    @property
    def transport_ms(self) -> float:
        """Round trips minus the card's known time."""
        return max(self.round_trip_ms - (self.card_ms or 0.0), 0.0)

    @property
    def terminal_ms(self) -> float:
        """The terminal's own processing: the tap less its round trips."""
        return max(self.tap_ms - self.round_trip_ms, 0.0)

    @property
    def total_ms(self) -> float:
        """The tap plus the authorization round trip."""
        return self.tap_ms + (self.authorization_ms or 0.0)

    @property
    def budget_left_ms(self) -> float:
        """What is left of the budget (negative when over it)."""
        return self.budget_ms - self.total_ms

    def to_json(self, *, masked: bool = True) -> dict[str, Any]:
        """A JSON-ready dict: totals, one entry per phase and one per APDU."""
        card = self.card_ms

        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        return {
            "total_ms": r(self.total_ms),
            "tap_ms": r(self.tap_ms),
            "card_ms": r(card),
            "transport_ms": r(self.transport_ms),
            "terminal_ms": r(self.terminal_ms),
            "authorization_ms": r(self.authorization_ms),
            "budget_ms": self.budget_ms,
            "budget_left_ms": r(self.budget_left_ms),
            "phases": [
                {"name": p.name, "label": p.label, "start_ms": r(p.start_ms), "ms": r(p.ms)}
                for p in self.phases
            ],
            "apdus": [a.to_json(masked=masked) for a in self.apdus],
        }


def phases_of(
    apdus: tuple[ApduTiming, ...], tap_ms: float, authorization_ms: float | None = None
) -> tuple[Phase, ...]:
    """The waterfall's phases: one per run of exchanges of the same phase, then terminal and authorization.

    Consecutive exchanges of one phase (a READ RECORD per AFL entry, a GET RESPONSE after 61XX)
    form one phase from the first one's start to the last one's end.
    """
    phases: list[Phase] = []
    for a in apdus:
        end = a.start_ms + a.round_trip_ms
        if phases and phases[-1].name == a.phase:
            first = phases[-1]
            phases[-1] = Phase(first.name, first.start_ms, end - first.start_ms)
        else:
            phases.append(Phase(a.phase, a.start_ms, a.round_trip_ms))
    round_trips = sum(a.round_trip_ms for a in apdus)
    phases.append(Phase("terminal", 0.0, max(tap_ms - round_trips, 0.0)))
    if authorization_ms is not None:
        phases.append(Phase("authorization", tap_ms, authorization_ms))
    return tuple(phases)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` by nearest rank; ``nan`` for no values.

    Every latency figure hcekit prints (``hcekit bench``, ``benchmarks/``) uses this one definition.

    >>> percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50), percentile([5.0, 1.0, 3.0, 2.0, 4.0], 99)
    (3.0, 5.0)
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
