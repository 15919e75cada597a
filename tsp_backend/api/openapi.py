"""The OpenAPI 3.1 document of the JSON API, built from :data:`tsp_backend.api.routes.ROUTES`.

Every operation also answers RFC 9457 problem documents (``application/problem+json``, schema
``Problem``) for its 4xx and 5xx statuses; security is the session (bearer token, or the
``hcekit_session`` cookie plus ``X-CSRF-Token`` on unsafe methods) or a terminal API key; the
idempotent routes require the ``Idempotency-Key`` header.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from pydantic import BaseModel

from tsp_backend.api import schemas, transactions
from tsp_backend.api.http import CSRF_HEADER, SESSION_COOKIE
from tsp_backend.api.routes import ROUTES, Route
from tsp_backend.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE
from tsp_backend.models import MAX_ROW_ID

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
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[!-~](?:[ -~]*[!-~])?$"},
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
    return copy.deepcopy(_document())
