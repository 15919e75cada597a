"""Health and the API description (/healthz, /openapi.json).

The OpenAPI 3.1 document is built from one table, :data:`ROUTES`: each row names a route's
request model and its answers by pydantic model (:mod:`tsp_backend.api.schemas`, and the
payment models of :mod:`tsp_backend.api.payments`), so the JSON Schemas are the very models that
validate the requests. Every operation also answers RFC 9457 problem documents
(``application/problem+json``, schema ``Problem``) for its 4xx and 5xx statuses; security is
the session (bearer token, or the ``hcekit_session`` cookie plus ``X-CSRF-Token`` on unsafe
methods) or a terminal API key; the idempotent routes require the ``Idempotency-Key`` header.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

from flask import Blueprint, Response
from pydantic import BaseModel
from sqlalchemy import text

from tsp_backend.api import payments, schemas, transactions
from tsp_backend.api.http import (
    CSRF_HEADER,
    RETRY_AFTER_S,
    SESSION_COOKIE,
    db,
    json_response,
    services,
)
from tsp_backend.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE
from tsp_backend.models import MAX_ROW_ID

bp = Blueprint("meta", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Database and store reachability and the networks' breaker states (200 or 503)."""
    svc = services()
    try:
        db().execute(text("SELECT 1"))
        database = "ok"
    except Exception:
        database = "unavailable"
    store = "ok" if svc.store.ping() else "unavailable"
    healthy = database == "ok" and store == "ok"
    return json_response(
        {
            "status": "ok" if healthy else "degraded",
            "database": database,
            "store": store,
            "breakers": svc.networks.breaker_states(),
        },
        200 if healthy else 503,
        headers=None if healthy else {"Retry-After": str(RETRY_AFTER_S)},
    )


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 document."""
    return json_response(openapi_document())


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

_SCHEMA_REF = "#/components/schemas/{model}"

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "sessionBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The session token from POST /api/auth/login; no CSRF token needed.",
    },
    "sessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "The session cookie set at login (browsers); unsafe methods also need csrfHeader.",
    },
    "csrfHeader": {
        "type": "apiKey",
        "in": "header",
        "name": CSRF_HEADER,
        "description": "The session's CSRF token (csrfToken of the login answer or of GET /api/me).",
    },
    "terminalKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "hk_…",
        "description": "A terminal or merchant API key from POST /api/terminals.",
    },
}
"""The security schemes of /openapi.json."""


IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "A client-chosen unique key; a retry with the same key and body replays the "
    "first answer (draft-ietf-httpapi-idempotency-key-header).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
"""The header parameter of every idempotent route."""


def _security(route: Route) -> list[dict[str, list[str]]]:
    if route.auth == "none":
        return []
    if route.auth == "terminal":
        return [{"terminalKey": []}]
    if route.method == "get":
        return [{"sessionBearer": []}, {"sessionCookie": []}]
    return [{"sessionBearer": []}, {"sessionCookie": [], "csrfHeader": []}]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _SCHEMA_REF.format(model=model.__name__)}


def _add_schema(components: dict[str, Any], model: type[BaseModel]) -> None:
    if model.__name__ in components:
        return
    schema = model.model_json_schema(by_alias=True, ref_template=_SCHEMA_REF)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema


def _operation(route: Route, components: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, description, model in route.responses:
        answer: dict[str, Any] = {"description": description}
        if model is not None:
            _add_schema(components, model)
            schema: dict[str, Any] = _ref(model)
            if route.list_of:
                schema = {"type": "array", "items": schema}
            answer["content"] = {"application/json": {"schema": schema}}
        responses[status] = answer
    responses["4XX"] = {"$ref": "#/components/responses/Problem"}
    responses["5XX"] = {"$ref": "#/components/responses/Problem"}
    operation: dict[str, Any] = {
        "operationId": _operation_id(route),
        "summary": route.summary,
        "responses": responses,
        "security": _security(route),
    }
    parameters: list[dict[str, Any]] = []
    if "{id}" in route.path:
        id_schema: dict[str, Any] = (
            {"type": "integer", "format": "int32", "minimum": 1, "maximum": MAX_ROW_ID}
            if route.id_type == "integer"
            else {"type": "string", "pattern": f"^{transactions.TXN_ID.pattern}$"}
        )
        parameters.append({"name": "id", "in": "path", "required": True, "schema": id_schema})
    for query in route.query:
        parameters.append(
            {
                "name": query.name,
                "in": "query",
                "required": False,
                "schema": query.schema,
                "description": query.description,
            }
        )
    if route.idempotent:
        parameters.append(IDEMPOTENCY_KEY)
    if parameters:
        operation["parameters"] = parameters
    if route.request is not None:
        _add_schema(components, route.request)
        required = bool(route.request.model_json_schema().get("required"))
        operation["requestBody"] = {
            "required": required,
            "content": {"application/json": {"schema": _ref(route.request)}},
        }
    return operation


def _operation_id(route: Route) -> str:
    words = [w for w in route.path.replace("{id}", "by-id").strip("/").split("/") if w != "api"]
    parts = [route.method, *(p for w in words for p in w.replace("-", " ").split())]
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


@functools.lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    components: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method] = _operation(route, components)
    _add_schema(components, schemas.Problem)
    components["Problem"]["description"] = (
        f"RFC 9457 problem details; `type` is a stable URI under {PROBLEM_BASE}. Extension members "
        "follow: `field` and `errors` (validation), `attemptsRemaining` (codes), `deviceId` "
        "(card-on-another-device), `limit` (key batches)."
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hcekit token service",
            "version": "1",
            "description": "Provisioning, device pickup, token lifecycle, devices, authorization of "
            "taps and in-app payments, transactions. Errors are RFC 9457 problem documents. "
            "Cookie-authenticated unsafe requests need the X-CSRF-Token header; bearer clients "
            "do not. Idempotent routes need an Idempotency-Key header and replay their first answer. "
            "Bodies are one JSON object of at most 64 KiB (413) nested at most 16 deep; members are "
            "exactly as described: integers are JSON integers (not strings, booleans or 2.0), digit "
            "strings are ASCII digits, text never holds NUL. A request that does not match this "
            "document is answered 400 (request-validation or malformed-body); one that matches is "
            "never answered 400 — it is refused, if at all, for what it means (401, 403, 404, 409, "
            "422, 429). While the database or the shared store is unreachable, answers are 503 "
            "dependency-unavailable with Retry-After, and nothing is half done.",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "responses": {
                "Problem": {
                    "description": "RFC 9457 problem",
                    "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }
            },
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document built from :data:`ROUTES` and the pydantic models (a fresh copy)."""
    import copy

    return copy.deepcopy(_document())
