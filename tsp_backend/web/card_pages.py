"""The card pages: the card list, the card form, one card and its changes, one-time codes.

The card form sends PAN, expiry and CVV straight to the provisioning service under an
``Idempotency-Key`` generated when the form is drawn (a hidden field), so a double submit makes
one card. A card added here is activated without a profile: a phone fetches it with its own
keys when it syncs; a browser device never receives one (it pays through the sheet).
The numbers are never echoed: a refused form comes back with the device and the expiry only,
messages are the pages' own plain words (never the service's internals or response codes),
cards are named by network and the card's own last four digits, and nothing here logs a request.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask import Response, flash, request, session
from sqlalchemy.orm import Session

from tsp_backend.api.http import current_user, db, key_use, request_origin, services
from tsp_backend.errors import (
    IdempotencyInFlight,
    NotFound,
    TSPError,
    ValidationFailed,
    VerificationExhausted,
)
from tsp_backend.models import Card, User
from tsp_backend.services.devices import list_devices, owned_device
from tsp_backend.services.lifecycle import CUSTOMER_REASONS, TokenEvent
from tsp_backend.services.provisioning import card_json
from tsp_backend.web.history_pages import newest, transaction_items
from tsp_backend.web.pages import THIS_DEVICE, bp, network_name, place, render, see_other, sentence

ADD_CARD_ROUTE = "POST /wallet/cards/add"
"""The idempotency route of the card form."""

CARDS_PER_PAGE = 24
"""Cards on one page of the card list (``?after=<last id>`` shows the next)."""


def _places(session_db: Session, user_id: int) -> dict[int, str]:
    return {d.id: place(d) for d in list_devices(session_db, user_id)}


RECENT_ON_CARDS = 5
"""Transactions shown under the cards."""


@bp.get("/cards")
def cards() -> Response:
    """Every card of every device in one stack, each saying where it lives; the latest transactions."""
    user = current_user()
    after = request.args.get("after", type=int)
    items, more = services().cards.list_cards(
        db(), user.id, after=after if after is not None and 0 <= after < 2**31 else None, limit=CARDS_PER_PAGE
    )
    recent, _ = transaction_items(user, limit=RECENT_ON_CARDS)
    return render(
        "cards.html",
        cards=items,
        places=_places(db(), user.id),
        items=recent,
        after=newest(recent),
        more=more,
    )


FIELD_MESSAGES = {
    "pan": "This card number isn't valid. Check the digits.",
    "expiry": "Check the expiry date: it must be MM/YY and not in the past.",
    "cvv": "Check the security code on your card.",
    "deviceId": "Choose where to add the card.",
}
"""What to say about a refused field of the card form (never the service's own words)."""

REFUSALS = {
    "provisioning-declined": "Your bank didn't approve adding this card. Try another card.",
    "network-unavailable": "The card network isn't answering. Please try again in a minute.",
    "already-exists": "This card is already in your wallet on that device.",
    "device-lost": "That device was reported lost. Choose another device.",
    "rate-limited": "Too many attempts. Wait a minute, then try again.",
}
"""What to say when the service refuses a card (by problem type)."""


def _add_form(
    status: int = 200,
    error: str | None = None,
    fields: dict[str, str] | None = None,
    *,
    expiry: str = "",
    device_id: int | None = None,
) -> Response:
    """The card form; after a refusal it keeps the device and expiry (never the number or CVV)."""
    user = current_user()
    devices = [d for d in list_devices(db(), user.id) if d.status == "ACTIVE"]
    chosen = device_id or request.args.get("device", type=int) or session.get(THIS_DEVICE)
    return render(
        "add_card.html",
        status,
        devices=devices,
        chosen_device=chosen,
        idempotency_key=str(uuid.uuid4()),
        error=error,
        field_errors=fields or {},
        expiry=expiry,
    )


@bp.get("/cards/add")
def add_card_form() -> Response:
    """The card form, with a fresh Idempotency-Key in a hidden field."""
    return _add_form()


def _after_provisioning(
    status: int, payload: dict[str, Any], *, expiry: str = "", device_id: int | None = None
) -> Response:
    if status >= 400:
        field = str(payload.get("field") or "")
        slug = str(payload.get("type", "")).rsplit("/", 1)[-1]
        if field in FIELD_MESSAGES:
            message = "Please check the highlighted field."
            fields = {field: FIELD_MESSAGES[field]}
        else:
            message = REFUSALS.get(slug, "This card couldn't be added. Check the details and try again.")
            fields = None
        return _add_form(status, error=message, fields=fields, expiry=expiry, device_id=device_id)
    card_id = int(payload["cardId"])
    if status == 202:
        flash("Your bank asks for a one-time code before this card can be used.", "info")
        return see_other("web.verify_form", card_id=card_id)
    flash(f"{network_name(str(payload['network']))} card ending {payload['last4']} added.", "success")
    return see_other("web.card_detail", card_id=card_id)


IN_FLIGHT_MESSAGE = "This card is still being added. Look at your cards in a moment before you try again."
"""What a repeated card form says while the first submission of its key is still running."""


@bp.post("/cards/add")
def add_card() -> Response:
    """Provision the card once per Idempotency-Key, then go to the card (green) or the code (yellow).

    A second submission while the first is still running is not kept waiting: it gets the form
    back with status 409 and :data:`IN_FLIGHT_MESSAGE` (the card appears in the list when the first
    is done); after that, the same key answers as the first did.
    """
    user = current_user()
    svc = services()
    form = request.form
    key = form.get("idempotency_key", "")
    try:
        svc.idempotency.check_key(key)
        device_id = int(form.get("device_id", ""))
    except (ValidationFailed, ValueError):
        return _add_form(400, error="The form was incomplete; please fill it in again.")
    pan = "".join(ch for ch in form.get("pan", "")[:32] if ch not in " -")
    expiry = form.get("expiry", "")[:7].strip()
    cvv = form.get("cvv", "")[:4].strip()
    fingerprint = svc.idempotency.fingerprint(
        {"pan": pan, "expiry": expiry, "cvv": cvv, "deviceId": device_id}
    )
    kept: dict[str, Any] = {"expiry": expiry, "device_id": device_id}
    try:
        with key_use(f"user:{user.id}", ADD_CARD_ROUTE, key, fingerprint) as use:
            if use.replay is not None:
                return _after_provisioning(use.replay.status, json.loads(use.replay.body), **kept)
            session_db = db()
            try:
                result = svc.wallet.provision(
                    session_db, user, device_id, pan, expiry, cvv, request_origin(), deliver=False, via="web"
                )
            except TSPError as error:
                return _after_provisioning(error.status, use.refuse(error), **kept)
            card = result.card
            status = 201 if card.status == "ACTIVE" else 202
            payload = {"cardId": card.id, "network": card.network, "last4": card.funding_last4}
            use.complete(status, json.dumps(payload))
            session_db.commit()
    except IdempotencyInFlight:
        return _add_form(409, error=IN_FLIGHT_MESSAGE, **kept)
    return _after_provisioning(status, payload)


def _owned(card_id: int) -> tuple[User, Card]:
    user = current_user()
    return user, services().provisioner.owned_card(db(), user.id, card_id)


@bp.get("/cards/<int:card_id>")
def card_detail(card_id: int) -> Response:
    """One card with its actions: suspend, reactivate, remove, make default."""
    user, card = _owned(card_id)
    if card.status == "DEACTIVATED":
        raise NotFound("this card was removed from the wallet")
    device = owned_device(db(), user.id, card.device_id)
    return render(
        "card.html",
        card=card_json(card),
        device=device,
        place=place(device),
        device_lost=device.status != "ACTIVE" or card.status_reason == "DEVICE_LOST",
        suspend_reasons=sorted(CUSTOMER_REASONS[TokenEvent.SUSPEND]),
        reactivate_reasons=sorted(CUSTOMER_REASONS[TokenEvent.REACTIVATE]),
    )


def _change(card_id: int, verb: str, done: str) -> Response:
    user = current_user()
    reason = request.form.get("reason", "CUSTOMER_REQUEST")[:32]
    session_db = db()
    try:
        card = services().cards.change(session_db, user.id, card_id, verb, reason)
    except NotFound:
        raise
    except TSPError as error:
        session_db.rollback()
        flash(CHANGE_REFUSALS.get(error.slug, "That change isn't possible for this card right now."), "error")
        return see_other("web.card_detail", card_id=card_id)
    services().wallet.card_changed(
        session_db, user.id, verb, card.id, request_origin(), reason=reason, status=card.status, via="web"
    )
    session_db.commit()
    flash(f"{network_name(card.network)} card ending {card.funding_last4} {done}.", "success")
    if verb == "delete":
        return see_other("web.cards")
    return see_other("web.card_detail", card_id=card.id)


CHANGE_REFUSALS = {
    "device-lost": "This card's device was reported lost, so the card can't be reactivated.",
    "invalid-state-transition": "That change isn't possible for this card right now.",
}
"""What to say when a card change is refused (by problem type)."""


@bp.post("/cards/<int:card_id>/suspend")
def suspend(card_id: int) -> Response:
    """ACTIVE → SUSPENDED."""
    return _change(card_id, "suspend", "suspended")


@bp.post("/cards/<int:card_id>/reactivate")
def reactivate(card_id: int) -> Response:
    """SUSPENDED → ACTIVE."""
    return _change(card_id, "reactivate", "reactivated")


@bp.post("/cards/<int:card_id>/remove")
def remove(card_id: int) -> Response:
    """Deactivate the token for good."""
    return _change(card_id, "delete", "removed")


@bp.post("/cards/<int:card_id>/default")
def make_default(card_id: int) -> Response:
    """Make the card its device's default."""
    return _change(card_id, "default", "is now the default")


# --- one-time codes ----------------------------------------------------------------------------


@bp.get("/cards/<int:card_id>/verify")
def verify_form(card_id: int) -> Response:
    """The one-time-code form of a card waiting for verification."""
    _, card = _owned(card_id)
    if card.status != "INACTIVE" or card.verify_code_hash is None:
        return see_other("web.card_detail", card_id=card_id)
    return _verify_page(card)


def _verify_page(card: Card, status: int = 200, error: str | None = None) -> Response:
    remaining = services().config.otp_attempts - card.verify_attempts
    return render("verify.html", status, card=card_json(card), remaining=remaining, error=error)


@bp.post("/cards/<int:card_id>/verify")
def verify_card(card_id: int) -> Response:
    """Check the code: activate the card, or count the miss (the card is removed after the last)."""
    user = current_user()
    svc = services()
    session_db = db()
    code = request.form.get("code", "")[:12]
    result = svc.wallet.verify(session_db, user, card_id, code, request_origin(), deliver=False, via="web")
    session_db.commit()
    card = result.card
    if isinstance(result.error, VerificationExhausted):
        flash("Too many wrong codes: the card was removed. You can add it again.", "error")
        return see_other("web.cards")
    if result.error is not None:
        return _verify_page(card, result.error.status, sentence(result.error.detail))
    flash(f"Verified: {network_name(card.network)} card ending {card.funding_last4} is ready.", "success")
    return see_other("web.card_detail", card_id=card.id)


@bp.post("/cards/<int:card_id>/resend")
def resend_code(card_id: int) -> Response:
    """Send a new one-time code by SMS or e-mail."""
    user = current_user()
    method = request.form.get("method", "otp_sms")
    if method not in ("otp_sms", "otp_email"):
        method = "otp_sms"
    sent = services().provisioner.resend(db(), user, card_id, method)
    db().commit()
    flash(f"A new code was sent to {sent['to']}.", "info")
    return see_other("web.verify_form", card_id=card_id)


@bp.get("/outbox")
def outbox() -> Response:
    """The simulated SMS and e-mail outbox (development mode only)."""
    if not services().config.dev_mode:
        raise NotFound("the outbox exists only in development mode")
    user = current_user()
    messages = [json.loads(m) for m in services().store.lrange(f"outbox:{user.id}")]
    return render("outbox.html", messages=messages)
