"""Terminal and merchant API keys (/api/terminals; administrators, or anyone in dev mode)."""

from __future__ import annotations

from flask import Blueprint, Response

from tsp_backend.api.common import body, commit_json, current_user, db, login_required, origin, services
from tsp_backend.api.schemas import TerminalBody
from tsp_backend.errors import Forbidden
from tsp_backend.services import audit
from tsp_backend.services.terminals import create_api_key

bp = Blueprint("terminals", __name__)


@bp.post("/api/terminals")
@login_required
def create_terminal() -> Response:
    """Create an API key; the key is in this response only (201)."""
    user = current_user()
    if not (user.is_admin or services().config.dev_mode):
        raise Forbidden("creating terminal keys needs an administrator (or dev mode)")
    data = body(TerminalBody)
    row, key = create_api_key(db(), data.name, kind=data.kind, created_by=user.id)
    audit.record(
        db(),
        actor=f"user:{user.id}",
        action="apikey.create",
        target=f"apikey:{row.id}",
        outcome="success",
        origin=origin(),
        kind=row.kind,
    )
    return commit_json(
        {"id": row.id, "name": row.name, "kind": row.kind, "apiKey": key, "prefix": row.prefix}, 201
    )
