"""The browser as a device: its passkey, the demo shop and the payment sheet.

Pages (HTML, in the ``web`` blueprint): ``/wallet/setup`` makes this browser a device with a
passkey; ``/wallet/pay`` is the payment sheet; ``/shop/`` is a demo merchant whose "Pay with
hcekit" button opens the sheet.

JSON (the ``webapi`` blueprint, problem+json errors, the session cookie and its CSRF token in
``X-CSRF-Token``; sent by ``static/setup.js`` and ``static/sheet.js`` as ``application/json``
with same-origin credentials):

=====================================  ==========================================================
``POST /wallet/passkey/options``        WebAuthn creation options (UV required, platform)
``POST /wallet/passkey``                verify the new passkey; the browser becomes a device
``POST /wallet/pay/options``            a payment's request options: the challenge binds the
                                        intent (:class:`~tsp_backend.services.webpay.PaymentIntent`)
``POST /wallet/pay/confirm``            ``Idempotency-Key``: verify the assertion, make the token
                                        cryptogram, authorize (channel ``web``)
=====================================  ==========================================================

One Idempotency-Key stands for one intent of the holder: the sheet draws it with the page and
keeps it until an answer comes, so a double click or a retry after a lost answer pays once
(a second request with the key while the first is running is answered 409
idempotency-request-in-flight at once; after it, the first answer is replayed).
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from typing import Any

from flask import Blueprint, Response, request, session, url_for
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from tsp_backend.api.http import (
    audit_row,
    body,
    current_user,
    db,
    idempotency_key,
    key_use,
    login_required,
    origin,
    problem_response,
    services,
    stored_response,
)
from tsp_backend.api.payments import payments
from tsp_backend.errors import (
    Conflict,
    IdempotencyInFlight,
    NotFound,
    TSPError,
    ValidationFailed,
)
from tsp_backend.models import Card, Device, User, utcnow
from tsp_backend.services import passkeys
from tsp_backend.services.authorization import (
    AuthorizationRequest,
    AuthorizationResult,
    IdempotentRequest,
    currency_numeric,
)
from tsp_backend.services.webpay import PaymentIntent, WebCryptograms, unpredictable_number
from tsp_backend.web.pages import (
    THIS_DEVICE,
    bp,
    money,
    network_name,
    render,
    signed_in_user,
)

api = Blueprint("webapi", __name__, url_prefix="/wallet")
shop = Blueprint("shop", __name__, url_prefix="/shop")

PAY_ROUTE = "POST /wallet/pay/confirm"
AUTHORIZE_ROUTE = "POST /wallet/pay/confirm (authorization)"
"""The idempotency route of a web payment's authorization, under the sheet's key."""
SHEET_TTL_S = 300
"""How long a payment's challenge may be answered."""

DEMO_MERCHANT = {"id": "hcekit-demo-shop", "name": "Corner Coffee Roasters", "mcc": "5814"}
"""The demo shop's merchant."""

DEMO_PRODUCT = {"name": "Single-origin beans, 250 g", "amount": 1450, "currency": "EUR"}
"""What the demo shop sells."""

DECLINE_MESSAGES = {
    "51": "Your bank declined this payment: not enough funds on this card.",
    "54": "This card has expired. Choose another card.",
    "57": "This card can't be used for this payment. Choose another card.",
    "61": "The amount is above this card's limit. Choose another card.",
    "65": "Too many payments in a short time. Try again later.",
    "91": "Your bank didn't answer. You have not been charged; try again in a minute.",
}
"""Plain-language messages for declines (the response codes never reach the page)."""

DECLINED = "Your bank declined this payment. You have not been charged."


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)


class PasskeyBody(_Body):
    """POST /wallet/passkey."""

    name: str = Field(default="This browser", max_length=100)
    credential: dict[str, Any]


class IntentBody(_Body):
    """A payment's intent as the sheet sends it."""

    card_id: int = Field(alias="cardId", ge=1, le=2**31 - 1)
    amount: int = Field(ge=1, le=10**12)
    currency: str = Field(pattern=r"^[A-Za-z]{3}$")
    merchant_id: str = Field(alias="merchantId", min_length=1, max_length=64)
    merchant_name: str = Field(default="", alias="merchantName", max_length=120)

    def intent(self) -> PaymentIntent:
        """As a :class:`PaymentIntent`."""
        currency_numeric(self.currency)
        return PaymentIntent(
            self.card_id, self.amount, self.currency.upper(), self.merchant_id, self.merchant_name
        )


