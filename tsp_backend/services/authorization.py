"""Authorization: verify a tap's or an in-app payment's cryptogram and ask the issuer.

The decision — which refusal, or whether the issuer is asked — is pure and lives in
:mod:`tsp_backend.services.verdict` (the order of the checks, the response codes); every write
is :mod:`tsp_backend.services.payment_rows`'s, in its SQLite and PostgreSQL forms (the ATC
window is there). This module reads the token, runs the decision, and orders the writes around
the issuer.

A durable intent before the issuer
----------------------------------
Money moves at the issuer, so the issuer is asked only once the attempt is on disk
(:meth:`AuthorizationService.authorize`):

1. **Check** (:func:`~tsp_backend.services.verdict.decide`): reads only.
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
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from apdu.cid import cryptogram_type
from apdu.currency import currency
from apdu.errors import DecodeError, PanMismatch
from apdu.formats import decode_n
from apdu.pan import card_pan, track2_pan
from apdu.tlv import decode_flat
from tsp_backend import metrics
from tsp_backend.config import Config
from tsp_backend.errors import IdempotencyInFlight, Unauthorized, ValidationFailed
from tsp_backend.models import VaultEntry
from tsp_backend.services import payment_intent, payment_rows
from tsp_backend.services.answers import (
    ANSWER_FORMATS,
    Answer,
    AuthorizationResult,
    IdempotentRequest,
    result_of,
    stored_answer,
)
from tsp_backend.services.cache import token_key
from tsp_backend.services.idempotency import IN_FLIGHT, Claim, IdempotencyService, Replay
from tsp_backend.services.networks import NetworkClients
from tsp_backend.services.settlement import Settlement
from tsp_backend.services.terminals import KEY_REQUIRED, is_revoked, revocation_marker
from tsp_backend.services.vault import Vault
from tsp_backend.services.verdict import (
    AuthorizationRequest,
    Decline,
    ResponseCode,
    Tap,
    TokenSnapshot,
    Verdict,
    decide,
)
from tsp_backend.stores import Store

__all__ = [
    "ANSWER_FORMATS",
    "CHANNELS",
    "Answer",
    "AuthorizationRequest",
    "AuthorizationResult",
    "AuthorizationService",
    "IdempotentRequest",
    "currency_numeric",
    "parse_emv",
    "result_of",
    "stored_answer",
    "token_pan_of",
]
"""The names the routes use; the result types are :mod:`tsp_backend.services.answers`', the
request is :mod:`tsp_backend.services.verdict`'s."""

CHANNELS = ("contactless", "in_app", "ecommerce", "web")
"""The channels a token can pay in (domain controls restrict them)."""

def currency_numeric(code: str) -> int:
    """The ISO 4217 numeric code of an alphabetic code (``"EUR"`` → 978).

    >>> currency_numeric("EUR"), currency_numeric("jpy")
    (978, 392)
    """
    found = currency(code) if code.strip().isalpha() else None
    if found is None:
        raise ValidationFailed(f"unknown ISO 4217 currency {code!r}", field="currency")
    return found.number


def token_pan_of(tlvs: Mapping[int, bytes]) -> str | None:
    """The token PAN of a block: the card's PAN (:func:`apdu.pan.card_pan`: 5A, else 57), or in
    mag-stripe mode the PAN of its Track 2 (9F6B). Raises ``PanMismatch`` when 5A and 57 differ.

    >>> token_pan_of({0x57: bytes.fromhex("4895370012003478D29122010000000000000F")})
    '4895370012003478'
    """
    pan = card_pan(tlvs)
    if pan is None and 0x9F6B in tlvs:
        pan = track2_pan(tlvs[0x9F6B])
    return pan


def parse_emv(data: bytes) -> dict[int, bytes]:
    """The primitive data objects of a field-55 block, first occurrence wins (raises ``DecodeError``).

    :func:`apdu.tlv.decode_flat`: the values of ``to_dict(decode(data))`` without a node per object.
    """
    return decode_flat(data)


def issuer_reference(token_ref: str, atc: int) -> str:
    """The issuer's name of one cryptogram: unique per token and ATC, stable across retries."""
    return hashlib.sha256(f"{token_ref}:{atc}".encode()).hexdigest()[:32]


