"""The in-app cryptogram: the wallet's card pays inside an app, with no terminal in between.

An in-app (remote) payment carries the same EMV data as a tap: the card makes an ARQC over the
amount, currency, date and an unpredictable number, and the merchant's server forwards the
data objects to the issuer as field 55 (EMV Payment Tokenisation Specification v2.3 §6.3,
"EMV-based remote commerce"; EMVCo calls the result a Token Cryptogram). There is no reader to
drive the conversation, so the wallet drives its own card: the very same
:class:`~hce.applet.CardApplet` and the very same commands a kernel would send (SELECT AID, GET
PROCESSING OPTIONS, and for Mastercard GENERATE AC), which keeps one implementation of the ATC
and limited-use-key accounting: an in-app payment uses up an ATC and a key use exactly as a tap.

The data the terminal would supply are filled here: Amount, Authorised (9F02, from the
payment), Amount, Other (9F03, zero), country (9F1A, the card's issuer country), TVR (95,
zero: no terminal checks ran), currency (5F2A), date (9A), type (9C, purchase), the
unpredictable number (9F37, random) and, for Mastercard, Terminal Type 9F35 = 34
("unattended, cardholder-operated, online only" — EMV 4.4 Book 4 Annex A1) and CVM Results
9F34 = 1F0002 (no CVM by the terminal; the app confirmed the payment).

>>> from hce.testcard import builtin_profile
>>> card = CardApplet(builtin_profile("visa", now=0))
>>> result = in_app_cryptogram(card, amount=1999, currency="EUR", date="250101",
...                            unpredictable=bytes.fromhex("01020304"))
>>> result.kind, result.atc, len(result.emv) > 80
('ARQC', 1, True)
"""

from __future__ import annotations

import calendar
import secrets
from dataclasses import dataclass

from apdu.cid import cryptogram_type
from apdu.command import GenerateAC, GetProcessingOptions, Select
from apdu.currency import currency as iso_currency
from apdu.dol import build_dol_data
from apdu.formats import encode_cn, encode_n
from apdu.sw import SW
from apdu.tags import FIELD_55_TAGS
from apdu.tlv import TLV, decode, encode, to_dict
from hce.applet import CardApplet
from hce.errors import HCEError

__all__ = ["BLOCK_TAGS", "InAppCryptogram", "InAppError", "currency_numeric", "in_app_cryptogram"]

#: What a phone does not put in its in-app block: the reader's own data (9F33 Terminal
#: Capabilities, 9F09 its application version, 84 the DF name it selected) and what only a tap
#: carries (9F6E, 9F7C, Track 2 Equivalent Data 57: the PAN goes as 5A).
_NOT_IN_APP = frozenset({0x9F33, 0x9F09, 0x84, 0x9F6E, 0x9F7C, 0x57})

#: The data objects of the in-app block, in field-55 order (the card's, then the "terminal's").
BLOCK_TAGS: tuple[int, ...] = tuple(t for t in FIELD_55_TAGS if t not in _NOT_IN_APP)



class InAppError(HCEError):
    """The card did not make an in-app cryptogram (it answered with an error status word)."""


@dataclass(frozen=True, slots=True)
class InAppCryptogram:
    """The card's answer: the field-55-style block, the cryptogram type and the ATC it used."""

    emv: bytes
    kind: str
    atc: int
    unpredictable: bytes

    def __repr__(self) -> str:
        return f"InAppCryptogram(kind={self.kind!r}, atc={self.atc}, emv=<{len(self.emv)} bytes>)"


def currency_numeric(code: str) -> str:
    """An ISO 4217 code (``EUR`` or ``978``) as the 4 digits of 5F2A.

    >>> currency_numeric("EUR"), currency_numeric("840")
    ('0978', '0840')
    """
    found = iso_currency(code)
    if found is None:
        raise InAppError(f"unknown ISO 4217 currency {code!r}")
    return found.numeric


def _last_day(yymm: str) -> str:
    """The last day of the month YYMM, as two digits (Application Expiration Date 5F24 is YYMMDD)."""
    year, month = 2000 + int(yymm[:2]), int(yymm[2:])
    return f"{calendar.monthrange(year, month)[1]:02d}"


def _answer(card: CardApplet, command: bytes, what: str, now: float | None) -> bytes:
    response = card.process(command, now=now)
    if int.from_bytes(response[-2:], "big") != SW.NO_ERROR:
        raise InAppError(f"the card refused {what} with SW {response[-2:].hex().upper()}")
    return response[:-2]


def in_app_cryptogram(
    card: CardApplet,
    *,
    amount: int,
    currency: str,
    date: str,
    unpredictable: bytes | None = None,
    now: float | None = None,
) -> InAppCryptogram:
    """Have ``card`` make an ARQC for an in-app payment of ``amount`` minor units; the block for the TSP.

    ``date`` is YYMMDD (9A). Raises :class:`InAppError` if the card answers with an error
    status word; an AAC (no key left, amount above the limit without device CVM) is returned
    with ``kind == "AAC"`` for the caller to report.
    """
    if not isinstance(amount, int) or amount < 0 or amount > 999_999_999_999:
        raise InAppError("amount must be 0..999999999999 minor units")
    if len(date) != 6 or not date.isdigit():
        raise InAppError("date must be YYMMDD")
    profile = card.profile
    un = unpredictable if unpredictable is not None else secrets.token_bytes(4)
    terminal: dict[int, bytes] = {
        0x9F02: encode_n(amount, 6),
        0x9F03: bytes(6),
        0x9F1A: bytes.fromhex(profile.issuer_country),
        0x95: bytes(5),
        0x5F2A: bytes.fromhex(currency_numeric(currency)),
        0x9A: bytes.fromhex(date),
        0x9C: b"\x00",
        0x9F37: un,
        0x9F66: bytes.fromhex("36004000"),
        0x9F35: b"\x34",
        0x9F34: bytes.fromhex("1F0002"),
        0x9F45: bytes(2),
        0x9F4C: bytes(8),
    }
    card.reset()
    _answer(card, Select(profile.aid).to_bytes(), "SELECT", now)
    pdol_data = build_dol_data(profile.pdol, terminal) if profile.pdol else b""
    gpo = _answer(card, GetProcessingOptions(pdol_data).to_bytes(), "GET PROCESSING OPTIONS", now)
    found = to_dict(decode(gpo))
    if profile.kernel == "mastercard":
        cdol_data = build_dol_data(profile.cdol1, terminal)
        answer = _answer(card, GenerateAC("ARQC", cdol_data).to_bytes(), "GENERATE AC", now)
        found.update(to_dict(decode(answer)))
    if 0x9F26 not in found or 0x9F36 not in found:
        raise InAppError("the card's answer holds no cryptogram")
    values = {**terminal, **found}
    values[0x5F34] = bytes.fromhex(profile.psn)
    values[0x5A] = encode_cn(profile.pan)
    values[0x5F24] = bytes.fromhex(profile.expiry + _last_day(profile.expiry))
    chosen = [t for t in BLOCK_TAGS if t in values]
    if profile.kernel == "mastercard":
        chosen = [t for t in chosen if t not in (0x9F66, 0x9F6C)]
    else:
        chosen = [t for t in chosen if t not in (0x9F34, 0x9F35)]
    block = encode(TLV(t, values[t]) for t in chosen)
    kind = cryptogram_type(found.get(0x9F27, b"\x00")[0]) or "AAC"
    return InAppCryptogram(block, kind, int.from_bytes(found[0x9F36], "big"), un)