class ConfirmBody(IntentBody):
    """POST /wallet/pay/confirm."""

    sheet: str = Field(min_length=16, max_length=64)
    credential: dict[str, Any]


def _model(model: type[_Body]) -> Any:
    return body(model)


def relying_party() -> passkeys.RelyingParty:
    """This site as a WebAuthn relying party: the request's host name and origin."""
    host = request.host.rsplit(":", 1)[0].strip("[]")
    return passkeys.RelyingParty(rp_id=host, origin=request.host_url.rstrip("/"))


class UnsupportedMediaType(TSPError):
    """A JSON endpoint of the pages was sent something other than ``application/json``."""

    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


@api.before_request
def _json_only() -> None:
    """Refuse anything but JSON (a cross-site HTML form can send no JSON without CORS)."""
    if request.method == "POST" and request.mimetype != "application/json":
        raise UnsupportedMediaType("this endpoint takes application/json")


@api.errorhandler(TSPError)
def _problem(error: TSPError) -> Response:
    db().rollback()
    return problem_response(error)


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


# --- the browser as a device -------------------------------------------------------------------


def browser_devices(user_id: int) -> list[Device]:
    """The user's active browser devices."""
    return list(
        db().scalars(
            select(Device).where(
                Device.user_id == user_id, Device.kind == passkeys.BROWSER, Device.status == "ACTIVE"
            )
        )
    )


@bp.get("/setup")
def setup() -> Response:
    """Make this browser a device: a passkey with user verification (``static/setup.js``)."""
    user = current_user()
    this = session.get(THIS_DEVICE)
    mine = [d for d in browser_devices(user.id) if d.id == this]
    return render("setup.html", device=mine[0] if mine else None)


@api.post("/passkey/options")
@login_required
def passkey_options() -> Response:
    """WebAuthn creation options for a passkey of this browser."""
    return Response(
        passkeys.registration_options(services().store, relying_party(), current_user()),
        mimetype="application/json",
    )


@api.post("/passkey")
@login_required
def passkey_register() -> Response:
    """Verify the new passkey and register this browser as a device."""
    data: PasskeyBody = _model(PasskeyBody)
    user = current_user()
    session_db = db()
    device = passkeys.register(
        session_db, services().store, relying_party(), user, data.name, data.credential
    )
    target = f"device:{device.id}"
    audit_row(actor=f"user:{user.id}", action="device.register", target=target, via="web", kind="browser")
    session_db.commit()
    session[THIS_DEVICE] = device.id
    return _json({"deviceId": device.id, "next": url_for("web.add_card_form")}, 201)


# --- the payment sheet -------------------------------------------------------------------------


def payable_cards(user: User) -> list[Card]:
    """The cards this user can pay with on the web: ACTIVE, on an active browser device; default first."""
    devices = {d.id for d in browser_devices(user.id)}
    if not devices:
        return []
    cards = db().scalars(
        select(Card)
        .where(Card.user_id == user.id, Card.status == "ACTIVE", Card.device_id.in_(devices))
        .order_by(Card.is_default.desc(), Card.id)
    )
    return list(cards)


@bp.get("/pay")
def pay_sheet() -> Response:
    """The payment sheet: merchant, amount, a card selector (default first) and a Pay button."""
    user = current_user()
    args = request.args
    merchant_id = args.get("merchant", "")[:64]
    merchant_name = args.get("name", "")[:120] or merchant_id
    currency = args.get("currency", "").upper()[:3]
    amount = args.get("amount", type=int)
    try:
        currency_numeric(currency)
        valid = amount is not None and 0 < amount <= 10**12 and bool(merchant_id)
    except ValidationFailed:
        valid = False
    if not valid:
        raise NotFound("this payment request is incomplete")
    back = args.get("return", "")
    return render(
        "pay.html",
        cards=payable_cards(user),
        merchant_id=merchant_id,
        merchant_name=merchant_name,
        amount=amount,
        currency=currency,
        display_amount=money(amount or 0, currency),
        idempotency_key=str(uuid.uuid4()),
        back=back if back.startswith("/shop/") and ".." not in back and "\\" not in back else "/shop/",
    )


def _payable(user: User, card_id: int) -> Card:
    card = services().provisioner.owned_card(db(), user.id, card_id)
    if card not in payable_cards(user):
        raise Conflict("this card can't pay on the web right now", field="cardId")
    return card


