"""The transmission layer: one kernel command in, one complete response out, timed and traced.

Between the kernel and the transport sits the work of ISO/IEC 7816-3/-4 that the kernel should
not see (docs/architecture.md, Conventions 3; after russss/python-emv ``emv/transmission.py``):

- SW 61XX: the card has XX more bytes; fetch them with GET RESPONSE (ISO/IEC 7816-4 §7.6.1,
  EMV 4.4 Book 1 §9.3.1.3) and append them, until the card says 9000 or something else;
- SW 6CXX: the Le was wrong; resend the same command with Le = XX, once (ISO/IEC 7816-4 §5.6,
  EMV 4.4 Book 1 §9.3.1.3).

Each wire exchange is timed with the runner's clock and recorded as an
:class:`~terminal.timing.ApduTiming`, and every APDU is handed to the tracers as an
:class:`apdu.trace.TraceRecord` with ``t`` (seconds since the tap began) and, for responses,
``ms`` (the card's time, or the round trip when the transport cannot tell them apart).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from apdu.command import CommandAPDU, GetResponse
from apdu.response import ResponseAPDU
from apdu.sw import family
from apdu.trace import Tracer, TraceRecord
from terminal.errors import TransportError
from terminal.timing import ApduTiming
from terminal.transports.base import Transport

MAX_GET_RESPONSE = 32
"""How many GET RESPONSE a single command may need before the card is deemed broken."""


class Transmission:
    """Sends kernel commands over a transport, resolving 61XX and 6CXX, timing each exchange.

    ``clock`` returns seconds (``time.perf_counter``); ``started`` is the tap's start on that
    clock (default: when the transmission is created).
    """

    def __init__(
        self,
        transport: Transport,
        *,
        tracers: Sequence[Tracer] = (),
        clock: Callable[[], float] = time.perf_counter,
        started: float | None = None,
    ) -> None:
        self.transport = transport
        self.tracers = tuple(tracers)
        self.clock = clock
        self.started = clock() if started is None else started
        self.exchanges: list[ApduTiming] = []

    def exchange(self, command: CommandAPDU, phase: str = "") -> ResponseAPDU:
        """Send ``command``; return the complete response after any 6CXX resend and 61XX fetches."""
        response = self._wire(command, phase)
        if family(response.sw) == "6CXX":
            command = command.with_le(response.sw2 or 256)
            response = self._wire(command, phase)
        data = b""
        fetched = 0
        while family(response.sw) == "61XX":
            fetched += 1
            if fetched > MAX_GET_RESPONSE:
                raise TransportError(f"the card asked for more than {MAX_GET_RESPONSE} GET RESPONSE")
            data += response.data
            response = self._wire(GetResponse(response.sw2), phase)
            if family(response.sw) == "6CXX":
                response = self._wire(GetResponse(response.sw2), phase)
        if data:
            response = ResponseAPDU(data + response.data, response.sw1, response.sw2)
        return response

    def _wire(self, command: CommandAPDU, phase: str) -> ResponseAPDU:
        raw = command.to_bytes()
        begin = self.clock()
        self._trace(TraceRecord("C", raw, t=begin - self.started))
        answer = self.transport.transmit(raw)
        end = self.clock()
        round_trip = (end - begin) * 1000.0
        card_ms = self.transport.last_card_ms
        if len(answer) < 2:
            raise TransportError("the reader returned fewer than two bytes")
        self._trace(TraceRecord("R", answer, t=end - self.started,
                                ms=card_ms if card_ms is not None else round_trip))
        self.exchanges.append(ApduTiming(
            phase=phase,
            name=command.name,
            command=raw,
            response=answer,
            start_ms=(begin - self.started) * 1000.0,
            round_trip_ms=round_trip,
            card_ms=card_ms,
        ))
        return ResponseAPDU.from_bytes(answer)

    def _trace(self, record: TraceRecord) -> None:
        for tracer in self.tracers:
            tracer(record)
