"""The JSON API as a table: one :class:`Route` row per operation (:data:`ROUTES`).

Each row names a route's request model and its answers by pydantic model
(:mod:`tsp_backend.api.schemas`, and the payment models of :mod:`tsp_backend.api.payments`), so
the JSON Schemas of /openapi.json (:mod:`tsp_backend.api.openapi`) are the very models that
validate the requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from tsp_backend.api import issuer_actions, payments, schemas, transactions
from tsp_backend.models import MAX_ROW_ID

Auth = Literal["session", "terminal", "none"]
"""Who may call a route: a wallet session, a terminal API key, or anyone."""


@dataclass(frozen=True)
class Query:
    """A query parameter of a route."""

    name: str
    schema: dict[str, Any]
    description: str


@dataclass(frozen=True)
class Route:
    """One operation of the API: what it takes, what it answers, who may call it."""

    method: str
    path: str
    summary: str
    request: type[BaseModel] | None
    responses: tuple[tuple[str, str, type[BaseModel] | None], ...]
    """(status, description, body model or ``None`` for an empty body), success statuses only."""
    auth: Auth = "session"
    idempotent: bool = False
    list_of: bool = False
    """The success body is a JSON array of the model."""
    query: tuple[Query, ...] = ()
    id_type: Literal["integer", "string"] = "integer"


_S = schemas
_IA = issuer_actions
_OK = "Success"

ROUTES: tuple[Route, ...] = (
    Route(
        "post",
        "/api/auth/register",
        "Create an account",
        _S.RegisterBody,
        (("201", "Account created", _S.UserOut),),
        auth="none",
    ),
    Route(
        "post",
        "/api/auth/login",
        "Log in; returns a bearer token and sets the session cookie",
        _S.LoginBody,
        (("200", _OK, _S.LoginResult),),
        auth="none",
    ),
    Route("post", "/api/auth/logout", "Revoke the current session", None, (("204", "Logged out", None),)),
    Route("get", "/api/auth/me", "The current user and devices", None, (("200", _OK, _S.MeOut),)),
    Route("get", "/api/me", "Alias of /api/auth/me", None, (("200", _OK, _S.MeOut),)),
    Route(
        "post",
        "/api/devices",
        "Register a device with its P-256 public key",
        _S.DeviceBody,
        (("201", "Device registered", _S.DeviceOut),),
    ),
    Route("get", "/api/devices", "List devices", None, (("200", _OK, _S.DeviceOut),), list_of=True),
    Route("get", "/api/devices/{id}", "Show a device", None, (("200", _OK, _S.DeviceOut),)),
    Route(
        "post",
        "/api/devices/{id}/lost",
        "Mark a device lost (suspends tokens, revokes sessions)",
        None,
        (("200", _OK, _S.DeviceLostResult),),
    ),
    Route(
        "get",
        "/api/cards",
        "List live tokens, oldest first (cursor)",
        None,
        (("200", _OK, _S.CardPage),),
        query=(
            Query("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "Page size (default 20)"),
            Query(
                "cursor",
                {"type": "string", "pattern": f"^{transactions.CURSOR.pattern}$"},
                "nextCursor of the previous page (422 if it is not one this service issued)",
            ),
        ),
    ),
    Route(
        "post",
        "/api/cards",
        "Provision a card: 201 sealed profile, or 202 verification needed",
        _S.ProvisionBody,
        (
            ("201", "Token active; profile sealed to the device", _S.ProvisionResult),
            ("202", "One-time code sent; verify before use", _S.ProvisionResult),
        ),
        idempotent=True,
    ),
    Route("get", "/api/cards/{id}", "Show a token", None, (("200", _OK, _S.CardOut),)),
    Route(
        "post",
        "/api/cards/{id}/verify",
        "Submit a one-time code, or ask for a new one",
        _S.VerifyBody,
        (
            ("200", "Token active; profile sealed to the device", _S.VerifyResult),
            ("202", "A new code was sent", _S.VerificationSent),
        ),
    ),
    Route(
        "post",
        "/api/cards/{id}/profile",
        "Device pickup: a fresh profile and key batch sealed to the requesting device "
        "(409 card-on-another-device unless move is true)",
        _S.PickupBody,
        (("200", _OK, _S.PickupResult),),
        idempotent=True,
    ),
    Route("delete", "/api/cards/{id}", "Deactivate a token", None, (("200", _OK, _S.CardOut),)),
    Route("post", "/api/cards/{id}/suspend", "Suspend a token", _S.SuspendBody, (("200", _OK, _S.CardOut),)),
    Route(
        "post",
        "/api/cards/{id}/reactivate",
        "Reactivate a token",
        _S.ReactivateBody,
        (("200", _OK, _S.CardOut),),
    ),
    Route(
        "put", "/api/cards/{id}/default", "Make a token the device default", None, (("200", _OK, _S.CardOut),)
    ),
    Route(
        "post",
        "/api/cards/{id}/keys",
        "Replenish limited-use keys (sealed; bounded per day)",
        None,
        (("200", _OK, _S.KeysResult),),
    ),
    Route("post", "/api/cards/{id}/issuer-actions",
          "Ask for an issuer action on a token (block, unblock, CVM limit); scripted after its next approval",
          _IA.IssuerActionBody, (("201", "Action pending", _IA.IssuerActionOut),), idempotent=True),
    Route("get", "/api/cards/{id}/issuer-actions", "A token's issuer actions", None,
          (("200", _OK, _IA.IssuerActionList),)),
    Route("post", "/api/cards/{id}/issuer-scripts",
          "The device takes its card's queued issuer scripts, with the ARPC (each delivered once)",
          _IA.EmptyBody, (("200", _OK, _IA.IssuerScriptList),), idempotent=True),
    Route("post", "/api/issuer-scripts/{id}/result",
          "The card's status word for a delivered issuer script: applied (9000) or refused",
          _IA.ScriptResultBody, (("200", _OK, _IA.IssuerActionOut),)),
    Route(
        "get", "/api/cards/{id}/controls", "A token's domain controls", None, (("200", _OK, _S.ControlsOut),)
    ),
    Route(
        "put",
        "/api/cards/{id}/controls",
        "Set a token's domain controls",
        payments.ControlsBody,
        (("200", _OK, _S.ControlsOut),),
    ),
    Route(
        "post",
        "/api/terminals",
        "Create a terminal or merchant API key",
        _S.TerminalBody,
        (("201", "Key created (shown once)", _S.TerminalKeyOut),),
    ),
    Route(
        "delete",
        "/api/terminals/{id}",
        "Revoke a terminal or merchant API key (refused at once by every worker)",
        None,
        (("200", "Key revoked", _S.TerminalKeyRevoked),),
    ),
    Route(
        "post",
        "/api/authorize",
        "Authorize a tap with a terminal API key: 200 with the decision",
        payments.AuthorizeBody,
        (("200", _OK, _S.AuthorizationOut),),
        auth="terminal",
        idempotent=True,
    ),
    Route(
        "post",
        "/api/payments/in-app",
        "Pay in an app with a wallet card",
        payments.PaymentRequestBody,
        (("200", _OK, _S.PaymentResult),),
        idempotent=True,
    ),
    Route(
        "get",
        "/api/transactions",
        "Transaction history, newest first (cursor)",
        None,
        (("200", _OK, _S.TransactionPage),),
        query=(
            Query(
                "cardId",
                {"type": "integer", "minimum": 1, "maximum": MAX_ROW_ID},
                "Only this card's transactions",
            ),
            Query(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": transactions.MAX_LIMIT},
                f"Page size (default {transactions.DEFAULT_LIMIT}); a larger one is refused (400), "
                "never clamped",
            ),
            Query(
                "cursor",
                {"type": "string", "pattern": f"^{transactions.CURSOR.pattern}$"},
                "nextCursor of the previous page (422 if it is not one this service issued)",
            ),
        ),
    ),
    Route(
        "get",
        "/api/transactions/{id}",
        "One transaction",
        None,
        (("200", _OK, _S.TransactionOut),),
        id_type="string",
    ),
    Route(
        "post",
        "/api/admin/reconcile",
        "Settle in-doubt transactions (administrators, or dev mode)",
        None,
        (("200", _OK, _S.ReconcileReport),),
        query=(
            Query(
                "olderThan",
                {"type": "number", "minimum": 0, "maximum": payments.MAX_OLDER_THAN_S},
                "Only transactions older than this many seconds (a finite number; default 0)",
            ),
        ),
    ),
    Route(
        "get",
        "/api/dev/outbox",
        "Development outbox of one-time codes (dev mode only)",
        None,
        (("200", _OK, _S.OutboxMessage),),
        list_of=True,
    ),
    Route(
        "get",
        "/healthz",
        "Health of the database, the store and the network breakers",
        None,
        (("200", "Healthy", _S.Health), ("503", "Degraded", _S.Health)),
        auth="none",
    ),
)
"""Every route of the JSON API (the test suite checks that the app has no other)."""
