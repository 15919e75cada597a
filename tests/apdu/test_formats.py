"""Tests of apdu.formats: EMV formats n and cn (EMV 4.4 Book 3 §4.3) on values the dictionary fixes."""

from __future__ import annotations

import pytest

from apdu.errors import EncodeError
from apdu.formats import decode_cn, decode_n, encode_cn, encode_n, n_digits

# Format n: BCD, right-justified, leading hex zeros (Book 3 §4.3). The lengths are those of the
# data dictionary (Book 3 Annex A): 9F02 n 12 in 6 bytes, 5F2A n 3 in 2, 9A n 6 in 3, 5F34 n 2 in 1.
N_VALUES = [
    (1250,     6, "000000001250", "Amount, Authorised (9F02) of 12.50 in a 2-decimal currency"),
    (0,        6, "000000000000", "an amount of zero"),
    (999_999_999_999, 6, "999999999999", "the largest n 12"),
    (978,      2, "0978",         "Transaction Currency Code (5F2A) of the euro, ISO 4217 978"),
    (840,      2, "0840",         "5F2A of the US dollar, ISO 4217 840"),
    ("250101", 3, "250101",       "Transaction Date (9A) 2025-01-01, YYMMDD"),
    ("01",     1, "01",           "PAN Sequence Number (5F34) 01"),
    (5411,     2, "5411",         "Merchant Category Code (9F15) 5411, ISO 18245"),
]


@pytest.mark.parametrize(("value", "length", "encoded", "what"), N_VALUES)
def test_encode_n(value: int | str, length: int, encoded: str, what: str) -> None:
    """A number in format n is right-justified BCD padded with leading zeros."""
    assert encode_n(value, length).hex().upper() == encoded, what


@pytest.mark.parametrize(("value", "length", "encoded", "what"), N_VALUES)
def test_decode_n(value: int | str, length: int, encoded: str, what: str) -> None:
    """Format n reads back as the number (and the digits, leading zeros kept)."""
    assert decode_n(bytes.fromhex(encoded)) == int(value), what
    assert n_digits(bytes.fromhex(encoded)) == encoded, what


@pytest.mark.parametrize(
    ("data",   "why"),
    [
        ("0A",   "A is not a decimal digit"),
        ("12F0", "F pads format cn, never format n"),
        ("",     "an empty value holds no number"),
    ],
)
def test_decode_n_refuses_non_digits(data: str, why: str) -> None:
    """A value with a nibble outside 0-9, or none at all, is not format n: ``None``."""
    assert decode_n(bytes.fromhex(data)) is None, why
    assert n_digits(bytes.fromhex(data)) is None, why


@pytest.mark.parametrize(("value", "length"), [(1_000_000_000_000, 6), (100, 1), (-1, 6), ("12a4", 2)])
def test_encode_n_refuses(value: int | str, length: int) -> None:
    """Too many digits, a sign or a non-digit cannot be format n."""
    with pytest.raises(EncodeError):
        encode_n(value, length)


# Format cn: BCD, left-justified, trailing hex F (Book 3 §4.3). Application PAN (5A) is cn up to 19
# digits in up to 10 bytes; the PANs are published test cards (Visa ADVT card 1, the Amex and
# Mastercard numbers of payment gateways' test-card tables).
CN_VALUES = [
    ("4761739001010010", None, "4761739001010010",     "16-digit PAN: whole bytes, no pad"),
    ("378282246310005",  None, "378282246310005F",     "15-digit PAN: one F"),
    ("5555555555554444", 10,   "5555555555554444FFFF", "PAN in a 10-byte field"),
    ("12345",            6,    "12345FFFFFFF",         "five digits in cn 12"),
    ("6799998900000060018", None, "6799998900000060018F", "a 19-digit PAN, the longest"),
]


@pytest.mark.parametrize(("digits", "length", "encoded", "what"), CN_VALUES)
def test_encode_cn(digits: str, length: int | None, encoded: str, what: str) -> None:
    """Digits in format cn are left-justified BCD padded with F."""
    assert encode_cn(digits, length).hex().upper() == encoded, what


@pytest.mark.parametrize(("digits", "length", "encoded", "what"), CN_VALUES)
def test_decode_cn(digits: str, length: int | None, encoded: str, what: str) -> None:
    """Format cn reads back as its digits, the F padding dropped."""
    assert decode_cn(bytes.fromhex(encoded)) == digits, what


@pytest.mark.parametrize(
    ("data", "why"), [("12F4", "a pad nibble inside the digits"), ("1A", "a nibble A-E")],
)
def test_decode_cn_refuses(data: str, why: str) -> None:
    """A value that is not digits then F padding is not format cn: ``None``."""
    assert decode_cn(bytes.fromhex(data)) is None, why


@pytest.mark.parametrize(("digits", "length"), [("12345", 2), ("12D4", None), ("", 1)])
def test_encode_cn_refuses(digits: str, length: int | None) -> None:
    """More digits than the field holds, or anything but digits, cannot be format cn."""
    with pytest.raises(EncodeError):
        encode_cn(digits, length)
