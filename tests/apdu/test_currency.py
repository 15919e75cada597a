"""Tests of apdu.currency against the ISO 4217 list (alphabetic code, numeric code, minor unit)."""

from __future__ import annotations

import pytest

from apdu.currency import ISO_4217, currency, currency_exponent, format_minor

# The ISO 4217 list published by its maintenance agency (SIX), columns "Alphabetic Code",
# "Numeric Code" and "Minor unit".
PUBLISHED = [
    ("EUR", 978, 2), ("USD", 840, 2), ("GBP", 826, 2), ("CHF", 756, 2), ("SEK", 752, 2),
    ("JPY", 392, 0), ("KRW", 410, 0), ("ISK", 352, 0), ("CLP", 152, 0), ("VND", 704, 0),
    ("XAF", 950, 0), ("XOF", 952, 0),
    ("BHD", 48, 3), ("KWD", 414, 3), ("JOD", 400, 3), ("OMR", 512, 3), ("TND", 788, 3),
    ("IQD", 368, 3), ("LYD", 434, 3),
]


@pytest.mark.parametrize(("code", "number", "exponent"), PUBLISHED)
def test_table_matches_iso_4217(code: str, number: int, exponent: int) -> None:
    """Each currency has the numeric code and minor unit ISO 4217 gives it, by either code."""
    by_alpha, by_number = currency(code), currency(number)
    assert by_alpha is not None and by_alpha is by_number
    assert (by_alpha.code, by_alpha.number, by_alpha.exponent) == (code, number, exponent)
    assert by_alpha.numeric == f"{number:04d}"
    assert currency(f"{number:04d}") is by_alpha and currency(code.lower()) is by_alpha
    assert currency_exponent(code) == exponent


def test_codes_are_unique_and_well_formed() -> None:
    """Alphabetic codes are three letters, numeric codes three digits, each used once."""
    assert len({c.code for c in ISO_4217}) == len({c.number for c in ISO_4217}) == len(ISO_4217)
    assert all(len(c.code) == 3 and c.code.isalpha() and 0 < c.number < 1000 for c in ISO_4217)
    assert all(c.exponent in (0, 2, 3) for c in ISO_4217)


@pytest.mark.parametrize("code", ["XYZ", "999", 999, "", "EURO"])
def test_unknown_codes(code: int | str) -> None:
    """A code outside the table is ``None``, not a guess."""
    assert currency(code) is None and currency_exponent(code) is None


@pytest.mark.parametrize(
    ("amount", "code",  "text"),
    [
        (1250,   "EUR", "12.50 EUR"),
        (-5,     "USD", "-0.05 USD"),
        (500,    "JPY", "500 JPY"),
        (1234,   "BHD", "1.234 BHD"),
        (5,      "KWD", "0.005 KWD"),
        (0,      "TND", "0.000 TND"),
        (1250,   "XYZ", "12.50 XYZ"),   # unknown: the usual two decimals
    ],
)
def test_format_minor(amount: int, code: str, text: str) -> None:
    """Minor units are written with as many decimals as the ISO 4217 minor unit."""
    assert format_minor(amount, code) == text
