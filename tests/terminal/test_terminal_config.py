"""Terminal data: currencies, amounts in minor units, supported AIDs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.currency import ISO_4217, Currency
from terminal.config import (
    TerminalConfig,
    Transaction,
    currency,
    format_amount,
    parse_amount,
    supported_aid,
)
from terminal.errors import ConfigError


@pytest.mark.parametrize(
    ("text",    "code", "minor"),
    [
        ("12.50",  "EUR", 1250),      # ISO 4217: EUR exponent 2
        ("12",     "EUR", 1200),
        ("0.01",   "USD", 1),
        ("1000",   "JPY", 1000),      # JPY exponent 0
        ("1.234",  "KWD", 1234),      # KWD exponent 3
        ("12.5",   "978", 1250),      # numeric code
    ],
)
def test_parse_amount(text: str, code: str, minor: int) -> None:
    """Amounts in major units become exact minor units."""
    assert parse_amount(text, code) == minor


@pytest.mark.parametrize("text", ["12.505", "-1", "abc", "NaN", "1e3.5", "1.5"])
def test_parse_amount_refuses(text: str) -> None:
    """Too many decimals, signs and non-numbers are refused (1.5 JPY has a decimal JPY lacks)."""
    with pytest.raises(ConfigError):
        parse_amount(text, "JPY" if text == "1.5" else "EUR")


@given(st.integers(min_value=0, max_value=999_999_999_999), st.sampled_from(ISO_4217))
def test_format_then_parse_round_trips(minor: int, cur: Currency) -> None:
    """format_amount and parse_amount are inverse for every currency."""
    code = cur.code
    assert parse_amount(format_amount(minor, code).split()[0], code) == minor


def test_unknown_currency() -> None:
    """An unknown ISO 4217 code is a ConfigError."""
    with pytest.raises(ConfigError):
        currency("XYZ")


@pytest.mark.parametrize(
    ("adf",                "name"),
    [
        ("A0000000031010",     "Visa"),
        ("A000000003101001",   "Visa"),            # partial selection: ADF extends the AID
        ("A0000000032010",     "Visa Electron"),
        ("A0000000032020",     "V PAY"),
        ("A0000000041010",     "Mastercard"),
        ("A0000000043060",     "Maestro"),
        ("A00000002501",       "American Express"),
        ("A0000001523010",     "Discover"),
        ("A0000000651010",     "JCB"),
        ("A000000333010101",   "UnionPay Debit"),
    ],
)
def test_supported_aids(adf: str, name: str) -> None:
    """Network AIDs from each network's published RID and PIX."""
    found = supported_aid(bytes.fromhex(adf))
    assert found is not None and found.name == name


def test_config_validation() -> None:
    """Bad terminal data is refused when built."""
    with pytest.raises(ConfigError):
        TerminalConfig(country="DE")
    with pytest.raises(ConfigError):
        TerminalConfig(kernel="amex")
    with pytest.raises(ConfigError):
        Transaction(amount=-1)
    with pytest.raises(ConfigError):
        Transaction(amount=1, date="2025-01-01")