def parse_tap(data: bytes) -> Tap | Decline:
    """The block's token PAN, amount and currency, or the refusal of a block that does not parse."""
    try:
        tlvs = parse_emv(data)
    except DecodeError:
        return Decline(ResponseCode.FORMAT_ERROR, "the EMV data is not valid BER-TLV")
    mag_stripe = 0x9F26 not in tlvs and 0x9F61 in tlvs
    required = (0x9F6B, 0x9F36, 0x9F6A) if mag_stripe else (0x9F26, 0x9F36, 0x9F10, 0x9F02, 0x5F2A)
    for tag in required:
        if tag not in tlvs:
            return Decline(ResponseCode.FORMAT_ERROR, f"the EMV data lacks tag {tag:02X}")
    try:
        pan = token_pan_of(tlvs)
    except PanMismatch:
        return Decline(ResponseCode.FORMAT_ERROR, "the PAN (5A) and the PAN of Track 2 (57) differ")
    if pan is None:
        return Decline(ResponseCode.FORMAT_ERROR, "the EMV data has no token PAN (57 or 5A)")
    cid = tlvs.get(0x9F27)
    if cid is not None and (len(cid) != 1 or cryptogram_type(cid[0]) != "ARQC"):
        return Decline(ResponseCode.DO_NOT_HONOUR, "the card did not ask for online authorization (no ARQC)")
    amount = decode_n(tlvs[0x9F02]) if 0x9F02 in tlvs else None
    currency = decode_n(tlvs[0x5F2A]) if 0x5F2A in tlvs else None
    return Tap(tlvs, pan, mag_stripe, amount, currency)


