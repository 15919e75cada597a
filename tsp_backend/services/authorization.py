"""Authorization: verify a tap's or an in-app payment's cryptogram and ask the issuer.

Why the checks run in this order
--------------------------------
An authorization is a chain of refusals, cheapest and least revealing first, and nothing is
written that a forger could spend. The token is looked up by the token PAN the card sent (Track
2 equivalent data 57, else 5A) — never a funding PAN; its state, expiry and domain controls are
plain comparisons. The ATC replay window and the limited-use key (LUK) batch are then read, the
ARQC recomputed and compared in constant time, and the amount and currency *inside the
cryptogram data* compared with the request's — so a terminal cannot authorise one amount with a
cryptogram made for another. Only a cryptogram that verifies consumes anything: its ATC goes
into ``used_atcs`` under the unique constraint (card, ATC) with ``INSERT … ON CONFLICT DO
NOTHING``, and its key's use count in ``luk_uses`` is raised by one atomic conditional upsert,
both in the same database transaction as the transaction row. A forged request therefore cannot
burn a genuine card's counters, and two copies of one cryptogram never both pass. Then the
consumer device CVM is checked against the CVM limit, the funding PAN is taken from the vault
and the issuer asked through the network's circuit breaker. The answer carries the ARPC
(tag 91 value, ``cvn.issuer_authentication_data``) whenever the cryptogram verified.

Response codes (ISO 8583 field 39)
----------------------------------

====  =====================================  =================================================
code  meaning                                when
====  =====================================  =================================================
00    approved                               the issuer approved
05    do not honour                          issuer refusal; the card sent no ARQC
14    invalid card number                    no token has this token PAN; the cryptogram is
                                             not from the card the in-app payment names
1A    additional customer authentication     amount above the CVM limit without a consumer
      required                               device CVM (Visa CTQ byte 2 bit 8; Mastercard CVR
                                             byte 1 bits 3 and 1, or DF4B byte 2 bit 5)
30    format error                           the EMV block does not decode or lacks a tag
51    not sufficient funds                   issuer
54    expired card                           the token or its limited-use key has expired
57    transaction not permitted              token not ACTIVE; channel, merchant or MCC
                                             outside the token's domain controls
59    suspected fraud                        cryptogram does not verify; ATC replayed or out
                                             of the window; amount or currency differ from the
                                             cryptogram's; LUK index not issued to the token
61    exceeds amount limit                   issuer per-transaction limit
65    exceeds frequency limit                issuer velocity; the LUK has made ``max_uses``
                                             cryptograms already
91    issuer or switch inoperative           breaker open, network down, or no answer in time
                                             (then the transaction is ``in_doubt``)
====  =====================================  =================================================

The ATC window
--------------
An ATC is accepted once per token (unique constraint), and only within
``[highest seen - ATC_LOOKBACK, highest seen + ATC_LOOKAHEAD]``: :data:`ATC_LOOKBACK` (32)
lets cryptograms that arrive out of order pass, :data:`ATC_LOOKAHEAD` (100) refuses a counter
that jumped further than a wallet plausibly taps without going online (cryptograms declined on
the phone also consume ATCs).

Time-outs and reversals
-----------------------
The issuer knows each request by a reference derived from the token reference and the ATC, so
a retried request gets the first decision back (:mod:`tsp_backend.services.issuers`). A call
that times out leaves the transaction ``in_doubt`` and answers 91; :class:`Reconciler` later
asks the issuer what it recorded and reverses an approval the terminal never learnt of
(status ``reversed``) or voids the reference (``declined``): never charged twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from apdu.errors import DecodeError
from apdu.tags import CURRENCIES
from apdu.tlv import decode, walk
from cryptogram.cvn import CVN
from cryptogram.cvn import profile as cvn_profile
from cryptogram.errors import CryptogramError
from cryptogram.luk import derive_luk
from tsp_backend.config import Config
from tsp_backend.db import driver_execute
from tsp_backend.errors import ValidationFailed
from tsp_backend.models import (
    Base,
    Card,
    KeyBatch,
    LukUse,
    Transaction,
    UsedATC,
    VaultEntry,
    utcnow,
)
from tsp_backend.services import audit
from tsp_backend.services import keys as card_keys
from tsp_backend.services.cache import token_key
from tsp_backend.services.issuers import IssuerDecision, IssuerRequest
from tsp_backend.services.lifecycle import TokenState
from tsp_backend.services.netsim import CircuitOpen, SwitchError, SwitchTimeout
from tsp_backend.services.networks import NETWORKS, NetworkClients
from tsp_backend.services.vault import Vault
from tsp_backend.stores import Store

ATC_LOOKBACK = 32
"""How far below the highest ATC seen an unused ATC is still accepted (module docstring)."""

ATC_LOOKAHEAD = 100
"""How far above the highest ATC seen an ATC is accepted."""

CVM_LIMIT = 5000
"""Minor units above which a consumer device CVM is required (the card profile's ``cvm_limit``)."""

CHANNELS = ("contactless", "in_app", "ecommerce")
"""The channels a token can pay in (domain controls restrict them)."""

RESPONSE_CODES: dict[str, str] = {
    "00": "approved",
    "05": "do not honour",
    "14": "invalid card number",
    "1A": "additional customer authentication required",
    "30": "format error",
    "51": "not sufficient funds",
    "54": "expired card",
    "57": "transaction not permitted",
    "59": "suspected fraud",
    "61": "exceeds amount limit",
    "65": "exceeds frequency limit",
    "91": "issuer or switch inoperative",
}
"""The response codes this service answers (module table)."""

_ALPHA_TO_NUMERIC = {alpha: number for number, (alpha, _exp) in CURRENCIES.items()}


def currency_numeric(code: str) -> int:
    """The ISO 4217 numeric code of an alphabetic code (``"EUR"`` → 978).

    >>> currency_numeric("EUR"), currency_numeric("jpy")
    (978, 392)
    """
    number = _ALPHA_TO_NUMERIC.get(code.strip().upper())
    if number is None:
        raise ValidationFailed(f"unknown ISO 4217 currency {code!r}", field="currency")
    return number


def bcd_value(value: bytes) -> int | None:
    """A format-n (BCD) number, or ``None`` if a nibble is not a digit.

    >>> bcd_value(bytes.fromhex("000000001250")), bcd_value(b"\\x0a")
    (1250, None)
    """
    text = value.hex()
    return int(text) if text.isdigit() else None


def token_pan_of(tlvs: Mapping[int, bytes]) -> str | None:
    """The PAN from Track 2 equivalent data (57) or the PAN tag (5A) (EMV 4.4 Book 3 Annex A).

    >>> token_pan_of({0x57: bytes.fromhex("4895370012003478D29122010000000000000F")})
    '4895370012003478'
    """
    if 0x57 in tlvs or 0x9F6B in tlvs:   # 9F6B: Track 2 of a mag-stripe mode tap
        text = tlvs.get(0x57, tlvs.get(0x9F6B, b"")).hex().upper()
        pan, sep, _ = text.partition("D")
        return pan if sep and pan.isdigit() else None
    if 0x5A in tlvs:
        pan = tlvs[0x5A].hex().upper().rstrip("F")
        return pan if pan.isdigit() else None
    return None


def parse_emv(data: bytes) -> dict[int, bytes]:
    """The primitive data objects of a field-55 block, first occurrence wins (raises ``DecodeError``)."""
    values: dict[int, bytes] = {}
    for node in walk(decode(data)):
        if not node.constructed and node.tag not in values:
            values[node.tag] = node.value
    return values


def issuer_reference(token_ref: str, atc: int) -> str:
    """The issuer's name of one cryptogram: unique per token and ATC, stable across retries."""
    return hashlib.sha256(f"{token_ref}:{atc}".encode()).hexdigest()[:32]


def device_cvm_performed(cvn: CVN, tlvs: Mapping[int, bytes], cvr: bytes) -> bool:
    """Whether the phone verified its holder (see the module table, code 1A).

    Visa: CTQ (9F6C) byte 2 bit 8 "Consumer Device CVM Performed" (EMV Contactless Book C-3
    Annex A). Mastercard: CVR byte 1 bits 3 and 1 (inside the cryptogram) or POS Cardholder
    Interaction Information (DF4B) byte 2 bit 5 "OD-CVM verification successful" (Book C-2).
    """
    if cvn.network == "visa":
        ctq = tlvs.get(0x9F6C, b"")
        return len(ctq) >= 2 and bool(ctq[1] & 0x80)
    if cvr and cvr[0] & 0x05 == 0x05:
        return True
    pcii = tlvs.get(0xDF4B, b"")
    return len(pcii) >= 2 and bool(pcii[1] & 0x10)


@dataclass(frozen=True)
class TokenSnapshot:
    """What authorization needs of a token, cached in the store (no PAN, no key)."""

    card_id: int
    user_id: int
    status: str
    network: str
    token_ref: str
    token_expiry: str
    psn: str
    vault_id: int
    channels: tuple[str, ...] | None
    merchants: tuple[str, ...] | None
    blocked_mccs: tuple[str, ...]
    batches: tuple[tuple[int, int, int, int], ...]
    """(first index, count, max uses, not after) of every key batch issued."""

    def to_json(self) -> str:
        """The cached form."""
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: bytes | str) -> TokenSnapshot:
        """The inverse of :meth:`to_json`."""
        doc = json.loads(text)
        for name in ("channels", "merchants"):
            if doc[name] is not None:
                doc[name] = tuple(doc[name])
        doc["blocked_mccs"] = tuple(doc["blocked_mccs"])
        doc["batches"] = tuple(tuple(b) for b in doc["batches"])
        return cls(**doc)

    def batch_of(self, index: int) -> tuple[int, int, int, int] | None:
        """The key batch that issued LUK ``index``, or ``None``."""
        for batch in self.batches:
            if batch[0] <= index < batch[0] + batch[1]:
                return batch
        return None


