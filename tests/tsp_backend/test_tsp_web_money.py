"""The ``money`` page filter writes each currency with its ISO 4217 minor unit."""

from __future__ import annotations

import pytest

from tsp_backend.web.pages import money


# ISO 4217 (the maintenance agency's list, "Minor unit" column): BHD, KWD, JOD, OMR and TND have
# three decimals; JPY, KRW, ISK and CLP none; EUR and USD two.
@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [(1250, "EUR", "12.50 EUR"), (-5, "USD", "-0.05 USD"), (500, "JPY", "500 JPY"), (7, "ISK", "7 ISK"),
     (1234, "BHD", "1.234 BHD"), (5, "KWD", "0.005 KWD"), (-1001, "JOD", "-1.001 JOD"),
     (10000, "OMR", "10.000 OMR"), (999, "TND", "0.999 TND"), (1500, "KRW", "1500 KRW")],
)
def test_money_uses_the_iso_4217_minor_unit(amount: int, currency: str, text: str) -> None:
    """Minor units are shifted by the currency's ISO 4217 exponent (three for BHD/KWD, none for JPY)."""
    assert money(amount, currency) == text


def test_money_of_an_unknown_code_keeps_two_decimals() -> None:
    """A code outside the table is written with two decimals, the most common minor unit."""
    assert money(1250, "XYZ") == "12.50 XYZ"
