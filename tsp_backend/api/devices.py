"""Devices (/api/devices): register a P-256 key, list, show, mark lost."""

from __future__ import annotations

from flask import Blueprint, Response

from tsp_backend.api.http import (
    body,
    commit_json,
    current_user,
    db,
    json_response,
    login_required,
    request_origin,
    services,
)
from tsp_backend.api.schemas import DeviceBody
from tsp_backend.services.devices import device_json, list_devices, owned_device

bp = Blueprint("devices", __name__)


@bp.post("/api/devices")
@login_required
def create_device() -> Response:
    """Register a device with its public key (201)."""
    data = body(DeviceBody)
    user = current_user()
    device = services().wallet.register_device(db(), user.id, data.name, data.public_key, request_origin())
    return commit_json(device_json(device), 201)


@bp.get("/api/devices")
@login_required
def get_devices() -> Response:
    """The user's devices."""
    return json_response([device_json(d) for d in list_devices(db(), current_user().id)])


@bp.get("/api/devices/<int:device_id>")
@login_required
def get_device(device_id: int) -> Response:
    """One device."""
    return json_response(device_json(owned_device(db(), current_user().id, device_id)))


@bp.post("/api/devices/<int:device_id>/lost")
@login_required
def device_lost(device_id: int) -> Response:
    """Mark a device lost: suspend its tokens and revoke its sessions."""
    device, changed = services().wallet.device_lost(db(), current_user().id, device_id, request_origin())
    return commit_json(
        {"device": device_json(device), "cards": [{"id": c.id, "status": c.status} for c in changed]}
    )
