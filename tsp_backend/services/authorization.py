"""Authorization: verify a tap's or an in-app payment's cryptogram and ask the issuer.

Why the checks run in this order
--------------------------------
An authorization is a chain of refusals, cheapest and least revealing first, and nothing is
written that a forger could spend or read. The EMV block is decoded and its required tags
checked; the token is looked up by the token PAN the card sent (Track 2 equivalent data 57,
else 5A) — never a funding PAN. Before anything about that token is said or written, its
cryptogram must verify: the ARQC is recomputed with the token's limited-use key (LUK) and
compared in constant time. A token PAN nobody issued and a cryptogram that does not verify get
the same answer (59, "the cryptogram does not verify"), and the row they leave names no card —
so a terminal that sends ``5A`` with someone else's token PAN learns nothing and writes nothing
into that person's history. An in-app payment names its card: the cryptogram must be that
card's, or the refusal (14) is written against the requester's own card. Only then come the
token's state, expiry, domain controls, the key batch, the amount and currency *inside the
cryptogram data* against the request's (a terminal cannot authorise one amount with a
cryptogram made for another) and the consumer device CVM against the CVM limit. None of these
writes anything.

A durable intent before the issuer
----------------------------------
Money moves at the issuer, so the issuer is asked only once the attempt is on disk
(:meth:`AuthorizationService.authorize`):

1. **Check** (above): reads only.
2. **Intent**, one short transaction: claim the ``Idempotency-Key``
   (:meth:`~tsp_backend.services.idempotency.IdempotencyService.claim`); spend the ATC under
   the unique (card, ATC) and one use of the LUK; insert the transaction as ``pending`` with
   its issuer reference; link the claim to it; commit. A refusal is written as a final row
   instead, with the stored answer, in the same transaction.
3. **Ask** the issuer through the network's circuit breaker, with the reference.
4. **Settle**, one short transaction: the decision on the row — only if it is still
   ``pending`` — its audit row and the stored answer; commit.

A process that dies between 2 and 4 leaves a ``pending`` row and a claim whose lease is the
request's deadline. The client's retry with the same key takes the claim over after the
lease, finds the row through the claim and runs 3 and 4 for it: the issuer, asked again with
the same reference, gives back the decision it made the first time — never a second hold,
never a 59 for an ATC that the first attempt spent. A client that never retries leaves the row
to the reconciliation (:mod:`tsp_backend.services.reconcile`), which turns ``pending`` rows past
the deadline into ``in_doubt`` and reverses or voids them at the issuer. Whoever settles a row
first wins; every other writer reads the row and answers with what it says.

Response codes (ISO 8583 field 39)
----------------------------------

====  =====================================  =================================================
code  meaning                                when
====  =====================================  =================================================
00    approved                               the issuer approved
05    do not honour                          issuer refusal; the card sent no ARQC
14    invalid card number                    the cryptogram is not from the card the in-app
                                             payment names; the token has no funding card
1A    additional customer authentication     amount above the CVM limit without a consumer
      required                               device CVM (Visa CTQ byte 2 bit 8; Mastercard CVR
                                             byte 1 bits 3 and 1, or DF4B byte 2 bit 5)
30    format error                           the EMV block does not decode or lacks a tag
51    not sufficient funds                   issuer
54    expired card                           the token or its limited-use key has expired
57    transaction not permitted              token not ACTIVE; channel, merchant or MCC
                                             outside the token's domain controls
59    suspected fraud                        no token has this token PAN, or the cryptogram
                                             does not verify; ATC replayed or out of the
                                             window; amount or currency differ from the
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

Time-outs
---------
The issuer knows each request by a reference derived from the token reference and the ATC, so
a retried request gets the first decision back (:mod:`tsp_backend.services.issuers`). A call
that times out leaves the transaction ``in_doubt`` and answers 91; the reconciliation later
asks the issuer what it recorded and reverses an approval the terminal never learnt of
(status ``reversed``) or voids the reference (``declined``): never charged twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from apdu.errors import DecodeError
from apdu.tags import CURRENCIES
from apdu.tlv import decode_flat
from cryptogram.cvn import CVN
from cryptogram.cvn import profile as cvn_profile
from cryptogram.errors import CryptogramError
from cryptogram.luk import derive_luk
from tsp_backend import metrics
from tsp_backend.config import Config
from tsp_backend.errors import IdempotencyInFlight, ValidationFailed
from tsp_backend.models import Card, KeyBatch, Transaction, VaultEntry, utcnow
from tsp_backend.services import keys as card_keys
from tsp_backend.services import magstripe, payment_rows
from tsp_backend.services.cache import token_key
from tsp_backend.services.idempotency import IN_FLIGHT, Claim, IdempotencyService, Replay
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

CHANNELS = ("contactless", "in_app", "ecommerce", "web")
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
    """The primitive data objects of a field-55 block, first occurrence wins (raises ``DecodeError``).

    :func:`apdu.tlv.decode_flat`: the values of ``to_dict(decode(data))`` without a node per object.
    """
    return decode_flat(data)


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

    def to_payment_json(self) -> dict[str, Any]:
        """The body of ``POST /api/payments/in-app``'s 200 answer (a PaymentResult: no ARPC)."""
        return {
            "approved": self.approved,
            "authCode": self.auth_code,
            "network": self.network,
            "transactionId": self.transaction_id,
            "responseCode": self.response_code,
            "reason": self.reason,
        }


