"""Devices: registration with a P-256 public key, look-up by owner, "device lost"."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cryptogram.sealing import SealingError, key_id, load_public_key, point_bytes
from tsp_backend.errors import DeviceKeyInvalid, ValidationFailed
from tsp_backend.models import Device
from tsp_backend.services.ownership import owned


def register_device(session: Session, user_id: int, name: str, public_key: str) -> Device:
    """Register a device; the key may be PEM or base64 of the uncompressed point.

    ``ValidationFailed`` for a name with NUL (the database cannot store it), ``DeviceKeyInvalid``
    for a key that is not a P-256 point; nothing is written in either case.
    """
    if "\x00" in name:
        raise ValidationFailed("the device name may not contain NUL", field="name")
    try:
        key = load_public_key(public_key)
    except SealingError as exc:
        raise DeviceKeyInvalid(str(exc), field="publicKey") from exc
    device = Device(
        user_id=user_id,
        name=name.strip()[:100] or "device",
        public_key=point_bytes(key),
        key_id=key_id(key),
        status="ACTIVE",
    )
    session.add(device)
    session.flush()
    return device


def owned_device(session: Session, user_id: int, device_id: int, *, for_update: bool = False) -> Device:
    """The user's device; ``NotFound`` if it does not exist or belongs to someone else."""
    return owned(session, Device, user_id, device_id, for_update=for_update)


def list_devices(session: Session, user_id: int) -> list[Device]:
    """The user's devices, oldest first."""
    return list(session.scalars(select(Device).where(Device.user_id == user_id).order_by(Device.id)))


def device_json(device: Device) -> dict[str, object]:
    """The API representation of a device."""
    return {
        "id": device.id,
        "name": device.name,
        "keyId": device.key_id,
        "status": device.status,
        "createdAt": device.created_at.isoformat(),
        "lostAt": device.lost_at.isoformat() if device.lost_at else None,
    }
