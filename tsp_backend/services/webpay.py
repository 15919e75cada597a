"""The web payment: a one-time token cryptogram that the service makes for a browser device.

A browser device holds no card profile, so it cannot make an ARQC as the phone's card does
(:mod:`hce.inapp`). The service makes it instead, from the token's own limited-use key, once
the holder has proved presence and identity with the browser's passkey (WebAuthn with user
verification, :mod:`tsp_backend.services.passkeys`). EMVCo's Payment Tokenisation
Specification (v2.3 §6.3, "Token Cryptogram") allows exactly this: the token requestor's
server generates the cryptogram of a remote-commerce transaction.

What binds what
---------------
The payment's intent (card, amount, currency, merchant) and a fresh nonce are hashed into the
WebAuthn challenge (:meth:`PaymentIntent.challenge`), so the passkey signs the intent itself.
The first four bytes of that challenge are the Unpredictable Number (9F37) of the cryptogram,
and the amount (9F02) and currency (5F2A) are the intent's, so the cryptogram covers what the
holder approved. The block then goes through the one authorization path of every payment
(:class:`~tsp_backend.services.authorization.AuthorizationService`): token state, domain
controls, ATC window and replay, the LUK's use count, the ARQC recomputed, the issuer.

The counters
------------
The ATC is the next after the highest the service has seen for the token (used ATCs and
transactions): the service is this device's card, so it keeps the counter the phone would. The
LUK is the first key of an unexpired batch with uses left; when there is none a new batch is
recorded (as a phone's replenishment would) and the token's cached snapshot dropped after the
commit. Two payments racing for one ATC cannot both pass: the authorization's unique (card,
ATC) refuses the second as a replay.

The block's fixed elements (as :mod:`hce.inapp` fills them for a phone): Amount, Other 0;
country 0840; TVR zero (no terminal checks ran); type 00 (purchase); AIP 0000 (no offline data
authentication in remote commerce); CID 80 (ARQC). The CVR says the consumer device CVM was
performed — Visa: CTQ (9F6C) byte 2 bit 8; Mastercard: CVR byte 1 bits 3 and 1 — because the
passkey's user verification is that CVM.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from apdu.formats import encode_cn, encode_n
from apdu.tlv import TLV, encode
from cryptogram.cvn import CVN
from cryptogram.cvn import profile as cvn_profile
from cryptogram.luk import derive_luk
from tsp_backend.config import Config
from tsp_backend.models import Card, KeyBatch, LukUse
from tsp_backend.services import keys as card_keys
from tsp_backend.services.authorization import currency_numeric
from tsp_backend.services.cache import token_key
from tsp_backend.services.card_profiles import CardProfiles
from tsp_backend.services.networks import NETWORKS
from tsp_backend.stores import Store

COUNTRY = bytes.fromhex("0840")
"""Terminal Country Code (9F1A) of the web channel: the service's country."""

AIP = bytes.fromhex("0000")
"""Application Interchange Profile (82) of the web cryptogram: no offline data authentication."""

DOMAIN = b"hcekit web payment v1\x00"
"""The prefix of a payment challenge (keeps it apart from every other hash the service makes)."""

BATCH_MARGIN_S = 60
"""A key batch with less life left than this is not used for a new cryptogram."""


