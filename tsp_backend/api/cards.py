"""Cards (/api/cards): provisioning, ID&V, device pickup, lifecycle, default card, key replenishment.

``GET /api/cards`` is paginated like ``/api/transactions``: ``?limit=`` (1–100, default 20) and
``?cursor=`` (the previous page's ``nextCursor``, opaque to clients: base64url of the last card's
id); the answer is ``{"items": [...], "nextCursor": <string or null>}``, oldest card first.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Blueprint, Response, g, request

from tsp_backend.api.http import (
    body,
    commit_json,
    current_user,
    db,
    idempotent,
    json_response,
    login_required,
    request_origin,
    services,
)
from tsp_backend.api.schemas import PickupBody, ProvisionBody, ReactivateBody, SuspendBody, VerifyBody
from tsp_backend.api.transactions import CURSOR
from tsp_backend.errors import Forbidden, Unprocessable, ValidationFailed
from tsp_backend.models import is_row_id
from tsp_backend.services.cards import MAX_PAGE
from tsp_backend.services.provisioning import card_json

bp = Blueprint("cards", __name__)


DEFAULT_PAGE = 20
"""Cards per page when ``limit`` is not given."""


def encode_card_cursor(card_id: int) -> str:
    """The cursor that continues after card ``card_id``.

    >>> decode_card_cursor(encode_card_cursor(42))
    42
    """
    return base64.urlsafe_b64encode(f"card:{card_id}".encode()).decode().rstrip("=")


def decode_card_cursor(cursor: str) -> int:
    """The inverse of :func:`encode_card_cursor`.

    ``ValidationFailed`` (400) when it is not base64url text (the document's pattern),
    ``Unprocessable`` (422) when it is but names no card position this service issued.
    """
    if not CURSOR.fullmatch(cursor):
        raise ValidationFailed("the cursor is base64url text (nextCursor of a page)", field="cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raw = ""
    kind, _, ident = raw.partition(":")
    if kind != "card" or not (ident.isascii() and ident.isdigit()) or not is_row_id(int(ident)):
        raise Unprocessable("the cursor is not one this service issued", field="cursor")
    return int(ident)


def _limit() -> int:
    text = request.args.get("limit")
    if text is None or text == "":
        return DEFAULT_PAGE
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_PAGE:
        raise ValidationFailed(f"limit is an integer from 1 to {MAX_PAGE}", field="limit")
    return int(text)


@bp.get("/api/cards")
@login_required
def list_cards() -> Response:
    """One page of the user's live tokens, oldest first: ``?limit=&cursor=`` (module docstring)."""
    limit = _limit()
    cursor = request.args.get("cursor")
    after = decode_card_cursor(cursor) if cursor else None
    items, last = services().cards.list_cards(db(), current_user().id, after=after, limit=limit)
    next_cursor = encode_card_cursor(last) if last is not None else None
    return json_response({"items": items, "nextCursor": next_cursor})


@bp.post("/api/cards")
@login_required
@idempotent
def create_card() -> Response:
    """Provision a card (Idempotency-Key required): 201 with the sealed profile, or 202 to verify."""
    data = body(ProvisionBody)
    result = services().wallet.provision(
        db(), current_user(), data.device_id, data.pan, data.expiry, data.cvv, request_origin()
    )
    card = result.card
    payload: dict[str, Any] = {"card": card_json(card), "decision": result.decision.value}
    if result.sealed_profile is not None:
        payload["profile"] = result.sealed_profile
        return commit_json(payload, 201)
    payload["verification"] = result.verification
    return commit_json(payload, 202)


@bp.get("/api/cards/<int:card_id>")
@login_required
def get_card(card_id: int) -> Response:
    """One token."""
    return json_response(card_json(services().provisioner.owned_card(db(), current_user().id, card_id)))


@bp.post("/api/cards/<int:card_id>/verify")
@login_required
def verify_card(card_id: int) -> Response:
    """Submit a one-time code (``code``) or ask for a new one (``method``)."""
    data = body(VerifyBody)
    user = current_user()
    svc = services()
    session = db()
    if data.code is None:
        if data.method is None:
            raise Unprocessable("give a code, or a method to send a new code", field="code")
        sent = svc.provisioner.resend(session, user, card_id, data.method)
        return commit_json({"verification": sent}, 202)
    result = svc.wallet.verify(session, user, card_id, data.code, request_origin())
    response = commit_json({"card": card_json(result.card), "profile": result.sealed_profile})
    if result.error is not None:
        raise result.error
    return response


def _change(card_id: int, action: str) -> Response:
    """Suspend, reactivate, delete or make default: the change, its audit row, the card."""
    user = current_user()
    if action == "default":
        card = services().cards.change(db(), user.id, card_id, action)
        services().wallet.card_changed(db(), user.id, action, card.id, request_origin())
    else:
        if action == "suspend":
            reason = body(SuspendBody).reason
        elif action == "reactivate":
            reason = body(ReactivateBody).reason
        else:
            reason = "CUSTOMER_REQUEST"
        card = services().cards.change(db(), user.id, card_id, action, reason)
        services().wallet.card_changed(
            db(), user.id, action, card.id, request_origin(), reason=reason, status=card.status
        )
    return commit_json(card_json(card))


@bp.delete("/api/cards/<int:card_id>")
@login_required
def delete_card(card_id: int) -> Response:
    """Deactivate a token for good."""
    return _change(card_id, "delete")


@bp.post("/api/cards/<int:card_id>/suspend")
@login_required
def suspend_card(card_id: int) -> Response:
    """ACTIVE → SUSPENDED with a reason code."""
    return _change(card_id, "suspend")


@bp.post("/api/cards/<int:card_id>/reactivate")
@login_required
def reactivate_card(card_id: int) -> Response:
    """SUSPENDED → ACTIVE with a reason code."""
    return _change(card_id, "reactivate")


@bp.put("/api/cards/<int:card_id>/default")
@login_required
def default_card(card_id: int) -> Response:
    """Make a token its device's default."""
    return _change(card_id, "default")


@bp.post("/api/cards/<int:card_id>/keys")
@login_required
def replenish_keys(card_id: int) -> Response:
    """A new sealed batch of limited-use keys (bounded per day)."""
    user = current_user()
    sealed = services().provisioner.replenish(db(), user, card_id)
    card = services().provisioner.owned_card(db(), user.id, card_id)
    services().wallet.card_changed(
        db(), user.id, "keys", card_id, request_origin(), next_index=card.next_luk_index
    )
    return commit_json({"card": card_json(card), "keys": sealed})


@bp.post("/api/cards/<int:card_id>/profile")
@login_required
@idempotent
def pickup_card(card_id: int) -> Response:
    """A device picks up a card (Idempotency-Key): a fresh profile and key batch sealed to it.

    The device is ``deviceId`` or the session's device; moving a card from another device needs
    ``"move": true`` (409 ``card-on-another-device`` otherwise).
    """
    data = body(PickupBody)
    user = current_user()
    bound = g.auth.device_id
    device_id = data.device_id if data.device_id is not None else bound
    if device_id is None:
        raise Unprocessable(
            "name the device (deviceId), or log in with deviceId to bind the session", field="deviceId"
        )
    if bound is not None and device_id != bound:
        raise Forbidden(f"this session belongs to device {bound}; it picks up cards only for that device")
    result = services().wallet.pickup(db(), user, card_id, device_id, request_origin(), move=data.move)
    card = result.card
    return commit_json(
        {"card": card_json(card), "profile": result.sealed_profile, "movedFrom": result.moved_from}
    )