@api.post("/pay/options")
@login_required
def pay_options() -> Response:
    """The assertion options of one payment: the challenge binds the intent (module docstring)."""
    data: IntentBody = _model(IntentBody)
    user = current_user()
    card = _payable(user, data.card_id)
    intent = data.intent()
    challenge = intent.challenge(secrets.token_bytes(16))
    sheet = secrets.token_urlsafe(24)
    record = {"intent": intent.canonical().decode(), "challenge": base64.b64encode(challenge).decode()}
    services().store.set(f"webpay:{user.id}:{sheet}", json.dumps(record).encode(), SHEET_TTL_S)
    options = passkeys.authentication_options(
        db(), relying_party(), user.id, challenge, device_id=card.device_id
    )
    return _json({"sheet": sheet, "publicKey": json.loads(options)})


def authorize_web(
    user: User, intent: PaymentIntent, emv: bytes, *, key: str, fingerprint: str
) -> AuthorizationResult:
    """Authorize a web payment through the one path of every payment (channel ``web``).

    The authorization keeps its own idempotency record under the sheet's key (route
    :data:`AUTHORIZE_ROUTE`), so its intent is durable and its retry or reconciliation finds it
    like any other payment's.
    """
    answer = payments().authorizer.authorize(
        db(),
        AuthorizationRequest(
            emv=emv,
            amount=intent.amount,
            currency=intent.currency,
            channel="web",
            merchant_id=intent.merchant_id,
            merchant_name=intent.merchant_name,
            card_id=intent.card_id,
        ),
        IdempotentRequest(f"user:{user.id}", AUTHORIZE_ROUTE, key, fingerprint),
        actor=f"user:{user.id}",
        origin=origin(),
    )
    if answer.result is None:
        raise IdempotencyInFlight("this payment is still being settled; try again in a moment")
    return answer.result


def result_json(result: AuthorizationResult, intent: PaymentIntent) -> dict[str, Any]:
    """The sheet's answer: plain words, no response code."""
    return {
        "approved": result.approved,
        "status": result.status,
        "transactionId": result.transaction_id,
        "amount": money(intent.amount, intent.currency),
        "merchant": intent.merchant_name or intent.merchant_id,
        "message": "Paid." if result.approved else DECLINE_MESSAGES.get(result.response_code, DECLINED),
    }


@api.post("/pay/confirm")
@login_required
def pay_confirm() -> Response:
    """Verify the passkey's assertion, make the token cryptogram and authorize, once per key."""
    user = current_user()
    svc = services()
    key = idempotency_key("a payment needs an Idempotency-Key header")
    data: ConfirmBody = _model(ConfirmBody)
    intent = data.intent()
    fingerprint = svc.idempotency.fingerprint(json.loads(intent.canonical()))
    with key_use(f"user:{user.id}", PAY_ROUTE, key, fingerprint) as use:
        if use.replay is not None:
            return stored_response(use.replay.status, use.replay.body)
        session_db = db()
        stored = svc.store.get(f"webpay:{user.id}:{data.sheet}")
        svc.store.delete(f"webpay:{user.id}:{data.sheet}")
        if stored is None:
            raise passkeys.PasskeyRefused("the payment request has expired; press Pay again")
        record = json.loads(stored)
        if record["intent"] != intent.canonical().decode():
            raise passkeys.PasskeyRefused("the payment changed after it was confirmed")
        card = _payable(user, intent.card_id)
        challenge = base64.b64decode(record["challenge"])
        passkeys.verify_assertion(
            session_db, relying_party(), user.id, data.credential, challenge, device_id=card.device_id
        )
        emv = WebCryptograms(svc.config, svc.store).make(
            session_db, card, intent, unpredictable_number(challenge), utcnow()
        )
        result = authorize_web(user, intent, emv, key=key, fingerprint=fingerprint)
        text = json.dumps(result_json(result, intent))
        use.complete(200, text)
        session_db.commit()
    return Response(text, 200, mimetype="application/json")


# --- the demo shop -----------------------------------------------------------------------------


@shop.get("/")
def shop_page() -> Response:
    """A merchant's checkout: one product, its total, and "Pay with hcekit"."""
    return render(
        "shop.html",
        merchant=DEMO_MERCHANT,
        product=DEMO_PRODUCT,
        total=money(DEMO_PRODUCT["amount"], DEMO_PRODUCT["currency"]),  # type: ignore[arg-type]
        paid=request.args.get("paid") == "1",
        signed_in=signed_in_user(),
    )


__all__ = ["api", "authorize_web", "network_name", "shop"]
