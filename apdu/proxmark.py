"""Bring in APDU traces recorded by a Proxmark3: the ``trace list`` of ISO/IEC 14443-A frames.

:func:`parse_pm3` takes the client's text output as lines and returns
:class:`apdu.trace.TraceRecord` values, commands and responses in wire order, like the pcsc-spy
reader of :mod:`apdu.importers` (which offers both by name). Whatever is not a frame row it can
read (banners, statistics, colour codes) is skipped and counted by :func:`parse_pm3_report`.

Proxmark3
---------
``trace list -t 14a`` (RRG/Iceman client) and ``hf 14a list`` / ``hf list 14a`` (older
clients) print one ISO/IEC 14443-A frame a row (``client/src/cmdtrace.c``)::

          Start |        End | Src | Data (! denotes parity error)            | CRC | Annotation
    ------------+------------+-----+------------------------------------------+-----+-----------
              0 |        992 | Rdr |52(7)                                     |     | WUPA
        1234567 |    1247603 | Rdr |02  00  a4  04  00  0e  32  50  41  59  2e  53  59  53  2e  44  44  46
                |            |     |30  31  00  a9  1f                        |  ok | I-Block

Times are in carrier periods (1/13.56 MHz); long frames continue on rows with empty Start,
End and Src. The parser joins those rows, drops the CRC_A (ISO/IEC 14443-3 §6.2.4, checked
when the CRC column is empty), skips the activation frames (REQA, WUPA, ANTICOLLISION,
SELECT, HLTA, RATS, PPS and the card's answers to them: ATQA, UID, SAK, ATS), the R-blocks
and S-blocks (ACK/NAK, WTX, DESELECT) and frames with a failed CRC, then removes the
ISO/IEC 14443-4 §7.1 block header (PCB, CID, NAD) from I-blocks and joins chained I-blocks
into whole APDUs. A command's ``t`` is the start of its first frame; a response's ``ms``
runs from the end of the command's last frame to the end of the response's last frame.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from apdu.trace import TraceRecord

__all__ = ["CARRIER_HZ", "crc_a", "parse_pm3", "parse_pm3_report"]

CARRIER_HZ = 13_560_000
"""The ISO/IEC 14443 carrier frequency, the unit of Proxmark3 trace times (ISO/IEC 14443-2 §6.1)."""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def crc_a(data: bytes) -> bytes:
    """CRC_A of ISO/IEC 14443-3 §6.2.4 (Annex B), low byte first, as it follows a frame.

    >>> crc_a(bytes.fromhex("0000")).hex(), crc_a(bytes.fromhex("1234")).hex()
    ('a01e', '26cf')
    """
    crc = 0x6363
    for byte in data:
        byte ^= crc & 0xFF
        byte ^= (byte << 4) & 0xFF
        crc = ((crc >> 8) ^ (byte << 8) ^ (byte << 3) ^ (byte >> 4)) & 0xFFFF
    return bytes((crc & 0xFF, crc >> 8))


@dataclass
class _Frame:
    """One row (or joined rows) of a Proxmark3 trace list."""

    line: int
    reader: bool
    start: int
    end: int
    data: bytearray = field(default_factory=bytearray)
    crc: str = ""
    partial: bool = False


_TOKEN = re.compile(r"^\[?([0-9A-Fa-f]{2})(?:!|\((\d+)\))?\]?$")
_SHORT_FRAMES = frozenset({0x26, 0x52})
_ACTIVATION_FIRST_BYTES = frozenset({0x93, 0x95, 0x97})


def _frame_bytes(column: str) -> tuple[bytes, bool] | None:
    """The frame's bytes, and whether it is partial-bit noise (a token of fewer than 8 bits that
    is not the 7-bit short frame REQA/WUPA of ISO/IEC 14443-3 §6.3.1)."""
    tokens = column.split()
    if not tokens:
        return None
    out = bytearray()
    partial = False
    for token in tokens:
        match = _TOKEN.match(token)
        if match is None:
            return None
        out.append(int(match.group(1), 16))
        bits = match.group(2)
        if bits is not None and int(bits) < 8:
            short = len(tokens) == 1 and int(bits) == 7 and out[0] in _SHORT_FRAMES
            partial = partial or not short
    return bytes(out), partial


def _pm3_frames(lines: Iterable[str]) -> list[_Frame]:
    frames: list[_Frame] = []
    current: _Frame | None = None
    for number, text in enumerate(lines, start=1):
        columns = _ANSI.sub("", text).split("|", 5)
        if len(columns) < 4:
            current = None
            continue
        start, end, source, data = (c.strip() for c in columns[:4])
        crc = columns[4].strip() if len(columns) > 4 else ""
        parsed = _frame_bytes(data)
        if not start and not end and not source:
            if current is not None and parsed is not None:
                current.data.extend(parsed[0])
                current.partial = current.partial or parsed[1]
                if crc:
                    current.crc = crc
            continue
        if source not in ("Rdr", "Tag") or parsed is None:
            current = None
            continue
        try:
            begin, finish = int(start), int(end)
        except ValueError:
            current = None
            continue
        current = _Frame(number, source == "Rdr", begin, finish, bytearray(parsed[0]), crc, parsed[1])
        frames.append(current)
    return frames


def _strip_crc(frame: _Frame) -> bytes | None:
    """The frame without its CRC_A, or ``None`` when the CRC failed."""
    data = bytes(frame.data)
    if frame.crc == "!crc":
        return None
    if frame.crc == "ok":
        return data[:-2]
    if len(data) >= 3 and crc_a(data[:-2]) == data[-2:]:
        return data[:-2]
    return data


def _is_activation(data: bytes) -> bool:
    """Reader frames of ISO/IEC 14443-3 §6.3 and 14443-4 §5 that come before any block."""
    first = data[0]
    return (
        (len(data) == 1 and first in (0x26, 0x52))
        or first in _ACTIVATION_FIRST_BYTES
        or (first == 0xE0 and len(data) == 2)
        or (first == 0x50 and len(data) == 2)
        or (first & 0xF0 == 0xD0 and len(data) in (2, 3))
    )


def _i_block_inf(data: bytes) -> tuple[bytes, bool, int] | None:
    """INF, chaining and block number of an I-block (ISO/IEC 14443-4 §7.1.1), else ``None``."""
    pcb = data[0]
    if pcb & 0xE2 != 0x02:
        return None
    header = 1 + (1 if pcb & 0x08 else 0) + (1 if pcb & 0x04 else 0)
    if len(data) < header:
        return None
    return data[header:], bool(pcb & 0x10), pcb & 0x01


@dataclass
class _Side:
    """The I-block chain being assembled from one side."""

    buffer: bytearray = field(default_factory=bytearray)
    first: _Frame | None = None
    last_block: int | None = None

    def add(self, frame: _Frame, inf: bytes, chaining: bool, number: int) -> tuple[_Frame, bytes] | None:
        """Add one I-block; at the chain's last block, the chain's first frame and its whole INF."""
        self.last_block = number
        if self.first is None:
            self.first = frame
        self.buffer.extend(inf)
        if chaining:
            return None
        first, raw = self.first, bytes(self.buffer)
        self.buffer, self.first = bytearray(), None
        return first, raw


def parse_pm3(lines: Iterable[str]) -> list[TraceRecord]:
    """Records from a Proxmark3 trace table (see :func:`parse_pm3_report`, which also counts noise).

    >>> rows = [
    ...     "   0 |    992 | Rdr |52(7)                         |     | WUPA",
    ...     "2228 |   4596 | Tag |44  00                          |     |",
    ...     "9000 |  19000 | Rdr |02  80  ca  9f  36  00  a4  d3 |  ok | I-Block",
    ...     "30000 | 40000 | Tag |02  9f  36  02  00  2a  90  00  24  6d |  ok |",
    ... ]
    >>> [(r.dir, r.hex) for r in parse_pm3(rows)]
    [('C', '80CA9F3600'), ('R', '9F3602002A9000')]
    """
    return parse_pm3_report(lines)[0]


def parse_pm3_report(lines: Iterable[str]) -> tuple[list[TraceRecord], int]:
    """Records from a Proxmark3 ``trace list -t 14a`` / ``hf 14a list`` table (see module docstring),
    and how many noise frames were skipped.

    A real sniff catches noise: frames of a few bits (``02(3)``), or I-blocks that carry too little
    to be an APDU. They are skipped and counted instead of ending the import.
    """
    records: list[TraceRecord] = []
    noise = 0
    reader, card = _Side(), _Side()
    answer_is_block = False
    awaiting_response = False
    reader_spoke = False
    command_end: int | None = None
    for frame in _pm3_frames(lines):
        if frame.partial:
            noise += 1
            continue
        data = _strip_crc(frame)
        if not data:
            continue
        if frame.reader:
            if _is_activation(data):
                answer_is_block = awaiting_response = False
                reader, card = _Side(), _Side()
                continue
            answer_is_block = True
            if data[0] & 0xF7 == 0xC2:
                awaiting_response = False
                reader, card = _Side(), _Side()
                continue
            block = _i_block_inf(data)
            if block is None:
                continue
            inf, chaining, number = block
            if number == reader.last_block and awaiting_response and not reader.buffer:
                continue
            reader_spoke = True
            chain = reader.add(frame, inf, chaining, number)
            if chain is None:
                continue
            first, raw = chain
            if len(raw) < 4:
                noise += 1
                continue
            records.append(TraceRecord("C", raw, t=first.start / CARRIER_HZ))
            command_end = frame.end
            awaiting_response = True
            continue
        if not answer_is_block:
            continue
        block = _i_block_inf(data)
        if block is None:
            continue
        inf, chaining, number = block
        if number == card.last_block and not reader_spoke:
            continue
        reader_spoke = False
        chain = card.add(frame, inf, chaining, number)
        if chain is None:
            continue
        first, raw = chain
        if len(raw) < 2:
            noise += 1
            continue
        ms = (frame.end - command_end) * 1000 / CARRIER_HZ if command_end is not None else None
        records.append(TraceRecord("R", raw, t=first.start / CARRIER_HZ, ms=ms))
        awaiting_response = False
    return records, noise
