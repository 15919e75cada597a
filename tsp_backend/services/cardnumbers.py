"""Card numbers: the Luhn check, the network from the BIN, expiry and CVV formats.

Sources: ISO/IEC 7812-1 Annex B (Luhn), the networks' published IIN ranges (Visa 4; Mastercard
51–55 and 2221–2720; American Express 34, 37; Discover 6011, 622126–622925, 644–649, 65).
Functions never put the number in an error message.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from apdu.pan import luhn_valid
from tsp_backend.errors import CardInvalid

#: network -> (allowed PAN lengths, CVV length)
NETWORK_RULES: dict[str, tuple[frozenset[int], int]] = {
    "visa": (frozenset({13, 16, 19}), 3),
    "mastercard": (frozenset({16}), 3),
    "amex": (frozenset({15}), 4),
    "discover": (frozenset({16, 17, 18, 19}), 3),
}


def network_of(pan: str) -> str | None:
    """The card network from the leading digits, or ``None``.

    >>> [network_of(p) for p in ("4111111111111111", "2223000048400011", "378282246310005",
    ...                          "6011111111111117", "9999")]
    ['visa', 'mastercard', 'amex', 'discover', None]
    """
    if not pan.isdigit() or len(pan) < 6:
        return None
    two, four, six = int(pan[:2]), int(pan[:4]), int(pan[:6])
    if pan[0] == "4":
        return "visa"
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "mastercard"
    if two in (34, 37):
        return "amex"
    if four == 6011 or 622126 <= six <= 622925 or 644 <= int(pan[:3]) <= 649 or two == 65:
        return "discover"
    return None


@dataclass(frozen=True)
class FundingCard:
    """A validated funding card; ``repr`` shows only the network and the last four digits."""

    pan: str
    network: str
    expiry: str
    """YYMM."""

    def __repr__(self) -> str:
        return f"FundingCard(network={self.network!r}, last4={self.last4!r}, expiry={self.expiry!r})"

    @property
    def last4(self) -> str:
        """The last four digits."""
        return self.pan[-4:]


_EXPIRY = re.compile(r"^([0-9]{2})\s*/?\s*([0-9]{2}|[0-9]{4})$")
_ASCII_DIGITS = re.compile(r"[0-9]+")


def parse_expiry(text: str) -> tuple[int, int]:
    """``"MM/YY"``, ``"MMYY"`` or ``"MM/YYYY"`` to ``(year, month)``.

    >>> parse_expiry("12/29")
    (2029, 12)
    """
    match = _EXPIRY.match(text.strip())
    if not match:
        raise CardInvalid("expiry must be MM/YY", field="expiry")
    month, year = int(match.group(1)), int(match.group(2))
    if year < 100:
        year += 2000
    if not 1 <= month <= 12:
        raise CardInvalid("expiry month must be 01 to 12", field="expiry")
    return year, month


def validate_card(pan: str, expiry: str, cvv: str, *, today: dt.date) -> FundingCard:
    """Check PAN (digits, network, length, Luhn), expiry (not past, ≤ 20 years) and CVV format.

    The CVV is checked for format only and then dropped: it is never stored or returned.

    >>> validate_card("4111 1111 1111 1111", "12/29", "123", today=dt.date(2026, 1, 1))
    FundingCard(network='visa', last4='1111', expiry='2912')
    >>> validate_card("4111111111111112", "12/29", "123", today=dt.date(2026, 1, 1))
    Traceback (most recent call last):
    ...
    tsp_backend.errors.CardInvalid: card number fails the Luhn check
    """
    digits = re.sub(r"[\s-]", "", pan)
    if not _ASCII_DIGITS.fullmatch(digits):
        raise CardInvalid("card number must contain only digits", field="pan")
    network = network_of(digits)
    if network is None:
        raise CardInvalid("card number is not from a supported network", field="pan")
    lengths, cvv_length = NETWORK_RULES[network]
    if len(digits) not in lengths:
        raise CardInvalid(
            f"a {network} card number has {' or '.join(map(str, sorted(lengths)))} digits", field="pan"
        )
    if not luhn_valid(digits):
        raise CardInvalid("card number fails the Luhn check", field="pan")
    year, month = parse_expiry(expiry)
    if (year, month) < (today.year, today.month):
        raise CardInvalid("card has expired", field="expiry")
    if year > today.year + 20:
        raise CardInvalid("expiry is too far in the future", field="expiry")
    if not (_ASCII_DIGITS.fullmatch(cvv) and len(cvv) == cvv_length):
        raise CardInvalid(f"a {network} CVV has {cvv_length} digits", field="cvv")
    return FundingCard(digits, network, f"{year % 100:02d}{month:02d}")
