"""Payments: terminal authorization, in-app payments, domain controls, reconciliation.

* ``POST /api/authorize`` — terminal API key (``Authorization: Bearer hk_…``) and
  ``Idempotency-Key`` (scoped to the key): a tap's field-55 block, amount, merchant, channel.
* ``POST /api/payments/in-app`` — a wallet session and ``Idempotency-Key``: the payment sheet's
  PaymentRequest with the cryptogram the wallet's card made for the ``in_app`` channel.
* ``PUT /api/cards/{id}/controls`` — a wallet session: the token's domain controls.
* ``POST /api/admin/reconcile`` — an administrator (or dev mode): settle in-doubt transactions.

Declines are ``200`` answers with ``approved: false`` and an ISO 8583 response code (see
:mod:`tsp_backend.services.authorization`); problems (401, 400, 409, 422) are RFC 9457. Both
payment routes validate the whole request before anything is written, then hand it to
:meth:`~tsp_backend.services.authorization.AuthorizationService.authorize`, which claims the
``Idempotency-Key`` and writes the attempt before it asks the issuer.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from flask import Blueprint, Flask, Response, current_app, g, request
from pydantic import BaseModel, Field

from apdu.currency import ISO_4217
from tsp_backend.api.http import (
    Services,
    body,
    commit_json,
    current_user,
    db,
    idempotency_key,
    json_response,
    login_required,
    origin,
    request_origin,
    services,
    stored_response,
)
from tsp_backend.api.issuer_actions import after_authorization
from tsp_backend.api.schemas import Body, Id, Text, one_of
from tsp_backend.errors import Forbidden, Unauthorized, ValidationFailed
from tsp_backend.services.authorization import (
    CHANNELS,
    Answer,
    AuthorizationRequest,
    AuthorizationService,
    IdempotentRequest,
    currency_numeric,
)
from tsp_backend.services.reconcile import Reconciler
from tsp_backend.services.terminals import KEY_REQUIRED, RememberedKeys

bp = Blueprint("payments", __name__)

CURRENCY_PATTERN = one_of(sorted(c.code for c in ISO_4217))
"""The ISO 4217 alphabetic codes the service knows (``apdu.currency.ISO_4217``)."""

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
    """The authorization service, the reconciler and the remembered terminal keys of one application."""

    def __init__(self, svc: Services) -> None:
        self.authorizer = AuthorizationService(
            svc.config, svc.store, svc.vault, svc.networks, svc.idempotency
        )
        self.reconciler = Reconciler(
            svc.sessions_factory, svc.networks, deadline_s=svc.config.request_deadline_s
        )
        self.keys = RememberedKeys(svc.store)

    def terminal_key(self, key: str, *, check_revoked: bool = True) -> int | None:
        """The id of the live API key ``key`` (:class:`~tsp_backend.services.terminals.RememberedKeys`)."""
        return self.keys.live(db(), key, check_revoked=check_revoked)


def init_app(app: Flask, svc: Services) -> Payments:
    """Build the payment services of ``app`` (kept in ``app.extensions["hcekit_payments"]``)."""
    payments = Payments(svc)
    app.extensions["hcekit_payments"] = payments
    return payments


def payments() -> Payments:
    """The application's :class:`Payments`."""
    found: Payments = current_app.extensions["hcekit_payments"]
    return found


def _terminal(*, check_revoked: bool = True) -> int:
    header = request.headers.get("Authorization", "")
    key = header[7:].strip() if header[:7].lower() == "bearer " else ""
    key_id = payments().terminal_key(key, check_revoked=check_revoked) if key else None
    if key_id is None:
        raise Unauthorized(KEY_REQUIRED)
    g.api_key_id = key_id
    return key_id


def _answer(answer: Answer) -> Response:
    return stored_response(answer.status, answer.body, replayed=answer.replayed)


def _idempotency(scope: str, key: str, data: BaseModel) -> IdempotentRequest:
    """The request's key, scoped and fingerprinted, for the authorization service (which claims it)."""
    fingerprint = services().idempotency.fingerprint(data.model_dump(mode="json"))
    return IdempotentRequest(scope, f"{request.method} {request.path}", key, fingerprint)


@bp.post("/api/authorize")
def authorize() -> Response:
    """Authorize a tap (terminal key, Idempotency-Key): 200 with the decision.

    The key's revocation marker is read by the service with the token (one store round trip).
    """
    key_id = _terminal(check_revoked=False)
    key = idempotency_key()
    data = body(AuthorizeBody)
    scope = f"apikey:{key_id}"
    idempotency = _idempotency(scope, key, data)
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
    currency_numeric(data.currency)
    answer = payments().authorizer.authorize(db(), auth_request, idempotency, actor=scope, origin=origin())
    after_authorization(answer, auth_request.emv)
    return _answer(answer)


@bp.post("/api/payments/in-app")
@login_required
def pay_in_app() -> Response:
    """Pay in an app or on the web with a wallet card (session, Idempotency-Key): PaymentResult."""
    key = idempotency_key()
    data = body(PaymentRequestBody)
    user = current_user()
    scope = f"user:{user.id}"
    idempotency = _idempotency(scope, key, data)
    currency_numeric(data.currency)
    services().provisioner.owned_card(db(), user.id, data.card_id)
    answer = payments().authorizer.authorize(
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
        idempotency,
        actor=scope,
        origin=origin(),
    )
    after_authorization(answer, bytes.fromhex(data.emv))
    return _answer(answer)


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
    svc.wallet.card_changed(db(), user.id, "controls", card.id, request_origin())
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
