"""What every blueprint shares: the request's database session, authentication, CSRF, bodies,
JSON and problem responses, the idempotency wrapper and the audit origin.

Authentication: ``Authorization: Bearer <session token>`` (API clients, no CSRF token needed),
or the ``hcekit_session`` cookie, in which case every unsafe request (POST, PUT, PATCH,
DELETE) must carry the session's CSRF token in ``X-CSRF-Token`` or a form field ``csrf_token``.
"""

from __future__ import annotations

import functools
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Response, current_app, g, request
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from tsp_backend.config import Config
from tsp_backend.errors import (
    PROBLEM_MEDIA_TYPE,
    CSRFFailed,
    IdempotencyInFlight,
    IdempotencyKeyMissing,
    TooManyRequests,
    TSPError,
    Unauthorized,
    ValidationFailed,
)
from tsp_backend.models import User
from tsp_backend.services.cards import CardService
from tsp_backend.services.idempotency import Claim, IdempotencyService, Replay
from tsp_backend.services.networks import NetworkClients
from tsp_backend.services.provisioning import Provisioner
from tsp_backend.services.sessions import SessionData, SessionManager
from tsp_backend.services.users import UserService
from tsp_backend.services.vault import Vault
from tsp_backend.stores import Store

SESSION_COOKIE = "hcekit_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Services:
    """Everything the blueprints use, built once by the application factory."""

    config: Config
    engine: Any
    sessions_factory: sessionmaker[Session]
    store: Store
    vault: Vault
    networks: NetworkClients
    users: UserService
    sessions: SessionManager
    provisioner: Provisioner
    cards: CardService
    idempotency: IdempotencyService


def services() -> Services:
    """The application's :class:`Services`."""
    svc: Services = current_app.extensions["hcekit"]
    return svc


def db() -> Session:
    """The request's database session (closed at teardown)."""
    if "db" not in g:
        g.db = services().sessions_factory()
    session: Session = g.db
    return session


def origin() -> str:
    """Where the request came from, for the audit log."""
    agent = (request.user_agent.string or "")[:120]
    return f"{request.remote_addr or '-'} {agent}".strip()


def actor() -> str:
    """``user:<id>`` or ``anonymous``."""
    data: SessionData | None = g.get("auth")
    return f"user:{data.user_id}" if data else "anonymous"


def request_token() -> tuple[str | None, str]:
    """The session token and how it came (``bearer`` or ``cookie``)."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip(), "bearer"
    return request.cookies.get(SESSION_COOKIE), "cookie"


def authenticate() -> SessionData:
    """The caller's session, with the CSRF check for cookie requests; ``Unauthorized`` otherwise."""
    token, via = request_token()
    data = services().sessions.get(token) if token else None
    if data is None:
        raise Unauthorized("a valid session is required: log in and send the bearer token or cookie")
    g.auth = data
    g.auth_token = token
    if via == "cookie" and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER) or (request.form.get("csrf_token") if request.form else None)
        if not sent or not hmac.compare_digest(sent, data.csrf):
            raise CSRFFailed(f"cookie-authenticated {request.method} needs the {CSRF_HEADER} header")
    return data


def current_user() -> User:
    """The authenticated user (loaded once per request)."""
    if "user" not in g:
        data = authenticate()
        user = db().get(User, data.user_id)
        if user is None:
            raise Unauthorized("the session's user no longer exists")
        g.user = user
    user_obj: User = g.user
    return user_obj


def login_required(view: F) -> F:
    """Authenticate before the view runs."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        current_user()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def body(model: type[M]) -> M:
    """The JSON (or form) body validated by a pydantic model; ``ValidationFailed`` with the errors."""
    data = request.get_json(silent=True)
    if data is None and request.form:
        data = request.form.to_dict()
    if data is None:
        data = {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors(include_input=False, include_url=False)
        ]
        raise ValidationFailed("the request body does not match the schema", errors=errors) from None


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response."""
    return Response(json.dumps(payload), status=status, mimetype="application/json", headers=headers)


def problem_response(error: TSPError) -> Response:
    """An RFC 9457 problem response for a service error."""
    headers = {"Cache-Control": "no-store"}
    if isinstance(error, (TooManyRequests, IdempotencyInFlight)):
        headers["Retry-After"] = "1"
    return Response(
        json.dumps(error.to_problem(instance=request.path)),
        status=error.status,
        mimetype=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def commit_json(payload: Any, status: int = 200) -> Response:
    """Store the response for an idempotent request in the effect's transaction, commit, respond."""
    text = json.dumps(payload)
    claim: Claim | None = g.get("idempotency_claim")
    session = db()
    if claim is not None:
        services().idempotency.complete(session, claim, status, text)
    session.commit()
    return Response(text, status=status, mimetype="application/json")


def idempotent(view: F) -> F:
    """Require ``Idempotency-Key`` and make the view's effect happen once per key.

    The view must end with :func:`commit_json`. Refusals (4xx other than 409/429) are stored and
    replayed like successes; 409, 429, 5xx and unexpected errors release the key for a retry.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        svc = services()
        key = request.headers.get("Idempotency-Key")
        if not key:
            raise IdempotencyKeyMissing(f"{request.method} {request.path} requires an Idempotency-Key header")
        svc.idempotency.check_key(key)
        user = current_user()
        fingerprint = svc.idempotency.fingerprint({"body": request.get_json(silent=True), "args": kwargs})
        route = f"{request.method} {request.url_rule.rule if request.url_rule else request.path}"
        outcome = svc.idempotency.begin(f"user:{user.id}", route, key, fingerprint)
        if isinstance(outcome, Replay):
            mimetype = PROBLEM_MEDIA_TYPE if outcome.status >= 400 else "application/json"
            return Response(
                outcome.body,
                status=outcome.status,
                mimetype=mimetype,
                headers={"Idempotent-Replayed": "true"},
            )
        g.idempotency_claim = outcome
        try:
            return view(*args, **kwargs)
        except TSPError as error:
            db().rollback()
            if 400 <= error.status < 500 and error.status not in (409, 429):
                svc.idempotency.complete_alone(
                    outcome, error.status, json.dumps(error.to_problem(instance=request.path))
                )
            else:
                svc.idempotency.release(outcome)
            raise
        except BaseException:
            db().rollback()
            svc.idempotency.release(outcome)
            raise

    return wrapper  # type: ignore[return-value]