ANSWER_FORMATS: dict[str, Callable[[AuthorizationResult], dict[str, Any]]] = {
    "POST /api/authorize": AuthorizationResult.to_json,
    "POST /api/payments/in-app": AuthorizationResult.to_payment_json,
    "POST /wallet/pay/confirm (authorization)": AuthorizationResult.to_payment_json,
}
"""The 200 body of each payment route, by the route an idempotency key is scoped to: the
answer stored under the key by the request, or by the reconciliation when no request is left
to store it."""


def stored_answer(route: str, result: AuthorizationResult) -> str:
    """The JSON text stored under an idempotency key of ``route`` for ``result``."""
    return json.dumps(ANSWER_FORMATS.get(route, AuthorizationResult.to_json)(result))


_WAITING = "waiting for the issuer's answer"

NO_MATCH = "the cryptogram does not verify"
"""The one reason given for a token PAN nobody issued and for a cryptogram that does not verify."""


@dataclass(frozen=True)
class IdempotentRequest:
    """Who asks, on which route, under which ``Idempotency-Key``, with which body fingerprint."""

    scope: str
    route: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class Answer:
    """What the route sends: status, JSON body, and whether it is a stored answer replayed."""

    status: int
    body: str
    replayed: bool = False
    result: AuthorizationResult | None = None


class _Decline(Exception):
    """A refusal inside :meth:`AuthorizationService.authorize`, turned into a transaction row."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class _Context:
    """What the check learnt; the refusal's row is written with what is known by then."""

    request: AuthorizationRequest
    card_id: int | None = None
    """The card a row is written against: the token once its cryptogram verified, or the card
    an in-app payment names (its owner's own); ``None`` before either."""
    network: str | None = None
    user_id: int | None = None
    """The owner of :attr:`card_id`."""
    token: TokenSnapshot | None = None
    atc: int | None = None
    luk_index: int | None = None
    max_uses: int = 0
    arpc_of: Callable[[str], bytes] | None = None

    def attribute(self, card_id: int, network: str, user_id: int) -> None:
        """From now on, rows are written against ``card_id`` (of ``user_id``)."""
        self.card_id, self.network, self.user_id = card_id, network, user_id

    def arpc(self, card_id: int | None, code: str) -> bytes | None:
        """The ARPC for response ``code``, when this request's cryptogram verified for ``card_id``."""
        if self.arpc_of is None or self.token is None or self.token.card_id != card_id or not code:
            return None
        return self.arpc_of(code)


