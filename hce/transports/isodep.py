"""ISO/IEC 14443-4 (ISO-DEP) for the card side, sans-I/O: RATS/ATS and the block protocol.

Why it is shaped so
-------------------
Between a contactless reader and a card, APDUs travel in blocks (ISO/IEC 14443-4 §7.1):

    I-block   PCB 0000 001x (+ 0x10 chaining, + 0x08 CID, + 0x04 NAD): a piece of an APDU
    R-block   PCB 1010 001x (ACK) or 1011 001x (NAK): "send the next piece" / "say again"
    S-block   PCB 1100 0010 DESELECT, 1111 0010 WTX (waiting time extension)

The last bit of an I- or R-block is the block number. The card follows the rules of §7.5.4:
it toggles its block number when an I-block arrives (rule D) and when an R(ACK) with another
number arrives (rule E); an R-block with its own number makes it send its last block again
(rule 11); an R(NAK) with another number gets an R(ACK) (rule 12). A command longer than the
card's frame size arrives in chained I-blocks, each acknowledged with R(ACK); a response longer
than the reader's frame size (FSD, from RATS) is sent in chained I-blocks, each fetched by the
reader's R(ACK). A card that needs longer than the frame waiting time (FWT, from FWI in the ATS)
asks for more with S(WTX) and continues when the reader echoes it (§7.3).

:class:`IsoDepTarget` is that machine with no I/O, like the applet: feed it each frame the
reader sent, get back what to do -- send a frame, hand a complete APDU to the card, or stop
after DESELECT. :mod:`hce.transports.nfc` moves the frames.

>>> target = IsoDepTarget()
>>> target.rats(bytes.fromhex("E080")).hex().upper()
'0578808002'
>>> event = target.receive(bytes.fromhex("0200A4040000"))
>>> type(event).__name__, event.apdu.hex().upper()
('Apdu', '00A4040000')
>>> target.respond(bytes.fromhex("9000")).hex().upper()
'029000'
"""

from __future__ import annotations

from dataclasses import dataclass

from hce.errors import TransportError

__all__ = ["FSC_TABLE", "Apdu", "Deselected", "Ignore", "IsoDepTarget", "Send", "WtxAccepted"]

FSC_TABLE = (16, 24, 32, 40, 48, 64, 96, 128, 256)
"""Frame sizes for FSCI/FSDI 0..8 (ISO/IEC 14443-4 §5.2.3, Table 1); 9-F are treated as 256."""

_EDC = 2
"""The CRC bytes each frame carries on the air, counted in FSD/FSC though drivers add them."""


@dataclass(frozen=True, slots=True)
class Send:
    """Send this frame to the reader, then wait for its next frame."""

    frame: bytes


@dataclass(frozen=True, slots=True)
class Apdu:
    """A whole command APDU arrived: process it, then send :meth:`IsoDepTarget.respond`."""

    apdu: bytes


@dataclass(frozen=True, slots=True)
class Deselected:
    """S(DESELECT) arrived: send this frame and wait for the next activation."""

    frame: bytes


@dataclass(frozen=True, slots=True)
class WtxAccepted:
    """The reader echoed S(WTX): the card has ``wtxm`` times FWT for its answer."""

    wtxm: int


@dataclass(frozen=True, slots=True)
class Ignore:
    """A frame the card does not answer (ISO/IEC 14443-4 §7.5.5: invalid blocks are ignored)."""

    reason: str


Event = Send | Apdu | Deselected | WtxAccepted | Ignore


