"""Payments: terminal authorization, in-app payments, domain controls, reconciliation.

* ``POST /api/authorize`` — terminal API key (``Authorization: Bearer hk_…``) and
  ``Idempotency-Key`` (scoped to the key): a tap's field-55 block, amount, merchant, channel.
* ``POST /api/payments/in-app`` — a wallet session and ``Idempotency-Key``: the payment sheet's
  PaymentRequest with the cryptogram the wallet's card made for the ``in_app`` channel.
* ``PUT /api/cards/{id}/controls`` — a wallet session: the token's domain controls.
* ``POST /api/admin/reconcile`` — an administrator (or dev mode): settle in-doubt transactions.

Declines are ``200`` answers with ``approved: false`` and an ISO 8583 response code (see
:mod:`tsp_backend.services.authorization`); problems (401, 400, 409, 422) are RFC 9457.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from typing import Annotated, Any, Literal

from flask import Blueprint, Flask, Response, current_app, g, request
from pydantic import Field
from sqlalchemy.orm import Session

from apdu.tags import CURRENCIES
from tsp_backend.api.common import (
    Services,
    audit_card_change,
    body,
    commit_json,
    current_user,
    db,
    idempotent,
    json_response,
    login_required,
    origin,
    services,
)
from tsp_backend.api.schemas import Body, Id, Text, one_of
from tsp_backend.errors import (
    PROBLEM_MEDIA_TYPE,
    Forbidden,
    IdempotencyKeyMissing,
    TSPError,
    Unauthorized,
    ValidationFailed,
)
from tsp_backend.models import ApiKey
from tsp_backend.services.authorization import (
    CHANNELS,
    AuthorizationRequest,
    AuthorizationService,
    Reconciler,
)
from tsp_backend.services.idempotency import Replay
from tsp_backend.services.terminals import authenticate_api_key

bp = Blueprint("payments", __name__)

API_KEY_CACHE_S = 30.0
"""How long a process remembers a terminal key it authenticated (a revocation takes this long)."""


CURRENCY_PATTERN = one_of(sorted({alpha for alpha, _exp in CURRENCIES.values()}))
"""The ISO 4217 alphabetic codes the service knows (``apdu.tags.CURRENCIES``)."""

MCC_PATTERN = r"^(?:[0-9]{4})?$"
"""A merchant category code: four ASCII digits, or empty."""

HEX_PATTERN = r"^(?:[0-9A-Fa-f]{2})+$"
"""Hex of whole bytes."""


class MerchantBody(Body):
    """The merchant of an authorization."""

    id: Text = Field(default="", max_length=64)
    name: Text = Field(default="", max_length=120)
    mcc: str = Field(default="", pattern=MCC_PATTERN)


class TerminalRef(Body):
    """The terminal of an authorization."""

    id: Text = Field(default="", max_length=64)


class AuthorizeBody(Body):
    """POST /api/authorize."""

    emv: str = Field(min_length=2, max_length=4096, pattern=HEX_PATTERN)
    amount: int = Field(ge=0, le=10**12)
    currency: str = Field(pattern=CURRENCY_PATTERN)
    merchant: MerchantBody = Field(default_factory=MerchantBody)
    channel: Literal["contactless", "in_app", "ecommerce"] = "contactless"
    terminal: TerminalRef = Field(default_factory=TerminalRef)


class PaymentRequestBody(Body):
    """POST /api/payments/in-app: the payment sheet's PaymentRequest and the card's cryptogram."""

    card_id: Id = Field(alias="cardId")
    amount: int = Field(ge=0, le=10**12)
    currency: str = Field(pattern=CURRENCY_PATTERN)
    merchant_id: Text = Field(alias="merchantId", max_length=64)
    merchant_name: Text = Field(default="", alias="merchantName", max_length=120)
    mcc: str = Field(default="", pattern=MCC_PATTERN)
    emv: str = Field(min_length=2, max_length=4096, pattern=HEX_PATTERN)


MerchantId = Annotated[str, Field(max_length=64, pattern=r"^[^,\x00]*$")]
"""A merchant id in a control list (stored comma-separated, so without commas)."""


class ControlsBody(Body):
    """PUT /api/cards/{id}/controls: ``null`` lifts a restriction."""

    channels: list[Annotated[str, Field(pattern=one_of(CHANNELS))]] | None = None
    merchants: list[MerchantId] | None = Field(default=None, max_length=100)
    blocked_mccs: list[Annotated[str, Field(pattern=r"^[0-9]{4}$")]] = Field(
        default_factory=list, alias="blockedMccs", max_length=100
    )


class Payments:
    """The authorization service and the reconciler of one application."""

    def __init__(self, svc: Services) -> None:
        self.authorizer = AuthorizationService(svc.config, svc.store, svc.vault, svc.networks)
        self.reconciler = Reconciler(svc.sessions_factory, svc.networks)
        self._keys: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def terminal_key(self, key: str) -> int | None:
        """The id of the live API key ``key`` (remembered for :data:`API_KEY_CACHE_S`)."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            known = self._keys.get(digest)
        if known is not None and known[1] > now:
            return known[0]
        row: ApiKey | None = authenticate_api_key(db(), key)
        if row is None:
            return None
        with self._lock:
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[digest] = (row.id, now + API_KEY_CACHE_S)
        return row.id


