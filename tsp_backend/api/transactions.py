"""Transaction history (/api/transactions): newest first, cursor pagination, one user's own.

The cursor is opaque to clients: base64url of ``"<created_at ISO>|<row id>"`` of the last
item, so a page never skips or repeats rows that share a timestamp. The index
``ix_transactions_card_id_created_at`` serves the per-card filter.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy import and_, or_, select

from tsp_backend.api.http import current_user, db, json_response, login_required
from tsp_backend.errors import NotFound, Unprocessable, ValidationFailed
from tsp_backend.models import MAX_ROW_ID, Transaction, is_row_id

bp = Blueprint("transactions", __name__)

MAX_LIMIT = 100
"""The largest page (a larger ``limit`` is refused, as the document says)."""

DEFAULT_LIMIT = 20
"""The page size when ``limit`` is not given."""

CURSOR = re.compile(r"[A-Za-z0-9_-]{0,200}")
"""What a cursor looks like: base64url without padding (the document's ``cursor`` pattern); an
empty one asks for the first page."""

TXN_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
"""What a transaction's public id can look like (``txn_`` and 20 hex digits today)."""


TRANSACTION_TYPES = {"contactless": "nfc", "in_app": "in_app", "ecommerce": "web", "web": "web"}
"""The seed's transaction type of each channel: a tap is ``nfc``; a sheet or web payment ``web``."""


def transaction_json(txn: Transaction) -> dict[str, Any]:
    """The API form of a transaction (the seed's Transaction)."""
    return {
        "id": txn.public_id,
        "cardId": txn.card_id,
        "amount": txn.amount,
        "currency": txn.currency,
        "merchant": {"id": txn.merchant_id, "name": txn.merchant_name, "mcc": txn.mcc},
        "type": TRANSACTION_TYPES.get(txn.channel, "nfc"),
        "channel": txn.channel,
        "status": txn.status,
        "responseCode": txn.response_code,
        "authCode": txn.auth_code,
        "network": txn.network,
        "atc": txn.atc,
        "createdAt": txn.created_at.isoformat(),
        "reason": txn.reason,
    }


def encode_cursor(txn: Transaction) -> str:
    """The cursor that continues after ``txn``."""
    raw = f"{txn.created_at.isoformat()}|{txn.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    """The inverse of :func:`encode_cursor`.

    ``ValidationFailed`` (400) when it is not base64url text (:data:`CURSOR`, as the document
    says), ``Unprocessable`` (422) when it is but names no position this service issued — a
    time without zone, an id out of range.
    """
    if not CURSOR.fullmatch(cursor):
        raise ValidationFailed("the cursor is base64url text (nextCursor of a page)", field="cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, ident = raw.partition("|")
        created = dt.datetime.fromisoformat(stamp)
        if created.tzinfo is None or not _DIGITS.fullmatch(ident) or not is_row_id(int(ident)):
            raise ValueError(raw)
        return created.astimezone(dt.timezone.utc), int(ident)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise Unprocessable("the cursor is not one this service issued", field="cursor") from None


_DIGITS = re.compile(r"[0-9]{1,10}")


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    """The integer query parameter ``name`` in ``low..high``, ``default`` when absent.

    ASCII digits only, as the document's ``integer`` says; anything else, and anything out of
    range, is ``ValidationFailed`` — never clamped.
    """
    text = request.args.get(name)
    if text is None:
        return default
    if not _DIGITS.fullmatch(text) or not low <= int(text) <= high:
        raise ValidationFailed(f"{name} must be an integer from {low} to {high}", field=name)
    return int(text)


@bp.get("/api/transactions")
@login_required
def list_transactions() -> Response:
    """The user's transactions, newest first: ``?cardId=&limit=&cursor=``."""
    user = current_user()
    limit = _int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    card_id = _int_arg("cardId", 0, 1, MAX_ROW_ID) or None
    query = (
        select(Transaction)
        .where(Transaction.user_id == user.id)
        .order_by(Transaction.created_at.desc(), Transaction.id.desc())
        .limit(limit + 1)
    )
    if card_id is not None:
        query = query.where(Transaction.card_id == card_id)
    cursor = request.args.get("cursor")
    if cursor:
        stamp, ident = decode_cursor(cursor)
        query = query.where(
            or_(
                Transaction.created_at < stamp,
                and_(Transaction.created_at == stamp, Transaction.id < ident),
            )
        )
    rows = list(db().scalars(query))
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1]) if len(rows) > limit else None
    return json_response({"items": [transaction_json(t) for t in page], "nextCursor": next_cursor})


@bp.get("/api/transactions/<string:txn_id>")
@login_required
def get_transaction(txn_id: str) -> Response:
    """One of the user's transactions (404 for anyone else's)."""
    user = current_user()
    if not TXN_ID.fullmatch(txn_id):
        raise NotFound(f"no transaction {txn_id[:40]!r}")
    txn = db().scalar(
        select(Transaction).where(Transaction.public_id == txn_id, Transaction.user_id == user.id)
    )
    if txn is None:
        raise NotFound(f"no transaction {txn_id}")
    return json_response(transaction_json(txn))