class IsoDepTarget:
    """The card side of ISO-DEP (module docstring).

    ``fsci`` is the card's frame size index (8: 256 bytes), ``fwi`` its frame waiting time
    integer (FWT = 256 · 16 / fc · 2^FWI; 8 is 77 ms), ``historical`` the ATS historical bytes.
    """

    def __init__(self, *, fsci: int = 8, fwi: int = 8, historical: bytes = b"") -> None:
        if not 0 <= fsci <= 8 or not 0 <= fwi <= 14:
            raise TransportError("FSCI must be 0..8 and FWI 0..14 (ISO/IEC 14443-4 §5.2.3-5.2.5)")
        self.fsci, self.fwi, self.historical = fsci, fwi, historical
        self.fsd = 256
        self.cid: int | None = None
        self.active = False
        self._block = 1
        self._command = bytearray()
        self._pending = b""
        self._last = b""

    @property
    def fwt(self) -> float:
        """The frame waiting time in seconds (ISO/IEC 14443-4 §7.2: 256 · 16 / fc · 2^FWI)."""
        return 256 * 16 / 13.56e6 * (1 << self.fwi)

    @property
    def ats(self) -> bytes:
        """ATS (§5.2): TL T0 TA TB TC historical; TA 80 (106 kbit/s only), TC 02 (CID supported)."""
        body = bytes((0x70 | self.fsci, 0x80, (self.fwi << 4) | 0x00, 0x02)) + self.historical
        return bytes((len(body) + 1,)) + body

    def rats(self, frame: bytes) -> bytes:
        """Answer RATS (``E0 FSDI|CID``, §5.1) with the ATS; the block protocol starts."""
        if len(frame) != 2 or frame[0] != 0xE0:
            raise TransportError("RATS is two bytes starting E0 (ISO/IEC 14443-4 §5.1)")
        fsdi, cid = frame[1] >> 4, frame[1] & 0x0F
        self.fsd = FSC_TABLE[min(fsdi, 8)]
        self.cid = cid if cid else None
        self.active = True
        self._block = 1
        self._command.clear()
        self._pending = b""
        self._last = b""
        return self.ats

    # ------------------------------------------------------------------ frames in

    def receive(self, frame: bytes) -> Event:
        """What to do with one frame from the reader."""
        if not frame:
            return Ignore("empty frame")
        pcb = frame[0]
        offset = 1 + bool(pcb & 0x08) + bool(pcb & 0xE2 == 0x02 and pcb & 0x04)
        if len(frame) < offset:
            return Ignore("frame shorter than its header")
        if pcb & 0xE2 == 0x02:
            return self._i_block(pcb, frame[offset:])
        if pcb & 0xE6 == 0xA2:
            return self._r_block(pcb)
        if pcb & 0xF7 == 0xC2:
            self.active = False
            return Deselected(self._header(0xC2))
        if pcb & 0xF7 == 0xF2:
            if len(frame) <= offset:
                return Ignore("S(WTX) without WTXM")
            return WtxAccepted(frame[offset] & 0x3F)
        return Ignore(f"unknown PCB {pcb:02X}")

    def _i_block(self, pcb: int, inf: bytes) -> Event:
        self._block ^= 1
        self._command += inf
        if pcb & 0x10:
            return self._send(self._header(0xA2 | self._block))
        apdu = bytes(self._command)
        self._command.clear()
        return Apdu(apdu)

    def _r_block(self, pcb: int) -> Event:
        number = pcb & 0x01
        nak = bool(pcb & 0x10)
        if number == self._block:
            return Send(self._last) if self._last else Ignore("nothing to send again")
        if nak:
            return self._send(self._header(0xA2 | self._block))
        if self._pending:
            self._block ^= 1
            return self._send(self._next_chunk())
        return Ignore("R(ACK) with nothing left to send")

    # ------------------------------------------------------------------ frames out

    def respond(self, r_apdu: bytes) -> bytes:
        """The first frame of the response to the APDU just delivered (chained if needed)."""
        self._pending = bytes(r_apdu)
        return self._remember(self._next_chunk())

    def wtx(self, wtxm: int = 1) -> bytes:
        """S(WTX) asking for ``wtxm`` (1..59) times FWT more (§7.3)."""
        if not 1 <= wtxm <= 59:
            raise TransportError("WTXM must be 1..59 (ISO/IEC 14443-4 §7.3)")
        return self._header(0xF2) + bytes((wtxm,))

    def _header(self, pcb: int) -> bytes:
        if self.cid is not None:
            return bytes((pcb | 0x08, self.cid))
        return bytes((pcb,))

    def _next_chunk(self) -> bytes:
        header_length = 1 + (self.cid is not None)
        room = max(self.fsd - _EDC - header_length, 1)
        chunk, self._pending = self._pending[:room], self._pending[room:]
        pcb = 0x02 | self._block | (0x10 if self._pending else 0)
        return self._header(pcb) + chunk

    def _send(self, frame: bytes) -> Send:
        return Send(self._remember(frame))

    def _remember(self, frame: bytes) -> bytes:
        self._last = frame
        return frame
