"""APDU traces: JSON Lines records, tracers, and masking of cardholder data.

A trace is JSON Lines (docs/architecture.md, "Contracts"): one object per APDU, in the order the APDUs
crossed the wire::

    {"t": 0.0, "dir": "C", "hex": "00A404000E325041592E5359532E444446303100"}
    {"t": 0.0131, "dir": "R", "hex": "6F2B…9000", "sw": "9000", "ms": 12.4}

``t`` is seconds since the tap started, ``dir`` is ``"C"`` for a command and ``"R"`` for a
response, ``hex`` is the whole APDU as on the wire (a response ends with its status word),
``sw`` repeats a response's status word and ``ms`` is the time the card took. Readers accept
objects with only ``dir`` and ``hex``.

Tracing is a chain of small callables (docs/architecture.md, Conventions 10): a :data:`Tracer` takes a
:class:`TraceRecord` and returns nothing. :class:`TraceRecorder` keeps records,
:class:`JsonlWriter` writes them as lines, and :func:`masking` wraps any tracer so that what
reaches it is masked.

Masking
-------
Masking is on by default everywhere a trace leaves memory (:func:`dumps`,
:meth:`TraceRecorder.save`, :class:`JsonlWriter`). A response's data is decoded as BER-TLV
(leniently, EMV 4.4 Book 3 Annex B) and every primitive data object that the EMV data
dictionary marks sensitive (:func:`apdu.tags.is_sensitive`) is overwritten in place with a
value of the same length, so the masked APDU still decodes:

* numeric data (PAN ``5A``, format cn) keeps its first 6 and last 4 digits and has every
  digit between them replaced by the nibble ``F``. ``F`` is not a decimal digit, so a masked
  PAN can never be mistaken for a real one, and it is the nibble EMV already uses for "no
  digit" (padding, EMV 4.4 Book 3 §4.3), so the hex stays valid and readers keep working::

      5A 08 47 61 73 90 01 01 00 10   ->   5A 08 47 61 73 FF FF FF 00 10

* Track 2 Equivalent Data (``57``, and Track 2 Data ``9F6B``): the PAN before the separator
  ``D`` is masked as above; the separator, the expiry date (YYMM) and the service code are
  kept; the discretionary data after them becomes ``F`` nibbles (EMV 4.4 Book 3 Annex A,
  ISO/IEC 7813 track 2 layout);
* text (cardholder name ``5F20``, Track 1 data ``56``, Track 1 discretionary data ``9F1F`` and
  any other sensitive object of format a, an or ans) becomes ``*`` characters;
* any other sensitive object has all its bytes set to ``FF``.

Commands carry terminal data (PDOL and CDOL values, which have no tags), so they are left
alone, except the PIN block of VERIFY and PIN CHANGE/UNBLOCK (EMV 4.4 Book 3 §6.5.12), whose
data bytes become ``FF``.

>>> records = read_trace(['{"dir": "C", "hex": "00B2010C00"}',
...                       '{"dir": "R", "hex": "700A5A0847617390010100109000"}'])
>>> print(dumps(records), end="")
{"dir": "C", "hex": "00B2010C00"}
{"dir": "R", "hex": "700A5A08476173FFFFFF00109000", "sw": "9000"}
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, TextIO

from apdu import tags as _tags
from apdu import tlv as _tlv
from apdu.errors import DecodeError, TraceError

__all__ = [
    "JsonlWriter",
    "TraceRecord",
    "TraceRecorder",
    "Tracer",
    "dumps",
    "mask_apdu",
    "mask_record",
    "mask_value",
    "masking",
    "read_trace",
]

_DIRECTIONS = ("C", "R")
_TRACK2_TAGS = frozenset({0x57, 0x9F6B})
_TEXT_FORMATS = frozenset({"a", "an", "ans"})
_NUMERIC_FORMATS = frozenset({"n", "cn"})
_PIN_INSTRUCTIONS = frozenset({0x20, 0x24})
_KEEP_FIRST = 6
_KEEP_LAST = 4


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One APDU of a trace (docs/architecture.md, "Contracts").

    ``dir`` is ``"C"`` (command, terminal to card) or ``"R"`` (response), ``raw`` the APDU as
    on the wire (a response ends with SW1 SW2), ``t`` seconds since the tap started and ``ms``
    the time the card took to answer (responses only); both may be unknown.
    """

    dir: str
    raw: bytes
    t: float | None = None
    ms: float | None = None

    def __post_init__(self) -> None:
        if self.dir not in _DIRECTIONS:
            raise TraceError(f'dir must be "C" or "R", got {self.dir!r}')
        if not isinstance(self.raw, (bytes, bytearray, memoryview)):
            raise TraceError(f"raw must be bytes, got {type(self.raw).__name__}")
        object.__setattr__(self, "raw", bytes(self.raw))
        if self.dir == "C" and len(self.raw) < 4:
            raise TraceError(
                f"a command has at least 4 bytes (CLA INS P1 P2, ISO/IEC 7816-4 §5.1), got {len(self.raw)}"
            )
        if self.dir == "R" and len(self.raw) < 2:
            raise TraceError(f"a response ends with SW1 SW2, got {len(self.raw)} byte(s)")
        for name in ("t", "ms"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise TraceError(f"{name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))

    @property
    def is_command(self) -> bool:
        """Whether this record is a command (terminal to card)."""
        return self.dir == "C"

    @property
    def sw(self) -> str | None:
        """A response's status word as four uppercase hex digits; ``None`` for a command."""
        if self.dir != "R":
            return None
        return self.raw[-2:].hex().upper()

    @property
    def hex(self) -> str:
        """The APDU as uppercase hex."""
        return self.raw.hex().upper()

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this record, keys in contract order; unknown times are left out.

        >>> TraceRecord("R", bytes.fromhex("6A82"), t=0.25, ms=3.5).to_json()
        {'t': 0.25, 'dir': 'R', 'hex': '6A82', 'sw': '6A82', 'ms': 3.5}
        """
        obj: dict[str, Any] = {}
        if self.t is not None:
            obj["t"] = round(self.t, 6)
        obj["dir"] = self.dir
        obj["hex"] = self.hex
        if self.dir == "R":
            obj["sw"] = self.sw
            if self.ms is not None:
                obj["ms"] = round(self.ms, 3)
        return obj

    @classmethod
    def from_json(cls, obj: Any, line: int = 0) -> TraceRecord:
        """A record from a decoded JSON object; anything else is :class:`TraceError` at ``line``.

        >>> TraceRecord.from_json({"dir": "C", "hex": "00 B2 01 0C 00"}).hex
        '00B2010C00'
        >>> TraceRecord.from_json({"dir": "X", "hex": "9000"}, line=3)
        Traceback (most recent call last):
        ...
        apdu.errors.TraceError: line 3: dir must be "C" or "R", got 'X'
        """
        if not isinstance(obj, dict):
            raise TraceError(f"a trace record is a JSON object, got {type(obj).__name__}", line=line)
        direction = obj.get("dir")
        if direction not in _DIRECTIONS:
            raise TraceError(f'dir must be "C" or "R", got {direction!r}', line=line)
        text = obj.get("hex")
        if not isinstance(text, str):
            raise TraceError('"hex" must be a string of hex digits', line=line)
        cleaned = "".join(text.split())
        try:
            raw = bytes.fromhex(cleaned)
        except ValueError:
            raise TraceError('"hex" is not an even number of hex digits', line=line) from None
        try:
            record = cls(direction, raw, t=obj.get("t"), ms=obj.get("ms"))
        except TraceError as exc:
            raise TraceError(str(exc.args[0]), line=line) from None
        sw = obj.get("sw")
        if sw is not None and record.dir == "R" and (not isinstance(sw, str) or sw.upper() != record.sw):
            raise TraceError(f'"sw" {sw!r} does not match the last two bytes {record.sw}', line=line)
        return record


Tracer = Callable[[TraceRecord], None]
"""A tracer: called once per APDU with its record (docs/architecture.md, Conventions 10)."""


def read_trace(lines: Iterable[str]) -> list[TraceRecord]:
    """Read JSON Lines into records; blank lines are skipped, a bad line is :class:`TraceError`.

    >>> read_trace(['{"dir": "C", "hex": "00A4"}'])
    Traceback (most recent call last):
    ...
    apdu.errors.TraceError: line 1: a command has at least 4 bytes (CLA INS P1 P2, ISO/IEC 7816-4 §5.1), got 2
    """
    records = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise TraceError(f"not JSON ({exc.__class__.__name__})", line=number) from None
        records.append(TraceRecord.from_json(obj, line=number))
    return records


def dumps(records: Iterable[TraceRecord], masked: bool = True) -> str:
    """Records as JSON Lines text (one line each, ending in a newline), masked unless told not to."""
    return "".join(_line(mask_record(r) if masked else r) for r in records)


def _line(record: TraceRecord) -> str:
    return json.dumps(record.to_json()) + "\n"


class TraceRecorder:
    """A tracer that keeps every record it is given, unmasked, in :attr:`records`.

    >>> recorder = TraceRecorder()
    >>> recorder(TraceRecord("C", bytes.fromhex("00B2010C00")))
    >>> len(recorder.records)
    1
    """

    def __init__(self) -> None:
        self.records: list[TraceRecord] = []

    def __call__(self, record: TraceRecord) -> None:
        self.records.append(record)

    def save(self, fp: TextIO, masked: bool = True) -> None:
        """Write the records to ``fp`` as JSON Lines, masked unless ``masked=False``."""
        fp.write(dumps(self.records, masked=masked))

    def dumps(self, masked: bool = True) -> str:
        """The records as JSON Lines text, masked unless ``masked=False``."""
        return dumps(self.records, masked=masked)


class JsonlWriter:
    """A tracer that writes each record to ``fp`` as one JSON line, masked unless ``masked=False``."""

    def __init__(self, fp: TextIO, masked: bool = True) -> None:
        self.fp = fp
        self.masked = masked

    def __call__(self, record: TraceRecord) -> None:
        self.fp.write(_line(mask_record(record) if self.masked else record))
        self.fp.flush()


def masking(tracer: Tracer) -> Tracer:
    """Wrap ``tracer`` so that it only ever sees masked records."""

    def masked_tracer(record: TraceRecord) -> None:
        tracer(mask_record(record))

    return masked_tracer


def mask_record(record: TraceRecord) -> TraceRecord:
    """The record with its sensitive data masked (see the module docstring for the scheme)."""
    raw = mask_apdu(record.raw, record.dir)
    return record if raw == record.raw else replace(record, raw=raw)


def mask_apdu(raw: bytes, dir: str) -> bytes:
    """Mask the sensitive data objects of one APDU in place (same length); never raises.

    ``dir`` is ``"C"`` or ``"R"``. Responses are decoded as BER-TLV (EMV 4.4 Book 3 Annex B,
    leniently); what cannot be decoded is left as it is, after masking what could be.

    >>> track2 = "57134761739001010010D25122011234567890123F"
    >>> mask_apdu(bytes.fromhex(track2 + "9000"), "R").hex().upper()
    '5713476173FFFFFF0010D2512201FFFFFFFFFFFFFF9000'
    >>> mask_apdu(bytes.fromhex("0020008008241234FFFFFFFFFF"), "C").hex().upper()
    '0020008008FFFFFFFFFFFFFFFF'
    """
    raw = bytes(raw)
    if dir == "C":
        return _mask_command(raw)
    if dir != "R" or len(raw) <= 2:
        return raw
    data = raw[:-2]
    try:
        nodes = _tlv.decode(data)
    except DecodeError as exc:
        nodes = [n for n in exc.partial if isinstance(n, _tlv.TLV)]
    if not nodes:
        return raw
    out = bytearray(raw)
    changed = False
    for node in _tlv.walk(nodes):
        if node.constructed or not node.value or not _tags.is_sensitive(node.tag):
            continue
        start = node.offset
        end = start + len(node.value)
        if start < 0 or end > len(data) or bytes(out[start:end]) != node.value:
            continue
        out[start:end] = mask_value(node.tag, node.value)
        changed = True
    return bytes(out) if changed else raw


def _mask_command(raw: bytes) -> bytes:
    if len(raw) < 6 or raw[1] not in _PIN_INSTRUCTIONS:
        return raw
    lc = raw[4]
    if lc == 0 or len(raw) < 5 + lc:
        return raw
    return raw[:5] + b"\xff" * lc + raw[5 + lc :]


def mask_value(tag: int, value: bytes) -> bytes:
    """The masked form of one sensitive data object's value, the same length as ``value``.

    >>> mask_value(0x5A, bytes.fromhex("4761739001010010")).hex().upper()
    '476173FFFFFF0010'
    >>> mask_value(0x5F20, b"DOE/JOHN")
    b'********'
    """
    if tag in _TRACK2_TAGS:
        return _mask_track2(value)
    fmt = _tags.format_of(tag)
    if fmt in _TEXT_FORMATS:
        return b"*" * len(value)
    if fmt in _NUMERIC_FORMATS or tag == 0x5A:
        return _mask_digits(value)
    return b"\xff" * len(value)


def _nibbles(value: bytes) -> list[int]:
    out = []
    for byte in value:
        out.append(byte >> 4)
        out.append(byte & 0x0F)
    return out


def _pack(nibbles: list[int]) -> bytes:
    return bytes((nibbles[i] << 4) | nibbles[i + 1] for i in range(0, len(nibbles), 2))


def _mask_pan_nibbles(nibbles: list[int], end: int) -> None:
    """Mask ``nibbles[:end]`` as a PAN: keep the first 6 and last 4 digits when there are more than 10.

    Trailing ``F`` nibbles are padding and stay; already masked positions count as digits, so
    masking twice changes nothing.
    """
    length = end
    while length and nibbles[length - 1] == 0xF:
        length -= 1
    keep = length > _KEEP_FIRST + _KEEP_LAST
    masked = range(_KEEP_FIRST, length - _KEEP_LAST) if keep else range(length)
    for i in masked:
        nibbles[i] = 0xF


def _mask_digits(value: bytes) -> bytes:
    nibbles = _nibbles(value)
    _mask_pan_nibbles(nibbles, len(nibbles))
    return _pack(nibbles)


def _mask_track2(value: bytes) -> bytes:
    """Track 2 layout (ISO/IEC 7813, EMV 4.4 Book 3 Annex A tag 57): PAN, D, YYMM, service code, rest."""
    nibbles = _nibbles(value)
    try:
        separator = nibbles.index(0xD)
    except ValueError:
        _mask_pan_nibbles(nibbles, len(nibbles))
        return _pack(nibbles)
    _mask_pan_nibbles(nibbles, separator)
    for i in range(separator + 1 + 4 + 3, len(nibbles)):
        nibbles[i] = 0xF
    return _pack(nibbles)
