"""Bring in APDU traces recorded by other tools: pcsc-spy and the Proxmark3 ``trace list``.

Both parsers take the tool's text output as lines and return :class:`apdu.trace.TraceRecord`
values, commands and responses in wire order; :func:`parse` picks one by the name in
:data:`FORMATS`. The Proxmark3 reader, which has an ISO/IEC 14443 frame layer to undo, is
:mod:`apdu.proxmark`; pcsc-spy's is here. They are lenient about what is not an APDU
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

"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from apdu.errors import TraceError
from apdu.proxmark import parse_pm3
from apdu.trace import TraceRecord

__all__ = ["FORMATS", "parse", "parse_pcsc_spy"]

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
