"""Primary account numbers: where a card carries one, the Luhn check digit, masking for display.

A PAN (EMV tag 5A, format cn, up to 19 digits) ends with a check digit computed by the Luhn
formula of ISO/IEC 7812-1 Annex B. Card profiles, the token service and the terminal all check
or make one; they share these functions.

A card gives its PAN twice: as Application PAN (5A) and as the first field of Track 2
Equivalent Data (57), which EMV 4.4 Book 3 Annex A defines as "the data elements of track 2
according to ISO/IEC 7813": PAN, field separator ``D``, expiry YYMM, service code, discretionary
data, padded with one ``F``. The rule of :func:`card_pan`: 5A is the PAN; the PAN of 57 is used
only when 5A is absent (a contactless card on the Book C-3 path may leave 5A out, and Book
C-2's mag-stripe data and Book C-3's MSD carry only track 2); when both are present and differ
the card has contradicted itself, which a kernel treats as a card data error (EMV Contactless
Book A, Outcome Error Indication L2 "CARD DATA ERROR") and a host as a format error.

>>> luhn_valid("4761739001010010"), luhn_valid("4761739001010011")
(True, False)
>>> luhn_check_digit("476173900101001")
'0'
>>> mask_pan("4761739001010010")
'476173******0010'
"""

from __future__ import annotations

from collections.abc import Mapping

from apdu.errors import EncodeError, PanMismatch
from apdu.formats import decode_cn

__all__ = [
    "card_pan", "encode_track2", "luhn_check_digit", "luhn_valid", "mask_pan", "split_track2", "track2_pan",
]

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


def encode_track2(pan: str, tail: str) -> bytes:
    """Track 2 Equivalent Data (57, and 9F6B of mag-stripe mode) from the PAN and what follows it.

    ``tail`` is the digits after the field separator (expiry YYMM, service code, discretionary
    data); the value is ``pan D tail``, padded with one ``F`` to whole bytes (Book 3 Annex A).

    >>> encode_track2("5413339000001513", "2512201").hex().upper()
    '5413339000001513D2512201'
    >>> encode_track2("374245001751006", "251220100").hex().upper()
    '374245001751006D251220100F'
    """
    if not (pan.isascii() and pan.isdigit() and 1 <= len(pan) <= 19):
        raise EncodeError(f"a PAN is 1 to 19 digits, got {len(pan)} characters")
    if tail and not (tail.isascii() and tail.isdigit()):
        raise EncodeError("the track 2 data after the separator must be digits")
    text = f"{pan}D{tail}"
    return bytes.fromhex(text + ("F" if len(text) % 2 else ""))


def _track2_fields(data: bytes) -> tuple[str, str] | None:
    """The PAN (1 to 19 digits) and everything after the ``D`` separator, as hex digits."""
    pan, separator, tail = bytes(data).hex().upper().partition("D")
    if not separator or not 1 <= len(pan) <= 19 or not pan.isdigit():
        return None
    return pan, tail


def split_track2(data: bytes) -> tuple[str, str] | None:
    """Track 2 Equivalent Data (57; 9F6B of mag-stripe mode) as its PAN and the digits after ``D``.

    The tail is expiry YYMM, service code and discretionary data, the ``F`` padding removed.
    ``None`` when there is no separator, the PAN is not 1 to 19 digits, or the tail is not digits.

    >>> split_track2(bytes.fromhex("4761739001010010D25122010000000000000F"))
    ('4761739001010010', '25122010000000000000')
    >>> split_track2(bytes.fromhex("5413330056003511D1412101067750500FFF"))
    ('5413330056003511', '1412101067750500')
    >>> split_track2(bytes.fromhex("4761739001010010")) is None
    True
    """
    fields = _track2_fields(data)
    if fields is None:
        return None
    pan, tail = fields[0], fields[1].rstrip("F")
    return (pan, tail) if not tail or tail.isdigit() else None


def track2_pan(data: bytes) -> str | None:
    """The PAN field of Track 2 Equivalent Data (57; also 9F6B of mag-stripe mode), ISO/IEC 7813.

    ``None`` when there is no ``D`` separator or the field before it is not 1 to 19 digits; what
    follows the separator is not looked at.

    >>> track2_pan(bytes.fromhex("4761739001010010D25122010000000000000F"))
    '4761739001010010'
    >>> track2_pan(bytes.fromhex("4761739001010010")) is None
    True
    """
    fields = _track2_fields(data)
    return fields[0] if fields is not None else None


def card_pan(values: Mapping[int, bytes]) -> str | None:
    """The card's PAN: 5A, else the PAN of 57 when 5A is absent (EMV 4.4 Book 3 Annex A).

    ``None`` when neither gives one (absent, empty or not digits). Raises
    :class:`~apdu.errors.PanMismatch` when both give a PAN and they differ.

    >>> card_pan({0x5A: bytes.fromhex("4761739001010010")})
    '4761739001010010'
    >>> card_pan({0x57: bytes.fromhex("5413339000001513D2512201")})
    '5413339000001513'
    >>> card_pan({0x5A: bytes.fromhex("4761739001010010"), 0x57: bytes.fromhex("4761739001010028D251220F")})
    Traceback (most recent call last):
    ...
    apdu.errors.PanMismatch: the PAN (5A) and the PAN of Track 2 Equivalent Data (57) differ
    """
    pan = decode_cn(values[0x5A]) or None if 0x5A in values else None
    track = track2_pan(values[0x57]) if 0x57 in values else None
    if pan is not None and track is not None and pan != track:
        raise PanMismatch(pan, track)
    return pan if pan is not None else track
