"""Currencies: ISO 4217 alphabetic code, numeric code and minor unit, in one table.

EMV carries a currency as its ISO 4217 numeric code in format n 3 (Transaction Currency Code
5F2A, Application Currency Code 9F42: 2 bytes, ``0978`` for the euro) and amounts as integer
minor units (Amount, Authorised 9F02); the minor unit exponent (Transaction Currency Exponent
5F36) says where the decimal point goes. The exponents are the "minor unit" column of ISO 4217
(the list the ISO 4217 maintenance agency publishes): two for most currencies, three for the
dinars of Bahrain, Iraq, Jordan, Kuwait, Libya and Tunisia and the rial of Oman, none for the
yen, the won, the Icelandic krona, the Chilean peso, the dong and the CFA francs.

>>> eur = currency("EUR")
>>> (eur.code, eur.number, eur.numeric, eur.exponent)
('EUR', 978, '0978', 2)
>>> currency(48).code, currency("0392").exponent, currency("XXX") is None
('BHD', 0, True)
>>> format_minor(1234, "BHD"), format_minor(-5, "USD"), format_minor(500, "JPY")
('1.234 BHD', '-0.05 USD', '500 JPY')
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ISO_4217", "Currency", "currency", "currency_exponent", "format_minor"]


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency: alphabetic ``code``, numeric ``number`` and minor unit ``exponent``."""

    code: str
    number: int
    exponent: int

    @property
    def numeric(self) -> str:
        """The numeric code as the four digits of its format n 3 field (5F2A), ``"0978"``."""
        return f"{self.number:04d}"


ISO_4217: tuple[Currency, ...] = tuple(
    Currency(code, number, exponent)
    for code, number, exponent in (
        ("ALL", 8, 2), ("ARS", 32, 2), ("AUD", 36, 2), ("BHD", 48, 3), ("BDT", 50, 2),
        ("CAD", 124, 2), ("CLP", 152, 0), ("CNY", 156, 2), ("COP", 170, 2), ("CRC", 188, 2),
        ("CZK", 203, 2), ("DKK", 208, 2), ("HKD", 344, 2), ("HUF", 348, 2), ("ISK", 352, 0),
        ("INR", 356, 2), ("IDR", 360, 2), ("IQD", 368, 3), ("ILS", 376, 2), ("JPY", 392, 0),
        ("KZT", 398, 2), ("JOD", 400, 3), ("KES", 404, 2), ("KRW", 410, 0), ("KWD", 414, 3),
        ("LYD", 434, 3), ("MYR", 458, 2), ("MXN", 484, 2), ("MAD", 504, 2), ("OMR", 512, 3),
        ("NZD", 554, 2), ("NGN", 566, 2), ("NOK", 578, 2), ("PKR", 586, 2), ("PEN", 604, 2),
        ("PHP", 608, 2), ("QAR", 634, 2), ("RUB", 643, 2), ("SAR", 682, 2), ("SGD", 702, 2),
        ("VND", 704, 0), ("ZAR", 710, 2), ("SEK", 752, 2), ("CHF", 756, 2), ("THB", 764, 2),
        ("AED", 784, 2), ("TND", 788, 3), ("EGP", 818, 2), ("GBP", 826, 2), ("USD", 840, 2),
        ("UYU", 858, 2), ("TWD", 901, 2), ("RSD", 941, 2), ("RON", 946, 2), ("TRY", 949, 2),
        ("XAF", 950, 0), ("XOF", 952, 0), ("BGN", 975, 2), ("EUR", 978, 2), ("UAH", 980, 2),
        ("GEL", 981, 2), ("PLN", 985, 2), ("BRL", 986, 2),
    )
)
"""The common ISO 4217 currencies (alphabetic code, numeric code, minor unit)."""

_BY_CODE = {c.code: c for c in ISO_4217}
_BY_NUMBER = {c.number: c for c in ISO_4217}

DEFAULT_EXPONENT = 2
"""The minor unit assumed for a code outside :data:`ISO_4217` when an amount is only displayed."""


def currency(code: int | str) -> Currency | None:
    """The currency of an alphabetic (``"EUR"``, any case) or numeric (``978``, ``"0978"``) code.

    >>> currency("eur").number, currency(840).code, currency("999") is None
    (978, 'USD', True)
    """
    if isinstance(code, int):
        return _BY_NUMBER.get(code)
    text = code.strip().upper()
    if text.isascii() and text.isdigit():
        return _BY_NUMBER.get(int(text))
    return _BY_CODE.get(text)


def currency_exponent(code: int | str) -> int | None:
    """The minor unit exponent of a currency by either code, ``None`` for an unknown one.

    >>> currency_exponent(978), currency_exponent("JPY"), currency_exponent("0048")
    (2, 0, 3)
    """
    found = currency(code)
    return found.exponent if found is not None else None


def format_minor(amount: int, code: str) -> str:
    """``amount`` minor units written with the currency's decimals and its code: ``"12.50 EUR"``.

    A code outside the table is written with :data:`DEFAULT_EXPONENT` decimals.

    >>> format_minor(1250, "EUR"), format_minor(5, "KWD"), format_minor(1500, "KRW")
    ('12.50 EUR', '0.005 KWD', '1500 KRW')
    """
    found = currency(code)
    exponent = found.exponent if found is not None else DEFAULT_EXPONENT
    sign = "-" if amount < 0 else ""
    units, minor = divmod(abs(amount), 10**exponent)
    return f"{sign}{units}.{minor:0{exponent}d} {code}" if exponent else f"{sign}{units} {code}"
