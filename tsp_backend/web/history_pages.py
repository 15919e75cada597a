"""The history pages: the transaction list and the devices (register one, mark one lost)."""

from __future__ import annotations

from typing import Any

from flask import Response, flash, request, session
from sqlalchemy import select

from tsp_backend.api.http import current_user, db, request_origin, services
from tsp_backend.errors import DeviceKeyInvalid, ValidationFailed
from tsp_backend.models import Card, Transaction, User
from tsp_backend.services.devices import list_devices
from tsp_backend.services.provisioning import card_json
from tsp_backend.web.pages import THIS_DEVICE, bp, render, see_other

TRANSACTIONS_PER_PAGE = 50
"""Rows on one page of the transaction history (the page kept for offline use shows the last 50)."""


def txn_status(txn: Transaction) -> str:
    status = getattr(txn, "status", None)
    return str(status) if status else ("approved" if txn.approved else "declined")


def transaction_items(
    user: User, *, limit: int, card_id: int | None = None, before: int | None = None, after: int | None = None
) -> tuple[list[dict[str, Any]], int | None]:
    """The user's transactions, newest first, as the list shows them; and the id before the next page."""
    query = (
        select(Transaction, Card)
        .join(Card, Card.id == Transaction.card_id)
        .where(Transaction.user_id == user.id)
        .order_by(Transaction.id.desc())
        .limit(limit + 1)
    )
    if card_id is not None:
        query = query.where(Transaction.card_id == card_id)
    if before is not None:
        query = query.where(Transaction.id < before)
    if after is not None:
        query = query.where(Transaction.id > after)
    rows = [(row[0], row[1]) for row in db().execute(query)]
    page = rows[:limit]
    items = [
        {
            "txn": txn,
            "status": txn_status(txn),
            "network": owner.network,
            "last4": owner.funding_last4,
            "tokenLast4": owner.token_pan[-4:],
            "cardId": owner.id,
        }
        for txn, owner in page
    ]
    return items, (page[-1][0].id if len(rows) > limit else None)


def newest(items: list[dict[str, Any]]) -> int:
    return max((int(item["txn"].id) for item in items), default=0)


@bp.get("/transactions")
def transactions() -> Response:
    """The user's transactions, newest first (``?card=<id>`` for one card, ``?before=<id>`` pages)."""
    user = current_user()
    card_filter = request.args.get("card", type=int)
    before = request.args.get("before", type=int)
    card = None
    if card_filter is not None:
        card = services().provisioner.owned_card(db(), user.id, card_filter)
    items, more = transaction_items(
        user, limit=TRANSACTIONS_PER_PAGE, card_id=card.id if card else None, before=before
    )
    return render(
        "transactions.html",
        items=items,
        card=card_json(card) if card else None,
        more=more,
        after=newest(items) if before is None else None,
    )


@bp.get("/devices")
def devices() -> Response:
    """The user's devices, a form to register one, and "mark as lost"."""
    user = current_user()
    return render("devices.html", devices=list_devices(db(), user.id), this_device=session.get(THIS_DEVICE))


@bp.post("/devices")
def add_device() -> Response:
    """Register a device by its P-256 public key (PEM, or base64 of the uncompressed point)."""
    user = current_user()
    name = request.form.get("name", "device")[:100]
    public_key = request.form.get("public_key", "")[:4096]
    session_db = db()
    try:
        device = services().wallet.register_device(
            session_db, user.id, name, public_key, request_origin(), via="web"
        )
    except (ValidationFailed, DeviceKeyInvalid):
        session_db.rollback()
        return render(
            "devices.html",
            422,
            devices=list_devices(session_db, user.id),
            this_device=session.get(THIS_DEVICE),
            error="This isn't a phone wallet's public key. Copy it again from the phone wallet.",
            name=name,
        )
    session_db.commit()
    flash(f"Device “{device.name}” registered.", "success")
    return see_other("web.devices")


@bp.post("/devices/<int:device_id>/lost")
def device_lost(device_id: int) -> Response:
    """Mark a device lost: its cards are suspended and its sessions revoked."""
    device, changed = services().wallet.device_lost(
        db(), current_user().id, device_id, request_origin(), via="web"
    )
    db().commit()
    flash(f"“{device.name}” is marked lost; {len(changed)} card(s) on it were suspended.", "success")
    return see_other("web.devices")
