"""The HTTP side of every blueprint, JSON API and pages alike: the request's database session,
authentication, CSRF, bounded bodies, JSON and problem responses, the session cookie, the
request's :class:`~tsp_backend.services.origin.Origin`, and the ``Idempotency-Key`` plumbing around
:class:`~tsp_backend.services.idempotency.KeyUse` (the one owner of the idempotency policy).
What a request does — register, log in, provision or change a card — is in the services
(:mod:`tsp_backend.services.accounts`, :mod:`tsp_backend.services.wallet`), which take the origin
as a value.

Authentication: ``Authorization: Bearer <session token>`` (API clients, no CSRF token needed),
or the ``hcekit_session`` cookie, in which case every unsafe request (POST, PUT, PATCH,
DELETE) must carry the session's CSRF token in ``X-CSRF-Token`` or a form field ``csrf_token``.
"""

from __future__ import annotations

import functools
import hmac
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from flask import Response, current_app, g, request
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response as BaseResponse

from tsp_backend import metrics
from tsp_backend.config import Config
from tsp_backend.errors import (
    PROBLEM_MEDIA_TYPE,
    BodyTooLarge,
    CSRFFailed,
    IdempotencyInFlight,
    IdempotencyKeyMissing,
    MalformedBody,
    ServiceUnavailable,
    TooManyRequests,
    TSPError,
    Unauthorized,
    ValidationFailed,
)
from tsp_backend.models import User
from tsp_backend.services import audit
from tsp_backend.services.accounts import Accounts
from tsp_backend.services.cards import CardService
from tsp_backend.services.idempotency import IdempotencyService, KeyUse
from tsp_backend.services.networks import NetworkClients
from tsp_backend.services.origin import Origin, record
from tsp_backend.services.provisioning import Provisioner
from tsp_backend.services.sessions import SessionData, SessionManager
from tsp_backend.services.users import UserService
from tsp_backend.services.vault import Vault
from tsp_backend.services.wallet import Wallet
from tsp_backend.stores import Store

SESSION_COOKIE = "hcekit_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRY_AFTER_S = 5
"""``Retry-After`` (seconds) of a 503 answered while the database or the store is unavailable."""

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

    @cached_property
    def accounts(self) -> Accounts:
        """Registration, login and logout with their audit rows."""
        return Accounts(self.users, self.sessions, self.sessions_factory, self.config.admin_emails)

    @cached_property
    def wallet(self) -> Wallet:
        """Audited changes to a holder's cards and devices."""
        return Wallet(self.provisioner, self.cards, self.sessions_factory)


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


def request_origin() -> Origin:
    """The request's :class:`~tsp_backend.services.origin.Origin`, for the services' audit rows."""
    return Origin(request.remote_addr, request.user_agent.string or "", actor())


def audit_row(**fields: Any) -> None:
    """Add an audit row of this request to its session (:func:`tsp_backend.services.origin.record`)."""
    record(db(), request_origin(), **fields)


def origin() -> str:
    """Where the request came from, as the audit log's ``origin`` column."""
    return request_origin().text


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


MAX_BODY_BYTES = 64 * 1024
"""The largest request body the service reads (``MAX_CONTENT_LENGTH`` of the app); 413 above."""

MAX_BODY_DEPTH = 16
"""The deepest nesting of arrays and objects a JSON body may have (the API's bodies need 3)."""

_JSON_STRING = re.compile(rb'"(?:[^"\\]+|\\.)*"')
"""A JSON string literal (its brackets are text, not nesting)."""

_INNERMOST = re.compile(rb"\[\]|\{\}")
"""An array or object with nothing but scalars left inside."""

_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def nested_deeper_than(raw: bytes, limit: int) -> bool:
    """Whether a JSON text nests arrays and objects more than ``limit`` deep — decided without
    parsing it, without recursion, in at most ``limit`` passes of C-speed substitutions (strings
    dropped, then the innermost brackets peeled one level per pass).

    >>> nested_deeper_than(b'{"a": [1, {"b": "[[[["}]}', 3), nested_deeper_than(b'{"a": [1, {"b": 2}]}', 2)
    (False, True)
    >>> nested_deeper_than(b"[" * 1000 + b"]" * 1000, 16), nested_deeper_than(b"7", 0)
    (True, False)
    """
    skeleton = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        if not skeleton:
            return False
        skeleton = _INNERMOST.sub(b"", skeleton)
    return bool(skeleton)


