"""Terminal and merchant API keys (/api/terminals).

* ``POST /api/terminals`` — create a key (administrators, or anyone in dev mode).
* ``DELETE /api/terminals/{id}`` — revoke a key (administrators, or the key's creator), refused
  at once by every process (see :mod:`tsp_backend.services.terminals`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from tsp_backend.api.http import audit_row, body, commit_json, current_user, db, login_required, services
from tsp_backend.api.schemas import TerminalBody
from tsp_backend.errors import Forbidden, NotFound
from tsp_backend.models import ApiKey, is_row_id
from tsp_backend.services.terminals import create_api_key, revoke_api_key

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
    audit_row(actor=f"user:{user.id}", action="apikey.create", target=f"apikey:{row.id}", kind=row.kind)
    return commit_json(
        {"id": row.id, "name": row.name, "kind": row.kind, "apiKey": key, "prefix": row.prefix}, 201
    )


def api_key_json(row: ApiKey) -> dict[str, Any]:
    """An API key as JSON (never the key itself)."""
    return {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "prefix": row.prefix,
        "createdAt": row.created_at.isoformat(),
        "revokedAt": row.revoked_at.isoformat() if row.revoked_at else None,
    }


@bp.delete("/api/terminals/<int:key_id>")
@login_required
def revoke_terminal(key_id: int) -> Response:
    """Revoke an API key; every process refuses it from this answer on (200)."""
    user = current_user()
    if not is_row_id(key_id):
        raise NotFound(f"no API key {key_id}")
    row = revoke_api_key(db(), services().store, key_id, user_id=user.id, admin=user.is_admin)
    audit_row(actor=f"user:{user.id}", action="apikey.revoke", target=f"apikey:{row.id}", kind=row.kind)
    return commit_json(api_key_json(row))
