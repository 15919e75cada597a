"""Data Object Lists: PDOL, CDOL1/2, DDOL, TDOL, UDOL (EMV 4.4 Book 3 §5.4).

A DOL is what a card asks the terminal for: a list of (tag, length) pairs with no values,
e.g. the PDOL ``9F66 04 9F02 06 9F37 04``. The terminal answers with the values alone,
concatenated in the list's order, each fitted to the length asked (§5.4):

* a value longer than asked is cut: numeric (``n``) values keep their rightmost bytes, all
  other formats their leftmost;
* a value shorter than asked is padded: ``n`` with leading ``00``, compact numeric (``cn``)
  with trailing ``FF``, all other formats with trailing ``00``;
* a tag the terminal does not have, or a constructed tag, is sent as zeros of the asked length.

:func:`build_dol_data` does this for a terminal; :func:`split_dol_data` is what the card does
with the bytes it gets back.

>>> pdol = parse_dol(bytes.fromhex("9F6604 9F0206 9F3704"))
>>> [(f"{e.tag:X}", e.length) for e in pdol], dol_length(pdol)
([('9F66', 4), ('9F02', 6), ('9F37', 4)], 14)
>>> data = build_dol_data(pdol, {0x9F02: bytes.fromhex("1000"), 0x9F37: bytes.fromhex("0102030405")},
...                       format_of={0x9F02: "n"}.get)
>>> data.hex().upper()
'0000000000000000100001020304'
>>> split_dol_data(pdol, data)[0x9F02].hex()
'000000001000'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from apdu.errors import DecodeError, EncodeError

__all__ = ["DOLEntry", "build_dol_data", "dol_length", "fit_value", "parse_dol", "split_dol_data"]

FormatOf = Callable[[int], "str | None"]
"""A function that gives a tag's EMV format (``"n"``, ``"cn"``, ``"b"``, ``"an"``, ``"ans"`` …)."""


@dataclass(frozen=True, slots=True)
class DOLEntry:
    """One entry of a DOL: the tag asked for and the number of value bytes (EMV 4.4 Book 3 §5.4)."""

    tag: int
    length: int

    @property
    def constructed(self) -> bool:
        """Whether the tag is constructed (b6 of its first byte): always answered with zeros."""
        return bool((self.tag >> (((self.tag.bit_length() - 1) >> 3) << 3)) & 0x20)

    def to_bytes(self) -> bytes:
        """The entry as it appears in the DOL."""
        from apdu.ber import encode_length, encode_tag

        return encode_tag(self.tag) + encode_length(self.length)