class AuthorizationService:
    """Verifies cryptograms, writes the intent, asks issuers, settles (module docstring)."""

    def __init__(
        self,
        config: Config,
        store: Store,
        vault: Vault,
        networks: NetworkClients,
        idempotency: IdempotencyService,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self.vault = vault
        self.networks = networks
        self.idempotency = idempotency
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

    # ------------------------------------------------------------------ the whole authorization

    @metrics.phases
    def authorize(
        self,
        session: Session,
        request: AuthorizationRequest,
        idempotency: IdempotentRequest,
        *,
        actor: str,
        origin: str | None = None,
    ) -> Answer:
        """Check, write the intent, ask the issuer, settle (module docstring); the route's answer.

        ``session`` is the request's; this method commits it at each step. The 200 body is the
        route's format (:data:`ANSWER_FORMATS`); it is stored under the key and replayed.
        Raises 409/422 problems for a key in flight or reused.
        """
        route = idempotency.route
        ctx = _Context(request)
        try:
            self._check(session, ctx)
            decline: _Decline | None = None
        except _Decline as refusal:
            decline = refusal
        metrics.lap("check")
        session.rollback()
        postgres = session.get_bind().dialect.name == "postgresql"
        if decline is None and postgres:
            fast = self._intent_pg(session, ctx, idempotency, actor, origin)
            if isinstance(fast, Answer):
                return fast
            if fast is not None:
                return self._ask_and_settle(session, fast[0], fast[1], ctx, fast[2], actor, origin, route)

        claim = self.idempotency.claim(
            session, idempotency.scope, idempotency.route, idempotency.key, idempotency.fingerprint
        )
        if isinstance(claim, Replay):
            session.rollback()
            return Answer(claim.status, claim.body, replayed=True)
        if claim.transaction_id is not None:
            txn = payment_rows.load(session, claim.transaction_id)
            session.commit()
            if txn is not None:
                if txn.status == "pending":
                    return self._ask_and_settle(
                        session, claim, payment_rows.Pending.of(txn), ctx, None, actor, origin, route
                    )
                return self._answer_from_row(session, claim, txn, ctx, route)

        entry: VaultEntry | None = None
        if decline is None:
            try:
                entry = self._spend(session, ctx)
            except _Decline as refusal:
                decline = refusal
        if decline is not None:
            return self._refuse(session, claim, ctx, decline, actor, origin, route)

        row = self._pending_row(ctx)
        transaction_id = payment_rows.insert_transaction(session, row)
        self.idempotency.attach(session, claim, transaction_id)
        session.commit()
        pending = payment_rows.Pending.of_row(transaction_id, row)
        return self._ask_and_settle(session, claim, pending, ctx, entry, actor, origin, route)

    def _intent_pg(
        self,
        session: Session,
        ctx: _Context,
        idempotency: IdempotentRequest,
        actor: str,
        origin: str | None,
    ) -> tuple[Claim, payment_rows.Pending, VaultEntry | None] | Answer | None:
        """The intent in one statement (:func:`~tsp_backend.services.payment_rows.intent_pg`).

        The claim, the pending row and the vault entry; an :class:`Answer` when the spend was
        refused (written here); ``None`` when the key was not new (the general path decides).
        """
        token = ctx.token
        assert token is not None
        now = self.idempotency.clock()
        row = self._pending_row(ctx)
        params = {
            **row,
            "scope": idempotency.scope,
            "route": idempotency.route,
            "key": idempotency.key,
            "lock": self.idempotency.lock_name(idempotency.scope, idempotency.route, idempotency.key),
            "request_hash": idempotency.fingerprint,
            "now": now,
            "expires_at": now + dt.timedelta(seconds=self.idempotency.ttl_s),
            "lookback": ATC_LOOKBACK,
            "lookahead": ATC_LOOKAHEAD,
            "max_uses": ctx.max_uses,
            "vault_id": token.vault_id,
        }
        with _autocommit(session) as connection:
            intent = payment_rows.intent_pg(connection, params)
        if not intent.locked:
            raise IdempotencyInFlight(IN_FLIGHT)
        if intent.claim_id is None:
            return None
        claim = Claim(intent.claim_id, now, intent.transaction_id)
        if not intent.inserted:
            decline = self._refusal_of(intent.spent, ctx.atc or 0)
            assert decline is not None, "the pending row is written whenever the spend went through"
            return self._refuse(
                session, claim, ctx, decline, actor, origin, idempotency.route, row_id=intent.transaction_id
            )
        pending = payment_rows.Pending.of_row(intent.transaction_id, row)
        return claim, pending, intent.spent.entry

    def _refuse(
        self,
        session: Session,
        claim: Claim,
        ctx: _Context,
        decline: _Decline,
        actor: str,
        origin: str | None,
        route: str,
        *,
        row_id: int | None = None,
    ) -> Answer:
        """Write a refusal's row and audit row, store the answer under the claim, commit."""
        result = self._write_final(session, ctx, decline, actor, origin, row_id=row_id)
        body = stored_answer(route, result)
        self.idempotency.complete(session, claim, 200, body)
        session.commit()
        return Answer(200, body, result=result)

    # ------------------------------------------------------------------ 1. the check

    def _check(self, session: Session, ctx: _Context) -> None:
        """Every refusal that needs no write (module docstring, "Why the checks run in this order")."""
        request = ctx.request
        currency = currency_numeric(request.currency)
        if request.card_id is not None:
            chosen = session.execute(
                select(Card.network, Card.user_id).where(Card.id == request.card_id)
            ).one_or_none()
            if chosen is not None:
                ctx.attribute(request.card_id, chosen[0], chosen[1])
        try:
            tlvs = parse_emv(request.emv)
        except DecodeError:
            raise _Decline("30", "the EMV data is not valid BER-TLV") from None
        mag_stripe = 0x9F26 not in tlvs and 0x9F61 in tlvs
        required = (0x9F6B, 0x9F36, 0x9F6A) if mag_stripe else (0x9F26, 0x9F36, 0x9F10, 0x9F02, 0x5F2A)
        for tag in required:
            if tag not in tlvs:
                raise _Decline("30", f"the EMV data lacks tag {tag:02X}")
        pan = token_pan_of(tlvs)
        if pan is None:
            raise _Decline("30", "the EMV data has no token PAN (57 or 5A)")
        cid = tlvs.get(0x9F27)
        if cid is not None and (len(cid) != 1 or cid[0] & 0xC0 != 0x80):
            raise _Decline("05", "the card did not ask for online authorization (no ARQC)")

        token = self.token(session, pan)
        if request.card_id is not None and (token is None or token.card_id != request.card_id):
            raise _Decline("14", "the cryptogram was not made by the chosen card")
        if token is None:
            raise _Decline("59", NO_MATCH)
        if mag_stripe:
            self._check_cvc3(ctx, token, tlvs, pan, currency)
            return

        atc = int.from_bytes(tlvs[0x9F36], "big")
        cvn = cvn_profile(NETWORKS[token.network].cvn)
        try:
            iad = cvn.parse_iad(tlvs[0x9F10])
        except CryptogramError:
            raise _Decline("59", NO_MATCH) from None
        luk_index = iad.luk_index
        if iad.cvn != cvn.number or luk_index is None:
            raise _Decline("59", NO_MATCH)
        tmk = card_keys.token_master_key(self.config.issuer_master_keys, pan, token.psn)
        luk = derive_luk(tmk, luk_index)
        arqc = tlvs[0x9F26]
        try:
            genuine = cvn.verify(luk, tlvs, arqc)
        except CryptogramError:
            genuine = False
        if not genuine:
            raise _Decline("59", NO_MATCH)

        ctx.token, ctx.atc, ctx.luk_index = token, atc, luk_index
        ctx.attribute(token.card_id, token.network, token.user_id)

        def arpc_of(code: str) -> bytes:
            return cvn.issuer_authentication_data(luk, tlvs, arqc, arc=code.encode("ascii"))

        ctx.arpc_of = arpc_of
        batch = token.batch_of(luk_index)
        if batch is None:
            raise _Decline("59", "the limited-use key was never issued to this token")
        if batch[3] < self.clock():
            raise _Decline("54", "the limited-use key has expired")
        ctx.max_uses = batch[2]
        self._token_policy(token, request)
        if bcd_value(tlvs[0x9F02]) != request.amount:
            raise _Decline("59", "the amount differs from the amount in the cryptogram")
        if bcd_value(tlvs[0x5F2A]) != currency:
            raise _Decline("59", "the currency differs from the currency in the cryptogram")
        if request.amount > CVM_LIMIT and not device_cvm_performed(cvn, tlvs, iad.cvr):
            raise _Decline("1A", "the amount needs the holder to verify on the phone")

    def _check_cvc3(
        self, ctx: _Context, token: TokenSnapshot, tlvs: Mapping[int, bytes], pan: str, currency: int
    ) -> None:
        """The mag-stripe mode check: the CVC3 in Track 2 (:mod:`tsp_backend.services.magstripe`).

        As for an ARQC, nothing about the token is said before the CVC3 verifies; there is no ARPC.
        """
        tmk = card_keys.token_master_key(self.config.issuer_master_keys, pan, token.psn)
        found = magstripe.find_key(tlvs, tmk=tmk, batches=token.batches, now=self.clock())
        if isinstance(found, str):
            raise _Decline("59", NO_MATCH)
        luk_index, atc = found
        ctx.token, ctx.atc, ctx.luk_index = token, atc, luk_index
        ctx.attribute(token.card_id, token.network, token.user_id)
        batch = token.batch_of(luk_index)
        assert batch is not None
        ctx.max_uses = batch[2]
        self._token_policy(token, ctx.request)
        if 0x9F02 in tlvs and bcd_value(tlvs[0x9F02]) != ctx.request.amount:
            raise _Decline("59", "the amount differs from the amount the terminal sent")
        if 0x5F2A in tlvs and bcd_value(tlvs[0x5F2A]) != currency:
            raise _Decline("59", "the currency differs from the currency the terminal sent")

    def _token_policy(self, token: TokenSnapshot, request: AuthorizationRequest) -> None:
        """The token's state, expiry and domain controls."""
        if token.status != TokenState.ACTIVE.value:
            raise _Decline("57", f"the token is {token.status}")
        if _expired(token.token_expiry, self.clock()):
            raise _Decline("54", "the token has expired")
        self._domain_controls(token, request)

    @staticmethod
    def _domain_controls(token: TokenSnapshot, request: AuthorizationRequest) -> None:
        if token.channels is not None and request.channel not in token.channels:
            raise _Decline("57", f"the token may not pay in the {request.channel} channel")
        if token.merchants is not None and (request.merchant_id or "") not in token.merchants:
            raise _Decline("57", "the token may not pay this merchant")
        if request.mcc and request.mcc in token.blocked_mccs:
            raise _Decline("57", f"the token may not pay merchants of category {request.mcc}")

    # ------------------------------------------------------------------ 2. the intent

    def _spend(self, session: Session, ctx: _Context) -> VaultEntry:
        """Spend the ATC and one use of the LUK (``payment_rows.consume``); the token's vault entry."""
        token, atc, luk_index = ctx.token, ctx.atc, ctx.luk_index
        assert token is not None and atc is not None and luk_index is not None
        spent = payment_rows.consume(
            session,
            card_id=token.card_id,
            atc=atc,
            luk_index=luk_index,
            max_uses=ctx.max_uses,
            vault_id=token.vault_id,
            lookback=ATC_LOOKBACK,
            lookahead=ATC_LOOKAHEAD,
        )
        refusal = self._refusal_of(spent, ctx.atc or 0)
        if refusal is not None:
            raise refusal
        if spent.entry is None:
            raise _Decline("14", "the token has no funding card")
        return spent.entry

    @staticmethod
    def _refusal_of(spent: payment_rows.Spent, atc: int) -> _Decline | None:
        """The refusal of a spend that did not go through (ATC window, replay, key uses), if any.

        An ATC inside the window that still did not go in was taken by a concurrent copy: a replay.
        """
        if not spent.inserted:
            if spent.top is not None and not spent.replayed:
                if atc < spent.top - ATC_LOOKBACK:
                    return _Decline("59", "the ATC is too far below the highest seen")
                if atc > spent.top + ATC_LOOKAHEAD:
                    return _Decline("59", "the ATC jumped too far above the highest seen")
            return _Decline("59", "the cryptogram's ATC was used before (replay)")
        if spent.uses is None:
            return _Decline("65", "the limited-use key has made all its cryptograms; replenish")
        return None

    @classmethod
    def _pending_row(cls, ctx: _Context) -> dict[str, Any]:
        """The row of a verified cryptogram about to be sent to the issuer."""
        assert ctx.token is not None and ctx.atc is not None
        reference = issuer_reference(ctx.token.token_ref, ctx.atc)
        return cls._row(ctx, status="pending", code="", reason=_WAITING, reference=reference)

    @staticmethod
    def _row(
        ctx: _Context, *, status: str, code: str, reason: str, reference: str | None
    ) -> dict[str, Any]:
        request = ctx.request
        now = utcnow()
        return {
            "public_id": "txn_" + secrets.token_hex(10),
            "card_id": ctx.card_id,
            "user_id": ctx.user_id,
            "amount": request.amount,
            "currency": request.currency.upper()[:3],
            "merchant_id": (request.merchant_id or None) and request.merchant_id[:64],
            "merchant_name": (request.merchant_name or None) and request.merchant_name[:120],
            "mcc": request.mcc,
            "terminal_id": (request.terminal_id or None) and request.terminal_id[:64],
            "channel": request.channel,
            "network": ctx.network,
            "atc": ctx.atc if ctx.token is not None else None,
            "approved": status == "approved",
            "response_code": code,
            "auth_code": None,
            "reason": reason[:120],
            "status": status,
            "luk_index": ctx.luk_index if ctx.token is not None else None,
            "issuer_ref": reference,
            "api_key_id": request.api_key_id,
            "created_at": now,
            "settled_at": None if status in ("pending", "in_doubt") else now,
        }

    def _write_final(
        self,
        session: Session,
        ctx: _Context,
        decline: _Decline,
        actor: str,
        origin: str | None,
        *,
        row_id: int | None = None,
    ) -> AuthorizationResult:
        """A refusal's row and audit row (in the claim's transaction), with ``row_id`` if allocated."""
        row = self._row(ctx, status="declined", code=decline.code, reason=decline.reason, reference=None)
        if row_id is not None:
            row["id"] = row_id
        payment_rows.insert_transaction(session, row)
        payment_rows.insert_audit(
            session,
            payment_rows.audit_event(
                actor=actor,
                public_id=row["public_id"],
                code=decline.code,
                status="declined",
                origin=origin,
                detail={"card": ctx.card_id, "channel": ctx.request.channel, "network": ctx.network},
            ),
        )
        arpc = ctx.arpc_of(decline.code) if ctx.arpc_of is not None else None
        return AuthorizationResult(
            approved=False,
            response_code=decline.code,
            reason=decline.reason,
            transaction_id=row["public_id"],
            status="declined",
            network=ctx.network,
            arpc=arpc,
            card_id=ctx.card_id,
        )

    # ------------------------------------------------------------------ 3. and 4. ask and settle

    def _ask_and_settle(
        self,
        session: Session,
        claim: Claim,
        pending: payment_rows.Pending,
        ctx: _Context,
        entry: VaultEntry | None,
        actor: str,
        origin: str | None,
        route: str,
    ) -> Answer:
        """Ask the issuer for a ``pending`` row and record its decision; the answer.

        When someone else settled the row first (a retry, the reconciliation), the answer is
        what the row says.
        """
        if entry is None:
            entry = self._vault_entry(session, pending.card_id)
            session.rollback()
        metrics.lap("intent")
        status, code, reason, auth_code = self._ask(pending, entry)
        metrics.lap("issuer")
        arpc = ctx.arpc(pending.card_id, code)
        result = AuthorizationResult(
            approved=status == "approved",
            response_code=code,
            reason=reason,
            transaction_id=pending.public_id,
            status=status,
            network=pending.network,
            auth_code=auth_code,
            arpc=arpc,
            card_id=pending.card_id,
        )
        body = stored_answer(route, result)
        event = payment_rows.audit_event(
            actor=actor,
            public_id=pending.public_id,
            code=code,
            status=status,
            origin=origin,
            detail={"card": pending.card_id, "channel": pending.channel, "network": pending.network},
        )
        if session.get_bind().dialect.name == "postgresql":
            now = utcnow()
            params = {
                **event,
                "transaction_id": pending.id,
                "status": status,
                "approved": status == "approved",
                "code": code,
                "reason": reason[:120],
                "auth_code": auth_code,
                "settled_at": None if status == "in_doubt" else now,
                "answer": body,
                "claim_id": claim.id,
                "claim_locked_at": claim.locked_at,
            }
            with _autocommit(session) as connection:
                settled, _stored = payment_rows.settle_pg(connection, params)
            if settled:
                return Answer(200, body, result=result)
        elif payment_rows.settle(
            session, pending.id, status=status, code=code, reason=reason, auth_code=auth_code
        ):
            payment_rows.insert_audit(session, event)
            return self._store_answer(session, claim, Answer(200, body, result=result))
        session.rollback()
        txn = payment_rows.load(session, pending.id)
        assert txn is not None
        return self._answer_from_row(session, claim, txn, ctx, route)

    def _answer_from_row(
        self, session: Session, claim: Claim, txn: Transaction, ctx: _Context, route: str
    ) -> Answer:
        """The answer a settled row stands for, stored under the claim."""
        result = result_of(txn, ctx.arpc(txn.card_id, txn.response_code))
        return self._store_answer(session, claim, Answer(200, stored_answer(route, result), result=result))

    def _store_answer(self, session: Session, claim: Claim, answer: Answer) -> Answer:
        """Store ``answer`` under the claim and commit; the answer someone else stored, if they did."""
        try:
            self.idempotency.complete(session, claim, answer.status, answer.body)
        except IdempotencyInFlight:
            session.rollback()
            stored = self.idempotency.answer_of(session, claim)
            session.rollback()
            if stored is None:
                raise
            return Answer(stored.status, stored.body)
        session.commit()
        return answer

    @staticmethod
    def _vault_entry(session: Session, card_id: int | None) -> VaultEntry | None:
        vault_id = session.scalar(select(Card.vault_id).where(Card.id == card_id))
        return None if vault_id is None else session.get(VaultEntry, vault_id)

    def _ask(self, txn: payment_rows.Pending, entry: VaultEntry | None) -> tuple[str, str, str, str | None]:
        """The issuer's decision on ``txn``: (status, response code, reason, auth code)."""
        if entry is None or txn.network is None or txn.issuer_ref is None:
            return "declined", "14", "the token has no funding card", None
        issuer_request = IssuerRequest(
            reference=txn.issuer_ref,
            pan=self.vault.decrypt(entry),
            amount=txn.amount,
            currency=txn.currency,
            merchant_id=txn.merchant_id or "",
            mcc=txn.mcc or "",
        )
        try:
            decision: IssuerDecision = self.networks.authorize(txn.network, issuer_request)
        except SwitchTimeout as exc:
            return "in_doubt", "91", str(exc), None
        except SwitchError as exc:
            reason = str(exc) if isinstance(exc, CircuitOpen) else f"{exc}; try again later"
            return "declined", "91", reason, None
        status = "approved" if decision.approved else "declined"
        return status, decision.code, decision.reason, decision.auth_code


@contextmanager
def _autocommit(session: Session) -> Iterator[Any]:
    """A psycopg connection of ``session``'s engine in autocommit mode: one statement, one commit."""
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        yield connection.connection.driver_connection


def result_of(txn: Transaction, arpc: bytes | None = None) -> AuthorizationResult:
    """The answer a transaction row stands for."""
    return AuthorizationResult(
        approved=txn.status == "approved",
        response_code=txn.response_code,
        reason=txn.reason or "",
        transaction_id=txn.public_id,
        status=txn.status,
        network=txn.network,
        auth_code=txn.auth_code,
        arpc=arpc,
        card_id=txn.card_id,
    )


def _expired(expiry: str, now: float) -> bool:
    """Whether a YYMM expiry is before the month of ``now`` (a card is valid through its month)."""
    if len(expiry) != 4 or not expiry.isdigit():
        return True
    moment = time.gmtime(now)
    return (2000 + int(expiry[:2]), int(expiry[2:])) < (moment.tm_year, moment.tm_mon)
