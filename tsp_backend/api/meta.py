"""Health and the API description (/healthz, /openapi.json)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response
from sqlalchemy import text

from tsp_backend.api import schemas
from tsp_backend.api.common import db, json_response, services
from tsp_backend.errors import PROBLEM_BASE

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
    )


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 document."""
    return json_response(openapi_document())


_PROBLEM = {"$ref": "#/components/responses/Problem"}

#: (method, path, summary, request schema, success status, auth, idempotent)
ROUTES: tuple[tuple[str, str, str, str | None, str, bool, bool], ...] = (
    ("post", "/api/auth/register", "Create an account", "RegisterBody", "201", False, False),
    (
        "post",
        "/api/auth/login",
        "Log in; returns a bearer token and sets the session cookie",
        "LoginBody",
        "200",
        False,
        False,
    ),
    ("post", "/api/auth/logout", "Revoke the current session", None, "204", True, False),
    ("get", "/api/me", "The current user and devices", None, "200", True, False),
    ("post", "/api/devices", "Register a device with its P-256 public key", "DeviceBody", "201", True, False),
    ("get", "/api/devices", "List devices", None, "200", True, False),
    ("get", "/api/devices/{id}", "Show a device", None, "200", True, False),
    (
        "post",
        "/api/devices/{id}/lost",
        "Mark a device lost (suspends tokens, revokes sessions)",
        None,
        "200",
        True,
        False,
    ),
    ("get", "/api/cards", "List live tokens", None, "200", True, False),
    (
        "post",
        "/api/cards",
        "Provision a card: 201 sealed profile, or 202 verification needed",
        "ProvisionBody",
        "201",
        True,
        True,
    ),
    ("get", "/api/cards/{id}", "Show a token", None, "200", True, False),
    ("post", "/api/cards/{id}/verify", "Submit or re-send a one-time code", "VerifyBody", "200", True, False),
    ("delete", "/api/cards/{id}", "Deactivate a token", None, "200", True, False),
    ("post", "/api/cards/{id}/suspend", "Suspend a token", "ReasonBody", "200", True, False),
    ("post", "/api/cards/{id}/reactivate", "Reactivate a token", "ReasonBody", "200", True, False),
    ("put", "/api/cards/{id}/default", "Make a token the device default", None, "200", True, False),
    ("post", "/api/cards/{id}/keys", "Replenish limited-use keys (sealed)", None, "200", True, False),
    ("post", "/api/terminals", "Create a terminal or merchant API key", "TerminalBody", "201", True, False),
    ("post", "/api/authorize", "Authorize a tap (terminal API key): 200 decision", None, "200", False, True),
    ("post", "/api/payments/in-app", "Pay in an app with a wallet card", None, "200", True, True),
    ("get", "/api/cards/{id}/controls", "A token's domain controls", None, "200", True, False),
    ("put", "/api/cards/{id}/controls", "Set a token's domain controls", None, "200", True, False),
    ("get", "/api/transactions", "Transaction history, newest first (cursor)", None, "200", True, False),
    ("get", "/api/transactions/{id}", "One transaction", None, "200", True, False),
    ("post", "/api/admin/reconcile", "Settle in-doubt transactions (admin)", None, "200", True, False),
    (
        "get",
        "/api/dev/outbox",
        "Development outbox of one-time codes (dev mode only)",
        None,
        "200",
        True,
        False,
    ),
    ("get", "/healthz", "Health", None, "200", False, False),
)


def openapi_document() -> dict[str, Any]:
    """Build the OpenAPI 3.1 document from :data:`ROUTES` and the pydantic schemas."""
    components: dict[str, Any] = {}
    for name in sorted({r[3] for r in ROUTES if r[3]}):
        model = getattr(schemas, name)
        schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[name] = schema
    components["Problem"] = {
        "type": "object",
        "description": f"RFC 9457 problem details; `type` is a stable URI under {PROBLEM_BASE}",
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
        },
        "required": ["type", "title", "status", "detail"],
    }
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, request_schema, status, auth, idempotent in ROUTES:
        operation: dict[str, Any] = {
            "summary": summary,
            "responses": {status: {"description": "Success"}, "default": _PROBLEM},
        }
        parameters: list[dict[str, Any]] = []
        if "{id}" in path:
            parameters.append({"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}})
        if idempotent:
            parameters.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "maxLength": 255},
                }
            )
            operation["responses"]["202"] = {"description": "Additional authentication required"}
        if parameters:
            operation["parameters"] = parameters
        if request_schema:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{request_schema}"}}
                },
            }
        operation["security"] = [{"bearer": []}, {"cookie": []}] if auth else []
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hcekit token service",
            "version": "1",
            "description": "Provisioning, token lifecycle and devices. Cookie-authenticated unsafe "
            "requests need the X-CSRF-Token header; bearer clients do not.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": {
                "Problem": {
                    "description": "RFC 9457 problem",
                    "content": {
                        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                    },
                }
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "hcekit_session"},
            },
        },
    }