def _refuse_constant(name: str) -> Any:
    raise MalformedBody(f"{name} is not a JSON number (RFC 8259 §6)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedBody(f"the number {text[:20]} is out of range")
    return value


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """One JSON object from a request body, within the service's bounds; ``MalformedBody`` otherwise.

    The bounds are decided before the parser runs: UTF-8 (RFC 8259 §8.1), at most
    :data:`MAX_BODY_DEPTH` levels, no ``NaN``/``Infinity``, numbers that fit a float or have at
    most 4,300 digits, and an object at the top.

    >>> parse_json_object(b'{"amount": 100}')
    {'amount': 100}
    >>> parse_json_object(b"[" * 17 + b"]" * 17)
    Traceback (most recent call last):
    ...
    tsp_backend.errors.MalformedBody: the JSON body is nested deeper than 16 levels
    """
    if nested_deeper_than(raw, MAX_BODY_DEPTH):
        raise MalformedBody(f"the JSON body is nested deeper than {MAX_BODY_DEPTH} levels")
    try:
        text = raw.decode("utf-8")
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except UnicodeDecodeError:
        raise MalformedBody("the body is not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, MalformedBody):
            raise
        raise MalformedBody("the body is not valid JSON (RFC 8259)") from None
    if not isinstance(data, dict):
        raise MalformedBody("the body must be a JSON object")
    return data


def request_json() -> dict[str, Any] | None:
    """The request's JSON body (``None`` if it has none), parsed once within the bounds.

    ``BodyTooLarge`` above :data:`MAX_BODY_BYTES`, ``MalformedBody`` for anything
    :func:`parse_json_object` refuses. Every reader of a body — :func:`body` and the idempotency
    fingerprint — comes here, so no parser ever sees an unbounded body.
    """
    if "json_body" in g:
        cached: dict[str, Any] | None = g.json_body
        return cached
    data: dict[str, Any] | None = None
    if request.is_json:
        if (request.content_length or 0) > MAX_BODY_BYTES:
            raise BodyTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")
        try:
            raw = request.get_data(cache=True)
        except RequestEntityTooLarge:
            raise BodyTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes") from None
        if len(raw) > MAX_BODY_BYTES:
            raise BodyTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")
        data = parse_json_object(raw) if raw.strip() else None
    g.json_body = data
    return data


def body(model: type[M]) -> M:
    """The JSON (or form) body validated by a pydantic model; ``ValidationFailed`` with the errors.

    Models are strict (:class:`tsp_backend.api.schemas.Body`): what the document says, no coercion.
    """
    data: Any = request_json()
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
        raise ValidationFailed(
            "the request body does not match the schema", field=errors[0]["field"], errors=errors
        ) from None


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response."""
    return Response(json.dumps(payload), status=status, mimetype="application/json", headers=headers)


def problem_response(error: TSPError) -> Response:
    """An RFC 9457 problem response for a service error (an Idempotency-Key conflict is counted)."""
    metrics.conflict(error.slug)
    headers = {"Cache-Control": "no-store"}
    if isinstance(error, (TooManyRequests, IdempotencyInFlight)):
        headers["Retry-After"] = "1"
    elif isinstance(error, ServiceUnavailable):
        headers["Retry-After"] = str(RETRY_AFTER_S)
    return Response(
        json.dumps(error.to_problem(instance=request.path)),
        status=error.status,
        mimetype=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def idempotency_key(missing: str | None = None) -> str:
    """The request's ``Idempotency-Key`` header, checked; ``IdempotencyKeyMissing`` (with the
    detail ``missing``, or one naming the route) without it."""
    key = request.headers.get("Idempotency-Key")
    if not key:
        route = f"{request.method} {request.path}"
        raise IdempotencyKeyMissing(missing or f"{route} requires an Idempotency-Key header")
    return services().idempotency.check_key(key)


def key_use(scope: str, route: str, key: str, fingerprint: str) -> KeyUse:
    """The request's use of ``key`` (:class:`~tsp_backend.services.idempotency.KeyUse`)."""
    return KeyUse(services().idempotency, db(), scope, route, key, fingerprint, instance=request.path)


def stored_response(status: int, text: str, *, replayed: bool = True) -> Response:
    """An answer stored under an Idempotency-Key, as sent again (``Idempotent-Replayed: true``)."""
    mimetype = PROBLEM_MEDIA_TYPE if status >= 400 else "application/json"
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return Response(text, status=status, mimetype=mimetype, headers=headers)


def idempotent(view: F) -> F:
    """Require ``Idempotency-Key`` and make the view's effect happen once per key (scope: the user;
    fingerprint: the body and the path's arguments).

    The view must end with :func:`commit_json`; :class:`~tsp_backend.services.idempotency.KeyUse`
    settles refusals and failures.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = idempotency_key()
        user = current_user()
        fingerprint = services().idempotency.fingerprint({"body": request_json(), "args": kwargs})
        route = f"{request.method} {request.url_rule.rule if request.url_rule else request.path}"
        with key_use(f"user:{user.id}", route, key, fingerprint) as use:
            if use.replay is not None:
                return stored_response(use.replay.status, use.replay.body)
            g.key_use = use
            return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def commit_json(payload: Any, status: int = 200) -> Response:
    """Store the response for an idempotent request in the effect's transaction, commit, respond."""
    text = json.dumps(payload)
    use: KeyUse | None = g.get("key_use")
    if use is not None:
        use.complete(status, text)
    db().commit()
    return Response(text, status=status, mimetype="application/json")


def set_session_cookie(response: BaseResponse, token: str) -> None:
    """Carry a new session token in the httpOnly, SameSite=Lax session cookie."""
    cfg = services().config
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=cfg.session_ttl_s,
        httponly=True,
        samesite="Lax",
        secure=cfg.secure_cookies,
        path="/",
    )


def clear_session_cookie(response: BaseResponse) -> None:
    """Tell the browser to forget the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Lax")


def audit_refusal(status: int, slug: str, *, refused: str = "request") -> None:
    """Record a refused request (401/403/404) in its own transaction; a failure to write is logged."""
    try:
        audit.record_now(
            services().sessions_factory,
            actor=actor(),
            action="access.refused",
            target=f"{request.method} {request.path}".replace("\x00", "\\0")[:64],
            outcome=f"{status} {slug}"[:64],
            origin=origin(),
        )
    except Exception:
        current_app.logger.exception("could not write the audit row of a refused %s", refused)
