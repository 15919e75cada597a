"""Live updates: the user's new transactions as Server-Sent Events (``GET /wallet/events``).

An open wallet page (``static/live.js``) listens with an ``EventSource``; a tap or a payment
that the service authorizes appears in it within :data:`POLL_S` plus a round trip. Server-Sent
Events (WHATWG HTML §9.2) fit the direction of the data — server to page only — and need
nothing but a long response, so they work under the development server and under gunicorn's
threaded workers alike.

The stream holds no database connection while it waits: each poll opens a session, reads the
rows after the last id sent and closes it, so the connection goes back to the pool between
polls. A stream ends after :data:`STREAM_S` (or when its session is revoked) and the browser
reconnects by itself after ``retry`` milliseconds with ``Last-Event-ID``, so no worker thread is
held for ever and nothing is missed in between.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from flask import Response, g, request
from sqlalchemy import func, select

from tsp_backend.api.http import current_user, db, services
from tsp_backend.models import Card, Transaction
from tsp_backend.web.history_pages import txn_status
from tsp_backend.web.pages import bp, channel_name, money, network_name, txn_state, when

POLL_S = 0.25
"""How often an open stream looks for new transactions."""

STREAM_S = 45.0
"""How long one stream lasts before the browser reconnects."""

RETRY_MS = 500
"""The reconnection delay the stream asks the browser for."""

BATCH = 50
"""Most transactions sent in one poll."""


def event_json(txn: Transaction, card: Card) -> dict[str, Any]:
    """One transaction as the page shows it (no PAN; the card by network and its own last four)."""
    status = txn_status(txn)
    return {
        "id": txn.public_id,
        "cardId": card.id,
        "merchant": txn.merchant_name or txn.merchant_id or "Payment",
        "card": f"{network_name(card.network)} •••• {card.funding_last4} · {channel_name(txn.channel)}",
        "amount": money(txn.amount, txn.currency),
        "at": txn.created_at.isoformat(),
        "when": when(txn.created_at),
        "status": status,
        "state": txn_state(status),
    }


@bp.get("/events")
def events() -> Response:
    """The signed-in user's transactions after ``?after=<id>`` (or ``Last-Event-ID``), as they come."""
    user_id = current_user().id
    token = g.auth_token
    after = request.args.get("after", type=int)
    last_event = request.headers.get("Last-Event-ID", "")
    if last_event.isdigit():
        after = int(last_event)
    if after is None:
        newest = db().scalar(
            select(func.max(Transaction.id)).where(Transaction.user_id == user_id)
        )
        after = int(newest or 0)
    svc = services()
    factory, sessions = svc.sessions_factory, svc.sessions
    start = after

    def stream() -> Iterator[str]:
        last = start
        yield f"retry: {RETRY_MS}\n\n"
        deadline = time.monotonic() + STREAM_S
        while time.monotonic() < deadline:
            with factory() as session:
                rows = session.execute(
                    select(Transaction, Card)
                    .join(Card, Card.id == Transaction.card_id)
                    .where(Transaction.user_id == user_id, Transaction.id > last)
                    .order_by(Transaction.id)
                    .limit(BATCH)
                ).all()
                chunks = []
                for txn, card in rows:
                    last = txn.id
                    data = json.dumps(event_json(txn, card))
                    chunks.append(f"id: {txn.id}\nevent: transaction\ndata: {data}\n\n")
            if chunks:
                yield "".join(chunks)
                continue
            if sessions.get(token) is None:
                return
            yield ": idle\n\n"
            time.sleep(POLL_S)

    return Response(
        stream(),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@bp.get("/sw.js")
def service_worker() -> Response:
    """The service worker, served from ``/wallet/`` so that its scope is the whole wallet."""
    response = bp.send_static_file("sw.js")
    response.mimetype = "text/javascript"
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/wallet/"
    return response


@bp.get("/manifest.webmanifest")
def manifest() -> Response:
    """The web app manifest (W3C Web Application Manifest): an installable wallet."""
    response = bp.send_static_file("manifest.webmanifest")
    response.mimetype = "application/manifest+json"
    return response