@dataclass(frozen=True)
class PaymentIntent:
    """What the holder approves on the payment sheet."""

    card_id: int
    amount: int
    currency: str
    merchant_id: str
    merchant_name: str = ""

    def canonical(self) -> bytes:
        """The intent as canonical JSON (sorted keys, no spaces)."""
        return json.dumps(
            {
                "card": self.card_id,
                "amount": self.amount,
                "currency": self.currency.upper(),
                "merchant": self.merchant_id,
                "name": self.merchant_name,
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()

    def challenge(self, nonce: bytes) -> bytes:
        """The WebAuthn challenge: SHA-256(domain ‖ intent ‖ nonce).

        >>> i = PaymentIntent(1, 1999, "EUR", "shop")
        >>> len(i.challenge(bytes(16))), i.challenge(bytes(16)) == i.challenge(b"\\x01" * 16)
        (32, False)
        """
        return hashlib.sha256(DOMAIN + self.canonical() + b"\x00" + nonce).digest()


def unpredictable_number(challenge: bytes) -> bytes:
    """The Unpredictable Number (9F37) of a payment: the challenge's first four bytes."""
    return challenge[:4]


def _last_day(yymm: str) -> str:
    """The last day of month YYMM as two digits (5F24 is YYMMDD).

    >>> _last_day("2802"), _last_day("3012")
    ('29', '31')
    """
    return f"{calendar.monthrange(2000 + int(yymm[:2]), int(yymm[2:]))[1]:02d}"


def _cvr(cvn: CVN) -> bytes:
    """CVR of an online ARQC, second AC not requested; Mastercard also says device CVM performed."""
    if cvn.iad_layout == "mastercard":
        return bytes((0xA0 | 0x05, 0, 0, 0, 0, 0))
    cvr = bytes((0x03, 0xA0, 0x00, 0x00))
    return cvr[-cvn.cvr_length :] if len(cvr) > cvn.cvr_length else cvr.ljust(cvn.cvr_length, b"\x00")


def token_cryptogram(
    cvn: CVN,
    luk: bytes,
    *,
    token_pan: str,
    psn: str,
    expiry: str,
    atc: int,
    luk_index: int,
    amount: int,
    currency: int,
    date: str,
    unpredictable: bytes,
) -> bytes:
    """The field-55 block of a web payment: the ARQC under ``luk`` and the data it covers.

    ``expiry`` is the token's YYMM, ``date`` the transaction date YYMMDD, ``currency`` the ISO
    4217 number. Pure: bytes in, bytes out.
    """
    iad = cvn.build_iad(_cvr(cvn), dki=1, luk_index=luk_index)
    values = {
        0x9F02: encode_n(amount, 6),
        0x9F03: bytes(6),
        0x9F1A: COUNTRY,
        0x95: bytes(5),
        0x5F2A: encode_n(currency, 2),
        0x9A: bytes.fromhex(date),
        0x9C: b"\x00",
        0x9F37: bytes(unpredictable),
        0x82: AIP,
        0x9F36: atc.to_bytes(2, "big"),
        0x9F10: iad,
    }
    arqc = cvn.generate(luk, values).cryptogram
    tags = [
        TLV(0x9F26, arqc),
        TLV(0x9F27, b"\x80"),
        *(TLV(tag, value) for tag, value in values.items()),
    ]
    if cvn.network == "visa":
        tags.append(TLV(0x9F6C, bytes.fromhex("0080")))
    tags += [
        TLV(0x5F34, bytes.fromhex(psn)),
        TLV(0x5A, encode_cn(token_pan)),
        TLV(0x5F24, bytes.fromhex(expiry + _last_day(expiry))),
    ]
    return encode(tags)


class WebCryptograms:
    """Makes the browser device's token cryptograms (module docstring, "The counters")."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store

    def _usable_luk(self, session: Session, card: Card, now: int) -> int | None:
        batches = session.scalars(
            select(KeyBatch)
            .where(KeyBatch.card_id == card.id, KeyBatch.not_after > now + BATCH_MARGIN_S)
            .order_by(KeyBatch.first_index)
        ).all()
        if not batches:
            return None
        rows = session.execute(select(LukUse.luk_index, LukUse.uses).where(LukUse.card_id == card.id))
        uses = {int(index): int(count) for index, count in rows}
        for batch in batches:
            for index in range(batch.first_index, batch.first_index + batch.count):
                if uses.get(index, 0) < batch.max_uses:
                    return index
        return None

    def prepare(self, session: Session, card: Card, now: dt.datetime) -> int:
        """The LUK index for the next cryptogram, recording (and committing) a new batch if needed."""
        stamp = int(now.timestamp())
        index = self._usable_luk(session, card, stamp)
        if index is not None:
            return index
        index = card.next_luk_index
        session.add(
            KeyBatch(
                card_id=card.id,
                first_index=index,
                count=self.config.luk_batch_size,
                max_uses=self.config.luk_max_uses,
                not_after=stamp + self.config.luk_lifetime_s,
                created_at=now,
            )
        )
        card.next_luk_index += self.config.luk_batch_size
        session.commit()
        self.store.delete(token_key(card.token_pan))
        return index

    def make(
        self, session: Session, card: Card, intent: PaymentIntent, unpredictable: bytes, now: dt.datetime
    ) -> bytes:
        """The web payment's block for ``intent`` (the caller has verified the passkey)."""
        luk_index = self.prepare(session, card, now)
        cvn = cvn_profile(NETWORKS[card.network].cvn)
        tmk = card_keys.token_master_key(self.config.issuer_master_keys, card.token_pan, card.psn)
        return token_cryptogram(
            cvn,
            derive_luk(tmk, luk_index),
            token_pan=card.token_pan,
            psn=card.psn,
            expiry=card.token_expiry,
            atc=CardProfiles.last_atc(session, card) + 1,
            luk_index=luk_index,
            amount=intent.amount,
            currency=currency_numeric(intent.currency),
            date=now.strftime("%y%m%d"),
            unpredictable=unpredictable,
        )