def parse_dol(data: bytes) -> tuple[DOLEntry, ...]:
    """The (tag, length) entries of a DOL (EMV 4.4 Book 3 §5.4); raises only :class:`DecodeError`.

    Tags follow EMV 4.4 Book 3 Annex B1 (1 to 3 bytes); lengths are one byte, or ``81 XX``.

    >>> parse_dol(bytes.fromhex("9F0206 5F2A02 9A03"))[1]
    DOLEntry(tag=24362, length=2)
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"a DOL must be bytes, got {type(data).__name__}")
    data = bytes(data)
    entries: list[DOLEntry] = []
    i = 0
    end = len(data)
    while i < end:
        start = i
        b = data[i]
        if b == 0:
            raise DecodeError("tag 00 in a DOL", offset=i, partial=tuple(entries))
        tag = b
        if b & 0x1F == 0x1F:
            while True:
                i += 1
                if i >= end:
                    raise DecodeError("DOL ends inside a tag", tag=tag, offset=start, partial=tuple(entries))
                tag = (tag << 8) | data[i]
                if not data[i] & 0x80:
                    break
                if i - start >= 2:
                    raise DecodeError("tag longer than 3 bytes in a DOL", tag=tag, offset=start,
                                      partial=tuple(entries))
        i += 1
        if i >= end:
            raise DecodeError("DOL ends before the length of a tag", tag=tag, offset=i,
                              partial=tuple(entries))
        length = data[i]
        i += 1
        if length == 0x81:
            if i >= end:
                raise DecodeError("DOL ends inside a length", tag=tag, offset=i - 1, partial=tuple(entries))
            length = data[i]
            i += 1
        elif length >= 0x80:
            raise DecodeError(f"DOL length byte {length:02X} is not supported", tag=tag, offset=i - 1,
                              partial=tuple(entries))
        entries.append(DOLEntry(tag, length))
    return tuple(entries)


def _entries(dol: bytes | Sequence[DOLEntry]) -> Sequence[DOLEntry]:
    if isinstance(dol, (bytes, bytearray, memoryview)):
        return parse_dol(bytes(dol))
    return dol


def dol_length(dol: bytes | Sequence[DOLEntry]) -> int:
    """The number of bytes of data the DOL asks for.

    >>> dol_length(bytes.fromhex("9F0206 9F0306 9F1A02 9505 5F2A02 9A03 9C01 9F3704"))
    29
    """
    return sum(entry.length for entry in _entries(dol))


def _default_format_of(tag: int) -> str:
    try:
        from apdu.tags import format_of
    except ImportError:
        return "b"
    return str(format_of(tag))


def fit_value(value: bytes, length: int, fmt: str) -> bytes:
    """Cut or pad one value to ``length`` bytes by the rules of EMV 4.4 Book 3 §5.4.

    >>> fit_value(bytes.fromhex("000000001000"), 4, "n").hex(), fit_value(b"AB", 4, "an").hex()
    ('00001000', '41420000')
    >>> fit_value(bytes.fromhex("5413"), 4, "cn").hex()
    '5413ffff'
    """
    have = len(value)
    if have == length:
        return value
    numeric = fmt == "n"
    if have > length:
        return value[have - length :] if numeric else value[:length]
    if numeric:
        return bytes(length - have) + value
    if fmt == "cn":
        return value + b"\xff" * (length - have)
    return value + bytes(length - have)


def build_dol_data(
    dol: bytes | Sequence[DOLEntry],
    values: Mapping[int, bytes],
    *,
    format_of: FormatOf | None = None,
) -> bytes:
    """The data a terminal sends for a DOL, built from ``values`` (EMV 4.4 Book 3 §5.4).

    ``format_of`` gives each tag's format; by default :func:`apdu.tags.format_of` (``"b"`` for a
    tag it does not know). A tag missing from ``values`` and a constructed tag become zeros.

    >>> cdol1 = bytes.fromhex("9F0206 9F0306 9F1A02 9505 5F2A02 9A03 9C01 9F3704")
    >>> build_dol_data(cdol1, {0x95: bytes.fromhex("8000000000"), 0x9A: bytes.fromhex("010101")}).hex()
    '0000000000000000000000000000800000000000000101010000000000'
    """
    if format_of is None:
        format_of = _default_format_of
    out = bytearray()
    for entry in _entries(dol):
        value = values.get(entry.tag)
        if value is None or entry.constructed:
            out += bytes(entry.length)
            continue
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise EncodeError(f"the value for tag {entry.tag:X} must be bytes, got {type(value).__name__}")
        out += fit_value(bytes(value), entry.length, format_of(entry.tag) or "b")
    return bytes(out)


def split_dol_data(dol: bytes | Sequence[DOLEntry], data: bytes) -> dict[int, bytes]:
    """Cut DOL data back into ``{tag: value}``, as the card does with PDOL or CDOL data.

    The data must be exactly as long as the DOL asks (else :class:`DecodeError`); when a tag is
    listed twice, the first one wins.

    >>> split_dol_data(bytes.fromhex("9F2701 9F3602"), bytes.fromhex("80002A"))[0x9F36].hex()
    '002a'
    """
    entries = _entries(dol)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"DOL data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    expected = sum(entry.length for entry in entries)
    if len(data) != expected:
        raise DecodeError(f"the DOL asks for {expected} bytes, got {len(data)}",
                          offset=min(len(data), expected))
    out: dict[int, bytes] = {}
    i = 0
    for entry in entries:
        if entry.tag not in out:
            out[entry.tag] = data[i : i + entry.length]
        i += entry.length
    return out
