"""Request bodies as pydantic models (validation, and the schemas of /openapi.json)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)


class RegisterBody(_Body):
    """POST /api/auth/register."""

    email: str = Field(max_length=254)
    password: str = Field(min_length=8, max_length=1024)


class LoginBody(_Body):
    """POST /api/auth/login; ``deviceId`` binds the session to a device (revoked when it is lost)."""

    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)
    device_id: int | None = Field(default=None, alias="deviceId")


class DeviceBody(_Body):
    """POST /api/devices: a P-256 public key as PEM or base64 of the uncompressed point."""

    name: str = Field(default="device", max_length=100)
    public_key: str = Field(alias="publicKey", max_length=4096)


class ProvisionBody(_Body):
    """POST /api/cards: the funding card and the device to provision to. Expiry is MM/YY."""

    pan: str = Field(min_length=12, max_length=23)
    expiry: str = Field(max_length=7)
    cvv: str = Field(min_length=3, max_length=4)
    device_id: int = Field(alias="deviceId")


class VerifyBody(_Body):
    """POST /api/cards/{id}/verify: a ``code``, or a ``method`` to send a new code."""

    code: str | None = Field(default=None, max_length=12)
    method: str | None = Field(default=None, pattern="^otp_(sms|email)$")


class ReasonBody(_Body):
    """Suspend / reactivate / delete: a reason code (see the lifecycle table)."""

    reason: str = Field(default="CUSTOMER_REQUEST", max_length=32)


class TerminalBody(_Body):
    """POST /api/terminals: a name and the kind of client."""

    name: str = Field(max_length=100)
    kind: str = Field(default="terminal", pattern="^(terminal|merchant)$")