def _split(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(part for part in (p.strip() for p in text.split(",")) if part)


@dataclass(frozen=True)
class AuthorizationRequest:
    """One authorization: the EMV block and the payment's amount, merchant and channel."""

    emv: bytes = field(repr=False)
    amount: int
    currency: str
    channel: str = "contactless"
    merchant_id: str | None = None
    merchant_name: str | None = None
    mcc: str | None = None
    terminal_id: str | None = None
    card_id: int | None = None
    """In-app: the card the user chose (the cryptogram must be that token's)."""
    api_key_id: int | None = None


@dataclass(frozen=True)
class AuthorizationResult:
    """The answer (see :meth:`to_json`) and the transaction row it was written to."""

    approved: bool
    response_code: str
    reason: str
    transaction_id: str
    status: str
    network: str | None = None
    auth_code: str | None = None
    arpc: bytes | None = None
    card_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The body of ``POST /api/authorize``'s 200 answer."""
        return {
            "approved": self.approved,
            "responseCode": self.response_code,
            "authCode": self.auth_code,
            "arpc": self.arpc.hex().upper() if self.arpc is not None else None,
            "transactionId": self.transaction_id,
            "network": self.network,
            "reason": self.reason,
        }


class _Decline(Exception):
    """A refusal inside :meth:`AuthorizationService.authorize`, turned into a transaction row."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class _Context:
    request: AuthorizationRequest
    token: TokenSnapshot | None = None
    atc: int | None = None
    luk_index: int | None = None
    arpc_of: Callable[[str], bytes] | None = None
    reference: str | None = None


class AuthorizationService:
    """Verifies cryptograms, asks issuers, writes transactions (module docstring)."""

    def __init__(
        self,
        config: Config,
        store: Store,
        vault: Vault,
        networks: NetworkClients,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self.vault = vault
        self.networks = networks
        self.clock = clock

    # ------------------------------------------------------------------ tokens

    def token(self, session: Session, token_pan: str) -> TokenSnapshot | None:
        """The token with this token PAN (read through the store's ``token:`` cache)."""
        key = token_key(token_pan)
        cached = self.store.get(key)
        if cached is not None:
            return TokenSnapshot.from_json(cached)
        card = session.scalar(select(Card).where(Card.token_pan == token_pan))
        if card is None:
            return None
        batches = session.execute(
            select(KeyBatch.first_index, KeyBatch.count, KeyBatch.max_uses, KeyBatch.not_after)
            .where(KeyBatch.card_id == card.id)
            .order_by(KeyBatch.first_index)
        ).all()
        snapshot = TokenSnapshot(
            card_id=card.id,
            user_id=card.user_id,
            status=card.status,
            network=card.network,
            token_ref=card.token_ref,
            token_expiry=card.token_expiry,
            psn=card.psn,
            vault_id=card.vault_id,
            channels=_split(card.allowed_channels),
            merchants=_split(card.allowed_merchants),
            blocked_mccs=_split(card.blocked_mccs) or (),
            batches=tuple((int(b[0]), int(b[1]), int(b[2]), int(b[3])) for b in batches),
        )
        self.store.set(key, snapshot.to_json().encode(), self.config.card_cache_ttl_s)
        return snapshot

    # ------------------------------------------------------------------ the checks

    def authorize(
        self, session: Session, request: AuthorizationRequest, *, actor: str, origin: str | None = None
    ) -> AuthorizationResult:
        """Decide one authorization and add its transaction and audit rows to ``session``.

        The caller commits (with the idempotent response, see :mod:`tsp_backend.api.payments`).
        """
        ctx = _Context(request)
        try:
            decision = self._decide(session, ctx)
        except _Decline as decline:
            return self._record(session, ctx, decline.code, decline.reason, None, "declined", actor, origin)
        except SwitchTimeout as exc:
            return self._record(session, ctx, "91", str(exc), None, "in_doubt", actor, origin)
        except SwitchError as exc:
            reason = str(exc) if isinstance(exc, CircuitOpen) else f"{exc}; try again later"
            return self._record(session, ctx, "91", reason, None, "declined", actor, origin)
        status = "approved" if decision.approved else "declined"
        return self._record(
            session, ctx, decision.code, decision.reason, decision.auth_code, status, actor, origin
        )

    def _decide(self, session: Session, ctx: _Context) -> IssuerDecision:
        request = ctx.request
        currency = currency_numeric(request.currency)
        try:
            tlvs = parse_emv(request.emv)
        except DecodeError:
            raise _Decline("30", "the EMV data is not valid BER-TLV") from None
        pan = token_pan_of(tlvs)
        if pan is None:
            raise _Decline("30", "the EMV data has no token PAN (57 or 5A)")
        token = self.token(session, pan)
        if token is None:
            raise _Decline("14", "no token has this token PAN")
        ctx.token = token
        if request.card_id is not None and request.card_id != token.card_id:
            raise _Decline("14", "the cryptogram was not made by the chosen card")
        if token.status != TokenState.ACTIVE.value:
            raise _Decline("57", f"the token is {token.status}")
        if _expired(token.token_expiry, self.clock()):
            raise _Decline("54", "the token has expired")
        self._domain_controls(token, request)
        if 0x9F26 not in tlvs and 0x9F61 in tlvs:   # mag-stripe mode: CVC3 in Track 2 (magstripe.py)
            from tsp_backend.services import magstripe
            return magstripe.decide(self, session, ctx, tlvs, pan)

        for tag in (0x9F26, 0x9F36, 0x9F10, 0x9F02, 0x5F2A):
            if tag not in tlvs:
                raise _Decline("30", f"the EMV data lacks tag {tag:02X}")
        cid = tlvs.get(0x9F27)
        if cid is not None and (len(cid) != 1 or cid[0] & 0xC0 != 0x80):
            raise _Decline("05", "the card did not ask for online authorization (no ARQC)")
        atc = int.from_bytes(tlvs[0x9F36], "big")
        ctx.atc = atc
        cvn = cvn_profile(NETWORKS[token.network].cvn)
        try:
            iad = cvn.parse_iad(tlvs[0x9F10])
        except CryptogramError:
            raise _Decline("59", "the issuer application data is not this token's format") from None
        if iad.cvn != cvn.number:
            raise _Decline("59", "the cryptogram version is not this token's")
        luk_index = iad.luk_index
        if luk_index is None:
            raise _Decline("59", "the cryptogram names no limited-use key")
        ctx.luk_index = luk_index
        batch = token.batch_of(luk_index)
        if batch is None:
            raise _Decline("59", "the limited-use key was never issued to this token")
        now = self.clock()
        if batch[3] < now:
            raise _Decline("54", "the limited-use key has expired")

        tmk = card_keys.token_master_key(self.config.issuer_master_keys, pan, token.psn)
        luk = derive_luk(tmk, luk_index)
        arqc = tlvs[0x9F26]
        try:
            genuine = cvn.verify(luk, tlvs, arqc)
        except CryptogramError:
            raise _Decline("30", "the EMV data lacks a data element of the cryptogram") from None
        if not genuine:
            raise _Decline("59", "the cryptogram does not verify")

        def arpc_of(code: str) -> bytes:
            return cvn.issuer_authentication_data(luk, tlvs, arqc, arc=code.encode("ascii"))

        ctx.arpc_of = arpc_of
        entry = self._consume(session, token, atc, luk_index, batch[2])

        if bcd_value(tlvs[0x9F02]) != request.amount:
            raise _Decline("59", "the amount differs from the amount in the cryptogram")
        if bcd_value(tlvs[0x5F2A]) != currency:
            raise _Decline("59", "the currency differs from the currency in the cryptogram")
        if request.amount > CVM_LIMIT and not device_cvm_performed(cvn, tlvs, iad.cvr):
            raise _Decline("1A", "the amount needs the holder to verify on the phone")

        if entry is None:
            raise _Decline("14", "the token has no funding card")
        ctx.reference = issuer_reference(token.token_ref, atc)
        issuer_request = IssuerRequest(
            reference=ctx.reference,
            pan=self.vault.decrypt(entry),
            amount=request.amount,
            currency=request.currency.upper(),
            merchant_id=request.merchant_id or "",
            mcc=request.mcc or "",
        )
        return self.networks.authorize(token.network, issuer_request)

    @staticmethod
    def _domain_controls(token: TokenSnapshot, request: AuthorizationRequest) -> None:
        if token.channels is not None and request.channel not in token.channels:
            raise _Decline("57", f"the token may not pay in the {request.channel} channel")
        if token.merchants is not None and (request.merchant_id or "") not in token.merchants:
            raise _Decline("57", "the token may not pay this merchant")
        if request.mcc and request.mcc in token.blocked_mccs:
            raise _Decline("57", f"the token may not pay merchants of category {request.mcc}")

    @staticmethod
    def _window_refusal(top: int | None, same: int, atc: int) -> _Decline | None:
        if same:
            return _Decline("59", "the cryptogram's ATC was used before (replay)")
        if top is not None and atc < top - ATC_LOOKBACK:
            return _Decline("59", "the ATC is too far below the highest seen")
        if atc > (top or 0) + ATC_LOOKAHEAD:
            return _Decline("59", "the ATC jumped too far above the highest seen")
        return None

    def _consume(
        self, session: Session, token: TokenSnapshot, atc: int, luk_index: int, max_uses: int
    ) -> VaultEntry | None:
        """Check the ATC window, spend the ATC and one use of the LUK; the token's vault entry.

        On PostgreSQL this is one statement (:data:`_CONSUME_PG`); elsewhere three.
        """
        if session.get_bind().dialect.name == "postgresql":
            row = driver_execute(
                session,
                _CONSUME_PG,
                {
                    "card": token.card_id,
                    "atc": atc,
                    "now": utcnow(),
                    "lookback": ATC_LOOKBACK,
                    "lookahead": ATC_LOOKAHEAD,
                    "luk": luk_index,
                    "max_uses": max_uses,
                    "vault": token.vault_id,
                },
            ).fetchone()
            top, same, used, uses = row[0], int(row[1]), row[2], row[3]
            entry = (
                None
                if row[4] is None
                else VaultEntry(
                    id=row[4], fingerprint=row[5], key_version=row[6], nonce=row[7], ciphertext=row[8]
                )
            )
        else:
            top, same = session.execute(
                select(func.max(UsedATC.atc), func.count().filter(UsedATC.atc == atc)).where(
                    UsedATC.card_id == token.card_id
                )
            ).one()
            refusal = self._window_refusal(top, int(same), atc)
            if refusal is not None:
                raise refusal
            upsert = _dialect_insert(session)
            used = session.execute(
                upsert(UsedATC)
                .values(card_id=token.card_id, atc=atc, used_at=utcnow())
                .on_conflict_do_nothing(index_elements=["card_id", "atc"])
                .returning(UsedATC.id)
            ).scalar_one_or_none()
            uses = None
            if used is not None:
                uses = session.execute(
                    upsert(LukUse)
                    .values(card_id=token.card_id, luk_index=luk_index, uses=1)
                    .on_conflict_do_update(
                        index_elements=["card_id", "luk_index"],
                        set_={"uses": LukUse.__table__.c.uses + 1},
                        where=LukUse.__table__.c.uses < max_uses,
                    )
                    .returning(LukUse.uses)
                ).scalar_one_or_none()
            entry = session.get(VaultEntry, token.vault_id)
        if used is None:
            raise self._window_refusal(top, same, atc) or _Decline(
                "59", "the cryptogram's ATC was used before (replay)"
            )
        if uses is None:
            raise _Decline("65", "the limited-use key has made all its cryptograms; replenish")
        return entry

    # ------------------------------------------------------------------ the record

    def _record(
        self,
        session: Session,
        ctx: _Context,
        code: str,
        reason: str,
        auth_code: str | None,
        status: str,
        actor: str,
        origin: str | None,
    ) -> AuthorizationResult:
        request, token = ctx.request, ctx.token
        approved = status == "approved"
        arpc = ctx.arpc_of(code) if ctx.arpc_of is not None else None
        public_id = "txn_" + secrets.token_hex(10)
        network = token.network if token is not None else None
        card_id = token.card_id if token is not None else None
        now = utcnow()
        row = {
            "public_id": public_id,
            "card_id": card_id,
            "amount": request.amount,
            "currency": request.currency.upper()[:3],
            "merchant_id": (request.merchant_id or None) and request.merchant_id[:64],
            "merchant_name": (request.merchant_name or None) and request.merchant_name[:120],
            "mcc": request.mcc,
            "terminal_id": (request.terminal_id or None) and request.terminal_id[:64],
            "channel": request.channel,
            "network": network,
            "atc": ctx.atc,
            "approved": approved,
            "response_code": code,
            "auth_code": auth_code,
            "reason": reason[:120],
            "status": status,
            "luk_index": ctx.luk_index,
            "issuer_ref": ctx.reference,
            "api_key_id": request.api_key_id,
            "created_at": now,
            "settled_at": None if status == "in_doubt" else now,
        }
        event = {
            "at": now,
            "actor": actor,
            "action": "payment.authorize",
            "target": f"txn:{public_id}",
            "outcome": f"{code} {status}",
            "origin": origin[:200] if origin else None,
            "detail": json.dumps(
                {"card": card_id, "channel": request.channel, "network": network}, sort_keys=True
            ),
        }
        if session.get_bind().dialect.name == "postgresql":
            driver_execute(session, _RECORD_PG, {**row, **event})
        else:
            session.execute(_INSERT_TRANSACTION, row)
            session.execute(_INSERT_AUDIT, event)
        return AuthorizationResult(
            approved=approved,
            response_code=code,
            reason=reason,
            transaction_id=public_id,
            status=status,
            network=network,
            auth_code=auth_code,
            arpc=arpc,
            card_id=token.card_id if token is not None else None,
        )


_CONSUME_PG = """
    WITH w AS (
        SELECT max(atc) AS top, count(*) FILTER (WHERE atc = %(atc)s) AS same
        FROM used_atcs WHERE card_id = %(card)s
    ), a AS (
        INSERT INTO used_atcs (card_id, atc, used_at)
        SELECT %(card)s, %(atc)s, %(now)s FROM w
        WHERE w.same = 0
          AND (w.top IS NULL OR %(atc)s >= w.top - %(lookback)s)
          AND %(atc)s <= coalesce(w.top, 0) + %(lookahead)s
        ON CONFLICT (card_id, atc) DO NOTHING
        RETURNING id
    ), l AS (
        INSERT INTO luk_uses (card_id, luk_index, uses)
        SELECT %(card)s, %(luk)s, 1 FROM a
        ON CONFLICT (card_id, luk_index) DO UPDATE SET uses = luk_uses.uses + 1
        WHERE luk_uses.uses < %(max_uses)s
        RETURNING uses
    )
    SELECT w.top, w.same, (SELECT id FROM a), (SELECT uses FROM l),
           v.id, v.fingerprint, v.key_version, v.nonce, v.ciphertext
    FROM w LEFT JOIN vault_entries v ON v.id = %(vault)s
    """
"""The ATC window, the ATC's insert, the LUK's use and the vault entry in one round trip.

The ATC is inserted only inside the window and only once (unique (card, ATC)); the LUK's use
count is raised only if the ATC went in and stays within ``max_uses``. A concurrent copy of the
same cryptogram waits on the unique index and then finds the ATC taken."""

_INSERT_TRANSACTION = insert(Base.metadata.tables["transactions"])
_INSERT_AUDIT = insert(Base.metadata.tables["audit_events"])
_RECORD_PG = """
    WITH t AS (
        INSERT INTO transactions (
            public_id, card_id, amount, currency, merchant_id, merchant_name, mcc, terminal_id,
            channel, network, atc, approved, response_code, auth_code, reason, status, luk_index,
            issuer_ref, api_key_id, created_at, settled_at
        ) VALUES (
            %(public_id)s, %(card_id)s, %(amount)s, %(currency)s, %(merchant_id)s,
            %(merchant_name)s, %(mcc)s, %(terminal_id)s, %(channel)s, %(network)s, %(atc)s,
            %(approved)s, %(response_code)s, %(auth_code)s, %(reason)s, %(status)s, %(luk_index)s,
            %(issuer_ref)s, %(api_key_id)s, %(created_at)s, %(settled_at)s
        )
    )
    INSERT INTO audit_events (at, actor, action, target, outcome, origin, detail)
    VALUES (%(at)s, %(actor)s, %(action)s, %(target)s, %(outcome)s, %(origin)s, %(detail)s)
    """
"""The transaction row and its audit row in one round trip (PostgreSQL)."""


def _expired(expiry: str, now: float) -> bool:
    """Whether a YYMM expiry is before the month of ``now`` (a card is valid through its month)."""
    if len(expiry) != 4 or not expiry.isdigit():
        return True
    moment = time.gmtime(now)
    return (2000 + int(expiry[:2]), int(expiry[2:])) < (moment.tm_year, moment.tm_mon)


def _dialect_insert(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


# ---------------------------------------------------------------------- reconciliation


@dataclass(frozen=True)
class ReconcileReport:
    """What one reconciliation run did."""

    checked: int = 0
    reversed: int = 0
    declined: int = 0
    still_in_doubt: int = 0

    def to_json(self) -> dict[str, int]:
        """As JSON."""
        return {
            "checked": self.checked,
            "reversed": self.reversed,
            "declined": self.declined,
            "stillInDoubt": self.still_in_doubt,
        }


class Reconciler:
    """Settles ``in_doubt`` transactions with the issuer (module docstring, "Time-outs").

    The terminal was told 91, so nothing may stay charged: an approval the issuer recorded is
    reversed (status ``reversed``), an unknown or declined reference is voided (``declined``).
    A network that still fails leaves the transaction in doubt for the next run.
    """

    def __init__(self, sessions: sessionmaker[Session], networks: NetworkClients) -> None:
        self.sessions = sessions
        self.networks = networks

    def reconcile(self, *, older_than_s: float = 0.0, limit: int = 500) -> ReconcileReport:
        """Settle up to ``limit`` transactions in doubt for at least ``older_than_s`` seconds."""
        cutoff = utcnow() - dt.timedelta(seconds=older_than_s)
        counts = {"checked": 0, "reversed": 0, "declined": 0, "still_in_doubt": 0}
        with self.sessions() as session:
            rows = session.scalars(
                select(Transaction)
                .where(Transaction.status == "in_doubt", Transaction.created_at <= cutoff)
                .order_by(Transaction.id)
                .limit(limit)
            ).all()
            for txn in rows:
                counts["checked"] += 1
                if txn.network is None or txn.issuer_ref is None:
                    continue
                try:
                    prior = self.networks.reverse(txn.network, txn.issuer_ref)
                except SwitchError:
                    counts["still_in_doubt"] += 1
                    continue
                if prior is not None and prior.approved:
                    txn.status = "reversed"
                    txn.reason = "approved by the issuer after the time-out; reversed"
                    counts["reversed"] += 1
                else:
                    txn.status = "declined"
                    txn.reason = (
                        "the issuer never received it; voided"
                        if prior is None
                        else f"the issuer declined ({prior.code}) after the time-out"
                    )
                    counts["declined"] += 1
                txn.settled_at = utcnow()
                audit.record(
                    session,
                    actor="system:reconciler",
                    action="payment.reconcile",
                    target=f"txn:{txn.public_id}",
                    outcome=txn.status,
                )
                session.commit()
        return ReconcileReport(**counts)