def init_app(app: Flask, svc: Services) -> Payments:
    """Build the payment services of ``app`` (kept in ``app.extensions["hcekit_payments"]``)."""
    payments = Payments(svc)
    app.extensions["hcekit_payments"] = payments
    return payments


def payments() -> Payments:
    """The application's :class:`Payments`."""
    found: Payments = current_app.extensions["hcekit_payments"]
    return found


def _terminal() -> int:
    header = request.headers.get("Authorization", "")
    key = header[7:].strip() if header[:7].lower() == "bearer " else ""
    key_id = payments().terminal_key(key) if key else None
    if key_id is None:
        raise Unauthorized("a terminal API key is required: Authorization: Bearer hk_…")
    g.api_key_id = key_id
    return key_id


def _problem_or_json(status: int) -> str:
    return PROBLEM_MEDIA_TYPE if status >= 400 else "application/json"


@bp.post("/api/authorize")
def authorize() -> Response:
    """Authorize a tap (terminal key, Idempotency-Key): 200 with the decision."""
    key_id = _terminal()
    svc = services()
    key = request.headers.get("Idempotency-Key")
    if not key:
        raise IdempotencyKeyMissing("POST /api/authorize requires an Idempotency-Key header")
    svc.idempotency.check_key(key)
    data = body(AuthorizeBody)
    fingerprint = svc.idempotency.fingerprint(data.model_dump(mode="json"))
    scope, route = f"apikey:{key_id}", "POST /api/authorize"
    auth_request = AuthorizationRequest(
        emv=bytes.fromhex(data.emv),
        amount=data.amount,
        currency=data.currency,
        channel=data.channel,
        merchant_id=data.merchant.id,
        merchant_name=data.merchant.name,
        mcc=data.merchant.mcc or None,
        terminal_id=data.terminal.id,
        api_key_id=key_id,
    )
    session = db()
    if svc.idempotency.claims_in_transaction(session):
        return _authorize_in_one_transaction(svc, session, scope, route, key, fingerprint, auth_request)
    outcome = svc.idempotency.begin(scope, route, key, fingerprint)
    if isinstance(outcome, Replay):
        return _replay(outcome)
    g.idempotency_claim = outcome
    try:
        result = payments().authorizer.authorize(session, auth_request, actor=scope, origin=origin())
        return commit_json(result.to_json())
    except TSPError as error:
        session.rollback()
        if 400 <= error.status < 500 and error.status not in (409, 429):
            svc.idempotency.complete_alone(
                outcome, error.status, json.dumps(error.to_problem(instance=request.path))
            )
        else:
            svc.idempotency.release(outcome)
        raise
    except BaseException:
        session.rollback()
        svc.idempotency.release(outcome)
        raise


def _replay(outcome: Replay) -> Response:
    return Response(
        outcome.body,
        status=outcome.status,
        mimetype=_problem_or_json(outcome.status),
        headers={"Idempotent-Replayed": "true"},
    )


def _authorize_in_one_transaction(
    svc: Services,
    session: Session,
    scope: str,
    route: str,
    key: str,
    fingerprint: str,
    auth_request: AuthorizationRequest,
) -> Response:
    """The claim, the authorization, its rows and the stored answer in one transaction (PostgreSQL)."""
    outcome = svc.idempotency.claim(session, scope, route, key, fingerprint)
    if isinstance(outcome, Replay):
        session.rollback()
        return _replay(outcome)
    try:
        result = payments().authorizer.authorize(session, auth_request, actor=scope, origin=origin())
        text = json.dumps(result.to_json())
        svc.idempotency.complete(session, outcome, 200, text)
        session.commit()
    except TSPError as error:
        session.rollback()
        if 400 <= error.status < 500 and error.status not in (409, 429):
            problem = json.dumps(error.to_problem(instance=request.path))
            svc.idempotency.store(scope, route, key, fingerprint, error.status, problem)
        raise
    except BaseException:
        session.rollback()
        raise
    return Response(text, status=200, mimetype="application/json")


