"""Card-side transports: plug the applet into vpcd (PC/SC) or an nfcpy ISO-DEP target.

A transport moves bytes between a reader and a card; the card is anything with
``process(c_apdu: bytes) -> bytes`` and ``reset()`` (a :class:`~hce.applet.CardApplet`).
:class:`TracedCard` wraps a card so that every exchange goes to tracers with the card's
processing time (docs/architecture.md, Conventions 10); the transports wrap their card in one.

``--via`` specifications (:func:`parse_via`)::

    vpcd[:HOST:PORT]        hce.transports.vpcd.VpcdCard   (default localhost:35963)
    nfc:udp[:HOST:PORT]     hce.transports.nfc.NfcCard     nfcpy's UDP driver (default localhost:54321)
    nfc:usb[:…]             hce.transports.nfc.NfcCard     a USB reader with target mode

>>> parse_via("vpcd")
('vpcd', 'localhost', 35963)
>>> parse_via("nfc:udp:127.0.0.1:50000")
('nfc', 'udp:127.0.0.1:50000', None)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from apdu.errors import TraceError
from apdu.trace import Tracer, TraceRecord
from hce.errors import TransportError

__all__ = ["Card", "TracedCard", "TransportError", "parse_via"]

VPCD_PORT = 35963
"""vsmartcard's vpcd listens for the virtual card on this TCP port (0x8C7B) by default."""

NFC_UDP_DEFAULT = "udp:localhost:54321"


class Card(Protocol):
    """What a transport drives: the applet's two methods."""

    def process(self, c_apdu: bytes) -> bytes:
        """Answer one command APDU."""

    def reset(self) -> None:
        """Power-on, reset or field-off: forget the selection."""


def parse_via(spec: str) -> tuple[str, str, int | None]:
    """Split a ``--via`` specification into (kind, host or nfcpy path, port or ``None``)."""
    kind, _, rest = spec.strip().partition(":")
    kind = kind.lower()
    if kind == "vpcd-listen":
        _, listen_host, listen_port = parse_via("vpcd:" + (rest or f"0.0.0.0:{VPCD_PORT}"))
        return "vpcd-listen", listen_host, listen_port
    if kind == "vpcd":
        if not rest:
            return "vpcd", "localhost", VPCD_PORT
        host, sep, port = rest.rpartition(":")
        if not sep:
            host, port = rest, str(VPCD_PORT)
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise TransportError(f"vpcd port must be 1..65535, got {port!r}")
        return "vpcd", host or "localhost", int(port)
    if kind == "nfc":
        path = rest or "usb"
        if path == "udp":
            path = NFC_UDP_DEFAULT
        if not (path.startswith("usb") or path.startswith("udp") or path.startswith("tty")):
            raise TransportError(f"nfc path must be udp[:HOST:PORT], usb[:…] or tty:…, got {path!r}")
        return "nfc", path, None
    raise TransportError(
        f"unknown --via {spec!r}: use vpcd[:HOST:PORT], vpcd-listen[:HOST:PORT], nfc:udp[:HOST:PORT] "
        "or nfc:usb[:…]")


class TracedCard:
    """A card whose exchanges are timed and sent to tracers; ``t`` counts from the tap's start.

    The tap starts at the first command after :meth:`reset` (power-on, field-on). ``ms`` on a
    response is the time the card took to answer (``time.perf_counter``), which is what the
    timing breakdown calls card time.
    """

    def __init__(self, card: Card, tracers: Sequence[Tracer] = (), *,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.card = card
        self.tracers = list(tracers)
        self._clock = clock
        self._start: float | None = None
        self.exchanges = 0

    def reset(self) -> None:
        """Reset the card and restart the tap clock."""
        self.card.reset()
        self._start = None

    def process(self, c_apdu: bytes) -> bytes:
        """Answer one command, tracing the command and the response."""
        began = self._clock()
        if self._start is None:
            self._start = began
        response = self.card.process(c_apdu)
        ended = self._clock()
        self.exchanges += 1
        if self.tracers:
            command = TraceRecord("C", c_apdu, t=round(began - self._start, 6)) if len(c_apdu) >= 4 else None
            self._emit(command)
            self._emit(TraceRecord("R", response, t=round(ended - self._start, 6),
                                   ms=round((ended - began) * 1000, 4)))
        return response

    def _emit(self, record: TraceRecord | None) -> None:
        if record is None:
            return
        for tracer in self.tracers:
            try:
                tracer(record)
            except TraceError:
                continue
