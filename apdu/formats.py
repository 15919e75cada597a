"""The numeric data element formats of EMV: n (numeric) and cn (compressed numeric).

EMV 4.4 Book 3 §4.3 (Data Element Format Conventions) defines both as packed BCD, two decimal
digits a byte, high nibble first:

- **n**: right-justified and padded with leading hexadecimal zeros. Amount, Authorised (9F02,
  n 12 in 6 bytes), Transaction Currency Code (5F2A, n 3 in 2 bytes), Transaction Date (9A).
- **cn**: left-justified and padded with trailing hexadecimal ``F``. Application PAN (5A,
  cn up to 19 digits in up to 10 bytes).

Track 2 Equivalent Data (57) is a third shape, digits with a ``D`` separator padded with one
``F``; it lives with the PAN rules in :mod:`apdu.pan`.

>>> encode_n(1250, 6).hex(), decode_n(bytes.fromhex("000000001250"))
('000000001250', 1250)
>>> encode_cn("4761739001010010", 10).hex().upper(), decode_cn(bytes.fromhex("5413339000001513FFFF"))
('4761739001010010FFFF', '5413339000001513')
"""

from __future__ import annotations

from apdu.errors import EncodeError

__all__ = ["decode_cn", "decode_n", "encode_cn", "encode_n", "n_digits"]


def encode_n(value: int | str, length: int) -> bytes:
    """``value`` in format n: ``length`` bytes of BCD, right-justified, zero-padded (Book 3 §4.3).

    ``value`` is an integer or a string of digits (which keeps its own leading zeros). A negative
    number, a non-digit or more digits than ``2 * length`` raise :class:`~apdu.errors.EncodeError`.

    >>> encode_n(978, 2).hex(), encode_n("250101", 3).hex()
    ('0978', '250101')
    """
    digits = str(value) if isinstance(value, int) else value
    if not (digits.isascii() and digits.isdigit()):
        raise EncodeError(f"format n holds decimal digits only, got {value!r}")
    if len(digits) > 2 * length:
        raise EncodeError(f"{value} does not fit {length} bytes of format n")
    return bytes.fromhex(digits.rjust(2 * length, "0"))


def n_digits(data: bytes) -> str | None:
    """The digits of a format n value, leading zeros kept; ``None`` if a nibble is not a digit.

    An empty value holds no number either, so it is ``None`` too.

    >>> n_digits(bytes.fromhex("0978")), n_digits(b"\\x0a"), n_digits(b"")
    ('0978', None, None)
    """
    digits = bytes(data).hex()
    return digits if digits.isdigit() else None


def decode_n(data: bytes) -> int | None:
    """The number a format n value holds (Book 3 §4.3); ``None`` if empty or a nibble is not a digit.

    >>> decode_n(bytes.fromhex("000000001250")), decode_n(b"\\x0a"), decode_n(b"")
    (1250, None, None)
    """
    digits = n_digits(data)
    return int(digits) if digits is not None else None


def encode_cn(digits: str, length: int | None = None) -> bytes:
    """``digits`` in format cn: left-justified BCD padded with ``F`` (Book 3 §4.3).

    Without ``length`` the value takes as few bytes as hold the digits (a PAN of 15 digits
    becomes 8 bytes ending in ``F``); with it, exactly ``length`` bytes.

    >>> encode_cn("374245001751006").hex().upper(), encode_cn("1234", 3).hex().upper()
    ('374245001751006F', '1234FF')
    """
    if not (digits.isascii() and digits.isdigit()):
        raise EncodeError(f"format cn holds decimal digits only, got {digits!r}")
    size = (len(digits) + 1) // 2 if length is None else length
    if len(digits) > 2 * size:
        raise EncodeError(f"{len(digits)} digits do not fit {size} bytes of format cn")
    return bytes.fromhex(digits.ljust(2 * size, "F"))


def decode_cn(data: bytes) -> str | None:
    """The digits of a format cn value, trailing ``F`` padding removed (Book 3 §4.3).

    ``None`` if anything but digits is left (a pad nibble inside the digits, or an A-E nibble).

    >>> decode_cn(bytes.fromhex("374245001751006F")), decode_cn(bytes.fromhex("12F4")), decode_cn(b"")
    ('374245001751006', None, '')
    """
    digits = bytes(data).hex().upper().rstrip("F")
    return digits if digits.isdigit() or not digits else None
