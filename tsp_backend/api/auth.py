"""Registration, login, logout and the current user (/api/auth/*, /api/auth/me and its alias /api/me)."""

from __future__ import annotations

from flask import Blueprint, Response, g, request

from tsp_backend.api.http import (
    SESSION_COOKIE,
    body,
    clear_session_cookie,
    commit_json,
    current_user,
    db,
    json_response,
    login_required,
    request_origin,
    request_token,
    services,
    set_session_cookie,
)
from tsp_backend.api.schemas import LoginBody, RegisterBody
from tsp_backend.services.devices import device_json, list_devices

bp = Blueprint("auth", __name__)


@bp.post("/api/auth/register")
def register() -> Response:
    """Create an account (201)."""
    data = body(RegisterBody)
    user = services().accounts.register(db(), data.email, data.password, request_origin())
    return commit_json({"id": user.id, "email": user.email}, 201)


@bp.post("/api/auth/login")
def login() -> Response:
    """Check credentials and open a new session (the old one, if any, is revoked)."""
    data = body(LoginBody)
    old, _ = request_token()
    user, token, sess = services().accounts.log_in(
        db(),
        data.email,
        data.password,
        old,
        request_origin(),
        device_id=data.device_id,
        device=data.device_id,
    )
    ttl_s = services().config.session_ttl_s
    response = json_response(
        {
            "token": token,
            "csrfToken": sess.csrf,
            "expiresIn": ttl_s,
            "user": {"id": user.id, "email": user.email},
        }
    )
    set_session_cookie(response, token)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/api/auth/logout")
@login_required
def logout() -> Response:
    """Revoke the current session and clear the cookie (204)."""
    services().accounts.log_out(db(), g.auth_token, g.auth.user_id, request_origin())
    response = Response(status=204)
    clear_session_cookie(response)
    return response


@bp.get("/api/auth/me")
@bp.get("/api/me")
@login_required
def me() -> Response:
    """The current user and their devices."""
    user = current_user()
    devices = [device_json(d) for d in list_devices(db(), user.id)]
    return json_response(
        {
            "id": user.id,
            "email": user.email,
            "isAdmin": user.is_admin,
            "sessionDeviceId": g.auth.device_id,
            "devices": devices,
            "csrfToken": g.auth.csrf if request.cookies.get(SESSION_COOKIE) else None,
        }
    )
