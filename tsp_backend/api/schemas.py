"""Request and response bodies as pydantic models: the request models validate what comes in, and
both kinds are the JSON Schemas of /openapi.json (:mod:`tsp_backend.api.meta`).

The response models describe what the blueprints answer (they build their JSON by hand); the
OpenAPI tests check real answers against these schemas, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.json_schema import SkipJsonSchema

from tsp_backend.models import MAX_ROW_ID as MAX_ID
from tsp_backend.services.lifecycle import CUSTOMER_REASONS, TokenEvent
from tsp_backend.services.users import EMAIL_PATTERN

TEXT_PATTERN = r"^[^\x00]*$"
"""Any text but NUL, which PostgreSQL's ``text`` cannot hold (lone surrogates are refused as not
Unicode by the validator itself)."""

Text = Annotated[str, Field(pattern=TEXT_PATTERN)]
"""The string type of every free-text member of a request body."""

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""A row id: a JSON integer a row can have (``1..MAX_ROW_ID``)."""


def one_of(values: Iterable[object]) -> str:
    """An anchored pattern matching exactly one of ``values`` (sorted, for a stable document).

    >>> one_of(["b", "a"])
    '^(?:a|b)$'
    """
    return "^(?:" + "|".join(sorted(str(v) for v in values)) + ")$"


def _absent_by_default(schema: dict[str, Any]) -> None:
    """A member that may be left out but not sent as ``null``: no ``default`` in the document."""
    schema.pop("default", None)


class Body(BaseModel):
    """A request body: strict (JSON integers are integers, strings are strings, no coercion), members
    by their documented name only, and no member the document does not name."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_by_name=False, validate_by_alias=True)


class RegisterBody(Body):
    """POST /api/auth/register."""

    email: str = Field(max_length=254, pattern=EMAIL_PATTERN)
    password: Text = Field(min_length=8, max_length=1024)


class LoginBody(Body):
    """POST /api/auth/login; ``deviceId`` binds the session to a device (revoked when it is lost)."""

    email: Text = Field(max_length=254)
    password: Text = Field(max_length=1024)
    device_id: Id | None = Field(default=None, alias="deviceId")


class DeviceBody(Body):
    """POST /api/devices: a P-256 public key as PEM or base64 of the uncompressed point."""

    name: Text = Field(default="device", max_length=100)
    public_key: Text = Field(alias="publicKey", max_length=4096)


class ProvisionBody(Body):
    """POST /api/cards: the funding card and the device to provision to.

    ASCII digits only: the PAN may be grouped by spaces or hyphens; the expiry is ``MM/YY``,
    ``MMYY`` or ``MM/YYYY``; the CVV has 3 or 4 digits.
    """

    pan: str = Field(min_length=12, max_length=23, pattern=r"^[0-9][0-9 -]*[0-9]$")
    expiry: str = Field(max_length=7, pattern=r"^[0-9]{2} ?/? ?(?:[0-9]{2}|[0-9]{4})$")
    cvv: str = Field(min_length=3, max_length=4, pattern=r"^[0-9]{3,4}$")
    device_id: Id = Field(alias="deviceId")


class VerifyBody(Body):
    """POST /api/cards/{id}/verify: a ``code``, or a ``method`` to send a new code (at least one)."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    code: Annotated[str, Field(pattern=r"^[0-9]{1,12}$")] | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_absent_by_default
    )
    method: Literal["otp_sms", "otp_email"] | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_absent_by_default
    )


class SuspendBody(Body):
    """POST /api/cards/{id}/suspend: a reason code the wallet may give (the lifecycle table)."""

    reason: str = Field(default="CUSTOMER_REQUEST", pattern=one_of(CUSTOMER_REASONS[TokenEvent.SUSPEND]))


class ReactivateBody(Body):
    """POST /api/cards/{id}/reactivate: a reason code the wallet may give (the lifecycle table)."""

    reason: str = Field(default="CUSTOMER_REQUEST", pattern=one_of(CUSTOMER_REASONS[TokenEvent.REACTIVATE]))


class TerminalBody(Body):
    """POST /api/terminals: a name and the kind of client."""

    name: Text = Field(max_length=100)
    kind: Literal["terminal", "merchant"] = "terminal"


class PickupBody(Body):
    """POST /api/cards/{id}/profile: the device that picks the card up, and consent to move it.

    ``deviceId`` defaults to the device the session is bound to (``deviceId`` at login); a
    device-bound session may pick up only for its own device. ``move`` lets a card bound to
    another of the user's devices come to this one (the other device's keys are expired).
    """

    device_id: Id | None = Field(default=None, alias="deviceId")
    move: bool = False


# --- responses ----------------------------------------------------------------------------------


