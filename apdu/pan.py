"""Primary account numbers: the Luhn check digit and masking for display.

A PAN (EMV tag 5A, format cn, up to 19 digits) ends with a check digit computed by the Luhn
formula of ISO/IEC 7812-1 Annex B. Card profiles, the token service and the terminal all check
or make one; they share these functions.

>>> luhn_valid("4761739001010010"), luhn_valid("4761739001010011")
(True, False)
>>> luhn_check_digit("476173900101001")
'0'
>>> mask_pan("4761739001010010")
'476173******0010'
"""

from __future__ import annotations

__all__ = ["luhn_check_digit", "luhn_valid", "mask_pan"]

_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def luhn_valid(digits: str) -> bool:
    """Whether a digit string passes the Luhn check (ISO/IEC 7812-1 Annex B); ``False`` for non-digits."""
    if not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        total += _DOUBLED[value] if position % 2 else value
    return total % 10 == 0


def luhn_check_digit(partial: str) -> str:
    """The digit that makes ``partial + digit`` Luhn-valid (ISO/IEC 7812-1 Annex B)."""
    if partial and not (partial.isascii() and partial.isdigit()):
        raise ValueError("a Luhn check digit needs a string of digits")
    total = 0
    for position, char in enumerate(reversed(partial)):
        value = ord(char) - 48
        total += value if position % 2 else _DOUBLED[value]
    return str(-total % 10)


def mask_pan(pan: str) -> str:
    """A PAN for display: all but the first six and last four digits as ``*`` (PCI DSS 3.4).

    Ten digits or fewer are masked entirely, since nothing could be shown without showing it all.
    """
    if len(pan) <= 10:
        return "*" * len(pan)
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]