_WAITING = "waiting for the issuer's answer"


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
    verdict: Verdict = field(default_factory=lambda: Verdict(None))

    def arpc(self, card_id: int | None, code: str) -> bytes | None:
        """The ARPC for response ``code``, when this request's cryptogram verified for ``card_id``."""
        verdict = self.verdict
        if verdict.arpc_of is None or verdict.token is None or verdict.token.card_id != card_id or not code:
            return None
        return verdict.arpc_of(code)

    def row(self, *, status: str, code: str, reason: str, reference: str | None = None) -> dict[str, Any]:
        """This request's transaction row (:func:`~tsp_backend.services.payment_rows.transaction_row`)."""
        verified = self.verdict.token is not None
        return payment_rows.transaction_row(
            self.request,
            card_id=self.card_id,
            user_id=self.user_id,
            network=self.network,
            atc=self.verdict.atc if verified else None,
            luk_index=self.verdict.luk_index if verified else None,
            status=status,
            code=code,
            reason=reason,
            reference=reference,
        )

    def pending_row(self) -> dict[str, Any]:
        """The row of a verified cryptogram about to be sent to the issuer."""
        token, atc = self.verdict.token, self.verdict.atc
        assert token is not None and atc is not None
        reference = issuer_reference(token.token_ref, atc)
        return self.row(status="pending", code="", reason=_WAITING, reference=reference)


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
        self.settlement = Settlement(vault, networks, idempotency)

    def token(
        self, session: Session, token_pan: str, *, api_key_id: int | None = None
    ) -> TokenSnapshot | None:
        """The token with this token PAN (read through the store's ``token:`` cache).

        With ``api_key_id`` the same store round trip reads the terminal key's revocation marker
        (:mod:`tsp_backend.services.terminals`); a revoked key is refused (401) before any write.
        """
        key = token_key(token_pan)
        if api_key_id is None:
            cached = self.store.get(key)
        else:
            cached, revoked = self.store.get_many(key, revocation_marker(api_key_id))
            if revoked is not None:
                raise Unauthorized(KEY_REQUIRED)
        if cached is not None:
            return TokenSnapshot.from_json(cached)
        snapshot = payment_rows.token_snapshot(session, token_pan)
        if snapshot is not None:
            self.store.set(key, snapshot.to_json().encode(), self.config.card_cache_ttl_s)
        return snapshot

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
        Raises 409/422 problems for a key in flight or reused. An approval of a token whose
        snapshot says an issuer action waits is marked (:attr:`Answer.issuer_actions`): only then
        does the route bind one, so an approval of any other token costs nothing more.
        """
        ctx = _Context(request)
        answer = self._authorize(session, ctx, idempotency, actor, origin)
        token, result = ctx.verdict.token, answer.result
        if token is not None and token.issuer_actions and result is not None and result.approved:
            return replace(answer, issuer_actions=True)
        return answer

    def _authorize(
        self, session: Session, ctx: _Context, idempotency: IdempotentRequest, actor: str, origin: str | None,
    ) -> Answer:
        route = idempotency.route
        decline = self._check(session, ctx)
        metrics.lap("check")
        session.rollback()
        if decline is None and session.get_bind().dialect.name == "postgresql":
            fast = self._intent_pg(session, ctx, idempotency, actor, origin)
            if isinstance(fast, Answer):
                return fast
            if fast is not None:
                return self.settlement.ask_and_settle(
                    session, fast[0], fast[1], fast[2], ctx.arpc, actor=actor, origin=origin, route=route
                )

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
                    pending = payment_rows.Pending.of(txn)
                    return self.settlement.ask_and_settle(
                        session, claim, pending, None, ctx.arpc, actor=actor, origin=origin, route=route
                    )
                return self.settlement.answer_from_row(session, claim, txn, ctx.arpc, route)

        entry: VaultEntry | None = None
        if decline is None:
            verdict = ctx.verdict
            assert verdict.token is not None and verdict.atc is not None and verdict.luk_index is not None
            spent = payment_rows.consume(
                session,
                card_id=verdict.token.card_id,
                atc=verdict.atc,
                luk_index=verdict.luk_index,
                max_uses=verdict.max_uses,
                vault_id=verdict.token.vault_id,
            )
            decline = spent.refusal()
            if decline is None and spent.entry is None:
                decline = Decline(ResponseCode.INVALID_CARD, "the token has no funding card")
            entry = spent.entry
        if decline is not None:
            return self._refuse(session, claim, ctx, decline, actor, origin, route)

        row = ctx.pending_row()
        transaction_id = payment_rows.insert_transaction(session, row)
        self.idempotency.attach(session, claim, transaction_id)
        session.commit()
        pending = payment_rows.Pending.of_row(transaction_id, row)
        return self.settlement.ask_and_settle(
            session, claim, pending, entry, ctx.arpc, actor=actor, origin=origin, route=route
        )

    def _check(self, session: Session, ctx: _Context) -> Decline | None:
        """The reads and the decision (:func:`~tsp_backend.services.verdict.decide`): a refusal, or none."""
        request = ctx.request
        currency = currency_numeric(request.currency)
        if request.card_id is not None:
            chosen = payment_rows.card_owner(session, request.card_id)
            if chosen is not None:
                ctx.card_id, ctx.network, ctx.user_id = request.card_id, *chosen
        tap = parse_tap(request.emv)
        if isinstance(tap, Decline):
            if request.api_key_id is not None and is_revoked(self.store, request.api_key_id):
                raise Unauthorized(KEY_REQUIRED)
            return tap
        token = self.token(session, tap.pan, api_key_id=request.api_key_id)
        ctx.verdict = decide(
            tap, token, request, currency=currency, master_keys=self.config.issuer_master_keys,
            now=self.clock(),
        )
        if ctx.verdict.token is not None:
            token = ctx.verdict.token
            ctx.card_id, ctx.network, ctx.user_id = token.card_id, token.network, token.user_id
        return ctx.verdict.decline

    def _intent_pg(
        self,
        session: Session,
        ctx: _Context,
        idempotency: IdempotentRequest,
        actor: str,
        origin: str | None,
    ) -> tuple[Claim, payment_rows.Pending, VaultEntry | None] | Answer | None:
        """The intent in one statement (:func:`~tsp_backend.services.payment_intent.intent_pg`).

        The claim, the pending row and the vault entry; an :class:`Answer` when the spend was
        refused (written here); ``None`` when the key was not new (the general path decides).
        """
        token = ctx.verdict.token
        assert token is not None
        now = self.idempotency.clock()
        row = ctx.pending_row()
        params = {
            **row,
            "scope": idempotency.scope,
            "route": idempotency.route,
            "key": idempotency.key,
            "lock": self.idempotency.lock_name(idempotency.scope, idempotency.route, idempotency.key),
            "request_hash": idempotency.fingerprint,
            "now": now,
            "expires_at": now + dt.timedelta(seconds=self.idempotency.ttl_s),
            "max_uses": ctx.verdict.max_uses,
            "vault_id": token.vault_id,
        }
        with payment_intent.autocommit(session) as connection:
            intent = payment_intent.intent_pg(connection, params)
        if not intent.locked:
            raise IdempotencyInFlight(IN_FLIGHT)
        if intent.claim_id is None:
            return None
        claim = Claim(intent.claim_id, now, intent.transaction_id)
        if not intent.inserted:
            decline = intent.spent.refusal()
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
        decline: Decline,
        actor: str,
        origin: str | None,
        route: str,
        *,
        row_id: int | None = None,
    ) -> Answer:
        """Write a refusal's row and audit row, store the answer under the claim, commit."""
        code = decline.code.value
        row = ctx.row(status="declined", code=code, reason=decline.reason)
        if row_id is not None:
            row["id"] = row_id
        detail = {"card": ctx.card_id, "channel": ctx.request.channel, "network": ctx.network}
        payment_rows.insert_final(session, row, actor=actor, origin=origin, detail=detail)
        verdict = ctx.verdict
        result = AuthorizationResult(
            approved=False,
            response_code=code,
            reason=decline.reason,
            transaction_id=row["public_id"],
            status="declined",
            network=ctx.network,
            arpc=verdict.arpc_of(code) if verdict.arpc_of is not None else None,
            card_id=ctx.card_id,
        )
        body = stored_answer(route, result)
        self.idempotency.complete(session, claim, 200, body)
        session.commit()
        return Answer(200, body, result=result)