class _Out(BaseModel):
    """A response body: camelCase members on the wire, and no member the schema does not name."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


TokenStatus = Literal["INACTIVE", "ACTIVE", "SUSPENDED", "DEACTIVATED"]
"""The token lifecycle states (:mod:`tsp_backend.services.lifecycle`)."""


class CardOut(_Out):
    """A network token as the API shows it: never a PAN, last four digits only."""

    id: int
    network: str
    last4: str = Field(pattern=r"^\d{4}$")
    token_last4: str = Field(pattern=r"^\d{4}$")
    token_ref: str
    token_expiry: str = Field(description="YYMM")
    status: TokenStatus
    status_reason: str | None
    decision: str
    default: bool
    device_id: int
    created_at: str = Field(json_schema_extra={"format": "date-time"})


class SealedEnvelope(_Out):
    """A document sealed to a device's P-256 key (ECDH-ES + HKDF-SHA256 + AES-256-GCM).

    See :mod:`cryptogram.sealing`; only the device's private key opens it.
    """

    alg: str
    kid: str
    epk: str
    iv: str
    ct: str


class Verification(_Out):
    """A one-time code was sent: where, how many attempts, until when."""

    methods: list[str]
    sent_via: str
    to: str
    attempts: int
    expires_at: str = Field(json_schema_extra={"format": "date-time"})


class ProvisionResult(_Out):
    """POST /api/cards: 201 with ``profile`` (green), or 202 with ``verification`` (yellow)."""

    card: CardOut
    decision: str
    profile: SealedEnvelope | None = None
    verification: Verification | None = None


class VerifyResult(_Out):
    """POST /api/cards/{id}/verify: 200 with the activated card and its sealed profile."""

    card: CardOut
    profile: SealedEnvelope | None


class VerificationSent(_Out):
    """POST /api/cards/{id}/verify with a ``method``: 202, a new code was sent."""

    verification: Verification


class PickupResult(_Out):
    """POST /api/cards/{id}/profile: the card, its profile sealed to the device, where it came from."""

    card: CardOut
    profile: SealedEnvelope
    moved_from: int | None


class KeysResult(_Out):
    """POST /api/cards/{id}/keys: the card and a sealed batch of limited-use keys."""

    card: CardOut
    keys: SealedEnvelope


class DeviceOut(_Out):
    """A registered device."""

    id: int
    name: str
    key_id: str
    status: Literal["ACTIVE", "LOST"]
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    lost_at: str | None


class CardState(_Out):
    """A token's id and new state."""

    id: int
    status: TokenStatus


class DeviceLostResult(_Out):
    """POST /api/devices/{id}/lost: the device and the tokens it changed."""

    device: DeviceOut
    cards: list[CardState]


class UserOut(_Out):
    """A user."""

    id: int
    email: str


class LoginResult(_Out):
    """POST /api/auth/login: the bearer session token, its CSRF token and lifetime."""

    token: str
    csrf_token: str
    expires_in: int
    user: UserOut


class MeOut(_Out):
    """GET /api/me."""

    id: int
    email: str
    is_admin: bool
    session_device_id: int | None
    devices: list[DeviceOut]
    csrf_token: str | None


class TerminalKeyOut(_Out):
    """POST /api/terminals: the API key, shown in this answer only."""

    id: int
    name: str
    kind: Literal["terminal", "merchant"]
    api_key: str
    prefix: str


class TerminalKeyRevoked(_Out):
    """DELETE /api/terminals/{id}: the revoked key (never the key itself)."""

    id: int
    name: str
    kind: Literal["terminal", "merchant"]
    prefix: str
    created_at: str
    revoked_at: str | None


class AuthorizationOut(_Out):
    """POST /api/authorize: the decision (declines are 200 with an ISO 8583 response code)."""

    approved: bool
    response_code: str = Field(pattern=r"^[0-9A-Z]{2}$")
    auth_code: str | None
    arpc: str | None = Field(description="hex of the tag 91 value")
    transaction_id: str
    network: str | None
    reason: str | None


class PaymentResult(_Out):
    """POST /api/payments/in-app."""

    approved: bool
    auth_code: str | None
    network: str | None
    transaction_id: str
    response_code: str
    reason: str | None


class ControlsOut(_Out):
    """A token's domain controls (``null``: no restriction)."""

    card_id: int
    channels: list[str] | None
    merchants: list[str] | None
    blocked_mccs: list[str]


class MerchantOut(_Out):
    """The merchant of a transaction."""

    id: str | None
    name: str | None
    mcc: str | None


class TransactionOut(_Out):
    """One transaction (amounts in minor units with an ISO 4217 code)."""

    id: str
    card_id: int | None
    amount: int
    currency: str
    merchant: MerchantOut
    type: Literal["nfc", "in_app", "web"]
    channel: str
    status: Literal["pending", "approved", "declined", "in_doubt", "reversed"]
    response_code: str
    auth_code: str | None
    network: str | None
    atc: int | None
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    reason: str | None


class CardPage(_Out):
    """GET /api/cards: oldest first; ``nextCursor`` continues."""

    items: list[CardOut]
    next_cursor: str | None


class TransactionPage(_Out):
    """GET /api/transactions: newest first; ``nextCursor`` continues."""

    items: list[TransactionOut]
    next_cursor: str | None


class ReconcileReport(_Out):
    """POST /api/admin/reconcile."""

    checked: int
    reversed: int
    declined: int
    still_in_doubt: int
    abandoned: int


class OutboxMessage(_Out):
    """A simulated SMS or e-mail (development mode)."""

    at: str
    channel: str
    to: str
    card_id: int
    code: str
    text: str


class Health(_Out):
    """GET /healthz (200 healthy, 503 degraded)."""

    status: Literal["ok", "degraded"]
    database: str
    store: str
    breakers: dict[str, str]


class Problem(BaseModel):
    """RFC 9457 problem details; extension members (``field``, ``errors`` …) may follow."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(json_schema_extra={"format": "uri"})
    title: str
    status: int
    detail: str
    instance: str | None = None
