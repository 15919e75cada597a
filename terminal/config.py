"""Terminal data: who the merchant is, what the reader supports, and its contactless limits.

The values follow the EMV data dictionary (EMV 4.4 Book 3 Annex A): Terminal Type (9F35),
Terminal Capabilities (9F33), Additional Terminal Capabilities (9F40), Terminal Country Code
(9F1A), Merchant Name and Location (9F4E), and the Terminal Transaction Qualifiers (9F66) of EMV
Contactless Book C-3 §A.2. The three contactless limits are those of EMV Contactless Book A
§5.2.2 (Entry Point pre-processing). Money is integer minor units with an ISO 4217 code, never
a float.

>>> eur = currency("EUR")
>>> (eur.code, eur.numeric, eur.exponent)
('EUR', '0978', 2)
>>> parse_amount("12.50", "EUR"), parse_amount("7", "JPY")
(1250, 7)
>>> format_amount(1250, "EUR")
'12.50 EUR'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from apdu.currency import Currency, format_minor
from apdu.currency import currency as iso_currency
from apdu.kernels import path_of
from terminal.errors import ConfigError


def currency(code: str) -> Currency:
    """The currency for an alphabetic (``"EUR"``) or numeric (``"978"``, ``"0978"``) ISO 4217 code.

    The table is :data:`apdu.currency.ISO_4217`; a code outside it is a :class:`ConfigError`.
    """
    found = iso_currency(code)
    if found is None:
        raise ConfigError(f"unknown ISO 4217 currency {code!r}")
    return found


def parse_amount(text: str, currency_code: str) -> int:
    """Minor units from an amount written in major units (``"12.50"`` EUR is 1250), exactly.

    More decimals than the currency has, a sign, or anything that is not a number is an error.
    """
    cur = currency(currency_code)
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ConfigError(f"amount {text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise ConfigError(f"amount {text!r} must be a non-negative number")
    minor = value.scaleb(cur.exponent)
    if minor != minor.to_integral_value():
        raise ConfigError(f"amount {text!r} has more than {cur.exponent} decimals for {cur.code}")
    result = int(minor)
    if result > 999_999_999_999:
        raise ConfigError(f"amount {text!r} does not fit the 12 digits of Amount, Authorised (9F02)")
    return result


def format_amount(minor: int, currency_code: str) -> str:
    """An amount in minor units written for people: ``1250, "EUR"`` is ``"12.50 EUR"``."""
    return format_minor(minor, currency(currency_code).code)


@dataclass(frozen=True, slots=True)
class SupportedAID:
    """An application the terminal accepts: its AID, a name, and the kernel that runs it.

    ``kernel_id`` is the EMV Contactless Book B §3.3.2 kernel identifier (2 Mastercard, 3 Visa,
    4 American Express, 5 JCB, 6 Discover, 7 UnionPay); :attr:`kernel` the path this terminal
    drives it on (:func:`apdu.kernels.path_of`): ``"visa"`` (qVSDC) or ``"mastercard"`` (M/Chip).
    """

    aid: bytes
    name: str
    kernel_id: int

    @property
    def kernel(self) -> str:
        """The transaction path of :attr:`kernel_id` (``"visa"`` or ``"mastercard"``)."""
        return path_of(self.kernel_id) or "mastercard"


#: Registered application identifiers (ISO/IEC 7816-5 RIDs A000000003 Visa, A000000004
#: Mastercard, A000000025 American Express, A000000152 Discover, A000000065 JCB, A000000333
#: UnionPay), as published by each network and listed in EMVCo's kernel specifications.
SUPPORTED_AIDS: tuple[SupportedAID, ...] = (
    SupportedAID(bytes.fromhex("A0000000031010"), "Visa", 3),
    SupportedAID(bytes.fromhex("A0000000032010"), "Visa Electron", 3),
    SupportedAID(bytes.fromhex("A0000000032020"), "V PAY", 3),
    SupportedAID(bytes.fromhex("A0000000041010"), "Mastercard", 2),
    SupportedAID(bytes.fromhex("A0000000043060"), "Maestro", 2),
    SupportedAID(bytes.fromhex("A00000002501"), "American Express", 4),
    SupportedAID(bytes.fromhex("A0000001523010"), "Discover", 6),
    SupportedAID(bytes.fromhex("A0000000651010"), "JCB", 5),
    SupportedAID(bytes.fromhex("A000000333010101"), "UnionPay Debit", 7),
    SupportedAID(bytes.fromhex("A000000333010102"), "UnionPay Credit", 7),
)


def supported_aid(adf_name: bytes, table: tuple[SupportedAID, ...] = SUPPORTED_AIDS) -> SupportedAID | None:
    """The terminal AID an ADF name matches, by partial selection (EMV 4.4 Book 1 §12.3.1).

    The card's ADF name may extend the terminal's AID (``A0000000031010`` matches
    ``A000000003101001``); the longest matching terminal AID wins.

    >>> supported_aid(bytes.fromhex("A000000003101001")).name
    'Visa'
    >>> supported_aid(bytes.fromhex("A0000000999999")) is None
    True
    """
    matches = [s for s in table if adf_name.startswith(s.aid)]
    return max(matches, key=lambda s: len(s.aid)) if matches else None


@dataclass(frozen=True, slots=True)
class Merchant:
    """The merchant the authorization request names: identifier, name, merchant category code."""

    id: str = "M-1"
    name: str = "Corner Café"
    mcc: str = "5814"


@dataclass(frozen=True, slots=True)
class Limits:
    """The reader's contactless limits in minor units (EMV Contactless Book A §5.2.2).

    ``floor``: above it the reader asks for an online cryptogram. ``cvm``: at or above it a
    cardholder verification is required. ``transaction``: at or above it contactless is not
    allowed and the outcome is Try Another Interface.
    """

    floor: int = 0
    cvm: int = 5000
    transaction: int = 100_000


@dataclass(frozen=True, slots=True)
class TerminalConfig:
    """Everything the kernel knows about the terminal it runs on.

    Byte values are as the tags carry them: ``terminal_type`` 9F35, ``capabilities`` 9F33,
    ``additional_capabilities`` 9F40, ``country`` 9F1A (n 3 as 4 digits), ``ttq`` the base
    Terminal Transaction Qualifiers 9F66 before pre-processing sets bits in byte 2.
    ``kernel`` forces one path (``"visa"`` or ``"mastercard"``) for every application.
    ``cvm_capability_required`` and ``cvm_capability_no_cvm`` are the Terminal Capabilities
    byte 2 the Mastercard path walks a card's CVM List with above the CVM-required limit and at
    or below it (EMV Contactless Book C-2 Annex A, DF8118 and DF8119; :mod:`terminal.cvm`).
    """

    terminal_id: str = "T-1"
    merchant: Merchant = field(default_factory=Merchant)
    country: str = "0276"
    terminal_type: int = 0x22
    capabilities: bytes = bytes.fromhex("E068C8")
    additional_capabilities: bytes = bytes.fromhex("6000F0A001")
    ttq: bytes = bytes.fromhex("36004000")
    limits: Limits = field(default_factory=Limits)
    supported_aids: tuple[SupportedAID, ...] = SUPPORTED_AIDS
    kernel: str | None = None
    ifd_serial: str = "HCEKIT01"
    cvm_capability_required: int = 0x20
    cvm_capability_no_cvm: int = 0x08

    def __post_init__(self) -> None:
        if len(self.country) != 4 or not self.country.isdigit():
            raise ConfigError(f"country must be 4 digits (ISO 3166 numeric), got {self.country!r}")
        if len(self.ttq) != 4:
            raise ConfigError("TTQ (9F66) is 4 bytes")
        if self.kernel not in (None, "visa", "mastercard"):
            raise ConfigError(f"kernel must be 'visa' or 'mastercard', got {self.kernel!r}")

    @property
    def merchant_name_location(self) -> bytes:
        """Merchant Name and Location (9F4E, ans): the merchant's name in ASCII, accents dropped."""
        return self.merchant.name.encode("ascii", "ignore")


@dataclass(frozen=True, slots=True)
class Transaction:
    """One sale: amount in minor units, ISO 4217 code, date YYMMDD (9A), time HHMMSS (9F21), type (9C).

    Date and time are given, not read from a clock, so the kernel stays sans-I/O: the runner
    fills them (:func:`terminal.tap.run_tap` sets the time when it is ``None``).
    """

    amount: int
    currency: str = "EUR"
    date: str = "250101"
    type: int = 0x00
    other_amount: int = 0
    time: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool) or self.amount < 0:
            raise ConfigError(f"amount must be non-negative integer minor units, got {self.amount!r}")
        if self.amount > 999_999_999_999:
            raise ConfigError("amount does not fit the 12 digits of Amount, Authorised (9F02)")
        object.__setattr__(self, "currency", currency(self.currency).code)
        if len(self.date) != 6 or not self.date.isdigit():
            raise ConfigError(f"date must be YYMMDD, got {self.date!r}")
        if self.time is not None and (len(self.time) != 6 or not self.time.isdigit()):
            raise ConfigError(f"time must be HHMMSS, got {self.time!r}")