@bp.post("/api/payments/in-app")
@login_required
@idempotent
def pay_in_app() -> Response:
    """Pay in an app or on the web with a wallet card (session, Idempotency-Key): PaymentResult."""
    data = body(PaymentRequestBody)
    user = current_user()
    svc = services()
    svc.provisioner.owned_card(db(), user.id, data.card_id)
    result = payments().authorizer.authorize(
        db(),
        AuthorizationRequest(
            emv=bytes.fromhex(data.emv),
            amount=data.amount,
            currency=data.currency,
            channel="in_app",
            merchant_id=data.merchant_id,
            merchant_name=data.merchant_name,
            mcc=data.mcc or None,
            card_id=data.card_id,
        ),
        actor=f"user:{user.id}",
        origin=origin(),
    )
    return commit_json(
        {
            "approved": result.approved,
            "authCode": result.auth_code,
            "network": result.network,
            "transactionId": result.transaction_id,
            "responseCode": result.response_code,
            "reason": result.reason,
        }
    )


def controls_json(card: Any) -> dict[str, Any]:
    """A token's domain controls as JSON."""

    def split(text: str | None) -> list[str] | None:
        return None if text is None else [p for p in text.split(",") if p]

    return {
        "cardId": card.id,
        "channels": split(card.allowed_channels),
        "merchants": split(card.allowed_merchants),
        "blockedMccs": split(card.blocked_mccs) or [],
    }


@bp.get("/api/cards/<int:card_id>/controls")
@login_required
def get_controls(card_id: int) -> Response:
    """A token's domain controls."""
    card = services().provisioner.owned_card(db(), current_user().id, card_id)
    return json_response(controls_json(card))


@bp.put("/api/cards/<int:card_id>/controls")
@login_required
def put_controls(card_id: int) -> Response:
    """Set a token's domain controls: channels, merchants, blocked merchant categories."""
    data = body(ControlsBody)
    user = current_user()
    svc = services()
    if data.channels is not None and not set(data.channels) <= set(CHANNELS):
        raise ValidationFailed(f"channels must be among {', '.join(CHANNELS)}", field="channels")
    if any(not (m.isdigit() and len(m) == 4) for m in data.blocked_mccs):
        raise ValidationFailed("blockedMccs are 4-digit merchant category codes", field="blockedMccs")
    if data.merchants is not None and any("," in m or len(m) > 64 for m in data.merchants):
        raise ValidationFailed("merchant ids are at most 64 characters, without commas", field="merchants")
    card = svc.cards.set_controls(
        db(),
        user.id,
        card_id,
        channels=data.channels,
        merchants=data.merchants,
        blocked_mccs=data.blocked_mccs,
    )
    audit_card_change(user.id, "controls", card.id)
    return commit_json(controls_json(card))


MAX_OLDER_THAN_S = 10 * 365 * 86_400
"""The largest ``olderThan`` of a reconciliation (ten years, in seconds)."""

_DECIMAL = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,20})?(?:[eE][+-]?[0-9]{1,3})?")


def _older_than(text: str) -> float:
    """``olderThan``: a plain decimal number of seconds in ``0..MAX_OLDER_THAN_S`` (no NaN, no ∞)."""
    value = float(text) if _DECIMAL.fullmatch(text) else math.nan
    if not 0 <= value <= MAX_OLDER_THAN_S:
        raise ValidationFailed(
            f"olderThan is a number of seconds from 0 to {MAX_OLDER_THAN_S}", field="olderThan"
        )
    return value


@bp.post("/api/admin/reconcile")
@login_required
def reconcile() -> Response:
    """Settle in-doubt transactions now (administrators, or anyone in dev mode)."""
    user = current_user()
    if not (user.is_admin or services().config.dev_mode):
        raise Forbidden("reconciliation needs an administrator (or dev mode)")
    older_than = _older_than(request.args.get("olderThan", "0"))
    report = payments().reconciler.reconcile(older_than_s=older_than)
    return json_response(report.to_json())
