"""Development routes, registered only in dev mode: the simulated SMS/e-mail outbox."""

from __future__ import annotations

import json

from flask import Blueprint, Response

from tsp_backend.api.http import current_user, json_response, login_required, services

bp = Blueprint("dev", __name__)


@bp.get("/api/dev/outbox")
@login_required
def outbox() -> Response:
    """The one-time-code messages sent to the current user, newest first."""
    messages = [json.loads(m) for m in services().store.lrange(f"outbox:{current_user().id}")]
    return json_response(messages)
