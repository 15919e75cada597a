"""Bring in APDU traces recorded by other tools: pcsc-spy and the Proxmark3 ``trace list``.

Both parsers take the tool's text output as lines and return :class:`apdu.trace.TraceRecord`
values, commands and responses in wire order. They are lenient about what is not an APDU
(banners, statistics, colour codes) and strict about what is: an APDU line that contradicts
itself raises :class:`apdu.errors.TraceError` with its line number.

pcsc-spy
--------
``pcsc-spy`` (pcsc-lite, ``src/spy/pcsc-spy``) prints each PC/SC call as its name, its input
parameters on lines starting ``i``, its outputs on lines starting ``o`` and its result on a
line starting ``=>`` that ends with the call's duration in seconds::

    SCardTransmit
     i hCard: 0x3E5D8A2B
     i pioSendPci.dwProtocol: 0x00000002
     i pioSendPci.cbPciLength: 0x00000008
     i bSendLength 0x00000014 (20)
     i bSendBuffer
     i  0000 00 A4 04 00 0E 32 50 41 59 2E 53 59 53 2E 44 44 .....2PAY.SYS.DD
     i  0010 46 30 31 00                                     F01.
     o pioRecvPci.dwProtocol: 0x00000002
     o pioRecvPci.cbPciLength: 0x00000008
     o bRecvLength 0x00000002 (2)
     o bRecvBuffer
     o  0000 6A 82                                           j.
     => Command successful. (SCARD_S_SUCCESS [0x00000000])  [0.013021]

Buffers are hex dumps of 16 bytes a line (offset, hex, ASCII); versions before pcsc-lite
1.8 printed the hex on the ``bSendBuffer`` line itself. Only successful ``SCardTransmit``
calls become records. pcsc-spy prints durations, not clock times, so ``t`` counts the time
spent inside ``SCardTransmit`` since the first one, and a response's ``ms`` is its call's
duration. Every output mode is read: colour codes (the default), ``-n``, ``-d`` (times print as
``[??.??]``: no ``ms``), and the indentation of multi-threaded programs or, with ``-t``, the
``(tN)`` prefix that pcsc-spy puts before every line's own leading space; each thread's calls
are followed separately.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from apdu.errors import TraceError
from apdu.trace import TraceRecord

__all__ = ["FORMATS", "crc_a", "parse", "parse_pcsc_spy", "parse_pm3", "parse_pm3_report"]

CARRIER_HZ = 13_560_000
"""The ISO/IEC 14443 carrier frequency, the unit of Proxmark3 trace times (ISO/IEC 14443-2 §6.1)."""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_HEX_BYTE = re.compile(r"[0-9A-Fa-f]{2}")
_DUMP_LINE = re.compile(r"^[0-9A-Fa-f]{4} ((?:[0-9A-Fa-f]{2} ){0,15}[0-9A-Fa-f]{2})(?: |$)")
_LENGTH = re.compile(r"^(bSendLength|bRecvLength)\s+0x([0-9A-Fa-f]+)")
_DURATION = re.compile(r"\[(\d+(?:\.\d+)?)\]\s*$")
_THREAD = re.compile(r"^\((t\d+)\)")
_FUNCTION = re.compile(r"^SCar[A-Za-z0-9]+$")


# --- pcsc-spy -----------------------------------------------------------------------------


@dataclass
class _Call:
    """One SCardTransmit being read."""

    line: int
    send: bytearray | None = None
    recv: bytearray | None = None
    send_length: int | None = None
    recv_length: int | None = None
    collecting: str | None = None


def parse_pcsc_spy(lines: Iterable[str]) -> list[TraceRecord]:
    """Records from ``pcsc-spy`` output (pcsc-lite ``src/spy/pcsc-spy``), wire order kept.

    >>> log = '''SCardTransmit
    ...  i hCard: 0x3E5D8A2B
    ...  i bSendLength 0x00000005 (5)
    ...  i bSendBuffer
    ...  i  0000 80 CA 9F 36 00                                  ...6.
    ...  o bRecvLength 0x00000007 (7)
    ...  o bRecvBuffer
    ...  o  0000 9F 36 02 00 2A 90 00                            .6..*..
    ...  => Command successful. (SCARD_S_SUCCESS [0x00000000])  [0.002500]'''
    >>> [(r.dir, r.hex, r.ms) for r in parse_pcsc_spy(log.splitlines())]
    [('C', '80CA9F3600', None), ('R', '9F3602002A9000', 2.5)]
    """
    records: list[TraceRecord] = []
    calls: dict[str, _Call | None] = {}
    elapsed = 0.0
    for number, text in enumerate(lines, start=1):
        text = _ANSI.sub("", text).rstrip("\r\n")
        stripped = text.lstrip(" ")
        indent = len(text) - len(stripped)
        thread = _THREAD.match(stripped)
        if thread:
            stripped = stripped[thread.end() :].lstrip(" ")
        if not stripped:
            continue
        key = thread.group(1) if thread else str(indent // 4)
        if _FUNCTION.match(stripped.strip()):
            calls[key] = _Call(number) if stripped.strip() == "SCardTransmit" else None
            continue
        if stripped[:2] not in ("i ", "o ", "=>"):
            continue
        call = calls.get(key)
        if call is None:
            continue
        if stripped.startswith("=>"):
            calls[key] = None
            duration = _DURATION.search(stripped)
            seconds = float(duration.group(1)) if duration else None
            if "0x00000000" not in stripped and "SCARD_S_SUCCESS" not in stripped:
                continue
            record_pair = _finish_call(call, elapsed, seconds)
            if record_pair:
                records.extend(record_pair)
                elapsed += seconds or 0.0
            continue
        _read_parameter(call, stripped[0], stripped[2:], number)
    return records


def _read_parameter(call: _Call, direction: str, rest: str, number: int) -> None:
    body = rest.strip()
    length = _LENGTH.match(body)
    if length:
        value = int(length.group(2), 16)
        if length.group(1) == "bSendLength":
            call.send_length = value
        else:
            call.recv_length = value
        call.collecting = None
        return
    for name, attribute in (("bSendBuffer", "send"), ("bRecvBuffer", "recv")):
        if body.startswith(name):
            inline = body[len(name) :].split()
            if inline and all(_HEX_BYTE.fullmatch(token) for token in inline):
                setattr(call, attribute, bytearray(bytes.fromhex("".join(inline))))
                call.collecting = None
            else:
                setattr(call, attribute, bytearray())
                call.collecting = attribute
            return
    if call.collecting is None:
        return
    if body == "NULL":
        setattr(call, call.collecting, None)
        call.collecting = None
        return
    dump = _DUMP_LINE.match(body)
    if dump is None:
        call.collecting = None
        return
    buffer = getattr(call, call.collecting)
    if buffer is None:
        return
    expected_offset = int(body[:4], 16)
    if expected_offset != len(buffer):
        raise TraceError(
            f"hex dump offset {expected_offset:04X} does not follow the {len(buffer)} bytes before it",
            line=number,
        )
    buffer.extend(bytes.fromhex(dump.group(1).replace(" ", "")))


def _finish_call(call: _Call, elapsed: float, seconds: float | None) -> list[TraceRecord]:
    if call.send is None or call.recv is None:
        return []
    send = bytes(call.send)
    recv = bytes(call.recv)
    if call.send_length is not None and call.send_length != len(send):
        raise TraceError(
            f"bSendBuffer has {len(send)} bytes but bSendLength says {call.send_length}", line=call.line
        )
    if call.recv_length is not None and call.recv_length != len(recv):
        raise TraceError(
            f"bRecvBuffer has {len(recv)} bytes but bRecvLength says {call.recv_length}", line=call.line
        )
    if len(send) < 4 or len(recv) < 2:
        return []
    t = elapsed if seconds is not None else None
    end = elapsed + seconds if seconds is not None else None
    ms = seconds * 1000 if seconds is not None else None
    return [TraceRecord("C", send, t=t), TraceRecord("R", recv, t=end, ms=ms)]


# --- Proxmark3 ----------------------------------------------------------------------------


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


FORMATS: dict[str, Callable[[Iterable[str]], list[TraceRecord]]] = {
    "pcsc-spy": parse_pcsc_spy,
    "pm3": parse_pm3,
}
"""The importers by the name ``hcekit trace import --format`` uses."""


def parse(lines: Iterable[str], fmt: str) -> list[TraceRecord]:
    """Records from ``lines`` in the named format (a key of :data:`FORMATS`)."""
    try:
        parser = FORMATS[fmt]
    except KeyError:
        raise TraceError(f"unknown trace format {fmt!r}; known: {', '.join(FORMATS)}") from None
    return parser(lines)
