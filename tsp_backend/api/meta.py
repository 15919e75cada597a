"""Health and the API description (/healthz, /openapi.json).

The description is :func:`tsp_backend.api.openapi.openapi_document`, built from the table of
routes in :mod:`tsp_backend.api.routes`.
"""

from __future__ import annotations

from flask import Blueprint, Response
from sqlalchemy import text

from tsp_backend.api.http import RETRY_AFTER_S, db, json_response, services
from tsp_backend.api.openapi import openapi_document

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
