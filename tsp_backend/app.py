"""The application factory: ``create_app(config=None)``.

The factory builds the engine (and runs ``alembic upgrade head`` when ``auto_migrate``), the
store (Redis or in process), the vault, the network clients with their breakers, the services,
the rate limiter, the blueprints and ``/metrics`` (:mod:`tsp_backend.metrics`), and turns every
error into an RFC 9457 problem. Request bodies are never logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import HTTPException

from tsp_backend import jsonlog, metrics, web
from tsp_backend.api import (
    auth,
    cards,
    crosssite,
    dev,
    devices,
    issuer_actions,
    meta,
    payments,
    terminals,
    transactions,
)
from tsp_backend.api.http import (
    MAX_BODY_BYTES,
    Services,
    audit_refusal,
    problem_response,
    request_token,
)
from tsp_backend.config import Config
from tsp_backend.db import make_engine, make_sessionmaker, upgrade
from tsp_backend.errors import PROBLEM_MEDIA_TYPE, TSPError, http_problem
from tsp_backend.outages import end_failed_request, roll_back_request
from tsp_backend.services.cards import CardService
from tsp_backend.services.idempotency import IdempotencyService
from tsp_backend.services.networks import NetworkClients
from tsp_backend.services.provisioning import Provisioner
from tsp_backend.services.sessions import SessionManager
from tsp_backend.services.users import HashSlots, UserService, default_hash_concurrency, make_hasher
from tsp_backend.services.vault import Vault, derive_subkey
from tsp_backend.stores import RedisStore, open_store

log = logging.getLogger("tsp_backend")


#: endpoint -> the Config field holding its rate limit
RATE_LIMITED: dict[str, str] = {
    "auth.login": "login_rate_limit",
    "auth.register": "register_rate_limit",
    "cards.create_card": "provision_rate_limit",
    "cards.verify_card": "verify_rate_limit",
    "web.login": "login_rate_limit",
    "web.register": "register_rate_limit",
    "web.add_card": "provision_rate_limit",
    "web.verify_card": "verify_rate_limit",
}

#: endpoints limited per client address even for a signed-in caller (anonymous by nature)
PER_ADDRESS = frozenset({"auth.login", "auth.register", "web.register"})

#: status -> (problem slug, title) for HTTP errors raised outside the services
_HTTP_SLUGS: dict[int, tuple[str, str]] = {
    413: ("body-too-large", "Request body too large"),
    429: ("rate-limited", "Too many requests"),
}

#: refusals written to the audit log by the error handler
_AUDITED_REFUSALS = frozenset({401, 403, 404})


def build_services(config: Config) -> Services:
    """Every long-lived object of the service, without Flask."""
    engine = make_engine(config.database_url)
    if config.auto_migrate:
        upgrade(engine)
    factory = make_sessionmaker(engine)
    store = open_store(config.redis_url)
    redis_client = store.client if isinstance(store, RedisStore) else None
    vault = Vault(config.vault_keys, derive_subkey(config.secret_key, "pan-fingerprint"))
    networks = NetworkClients(
        latency_s=config.network_latency_s,
        error_rate=config.network_error_rate,
        fail_max=config.breaker_fail_max,
        reset_timeout=config.breaker_reset_s,
        redis_client=redis_client,
        network_urls=config.extra.get("network_urls"),
        auth_timeout_s=config.extra.get("network_timeout_s"),
        issuer_account_secret=derive_subkey(config.secret_key, "issuer-accounts"),
    )
    sessions = SessionManager(store, config.session_ttl_s)
    provisioner = Provisioner(config, store, vault, networks)
    return Services(
        config=config,
        engine=engine,
        sessions_factory=factory,
        store=store,
        vault=vault,
        networks=networks,
        users=UserService(
            make_hasher(config.argon2_time_cost, config.argon2_memory_kib),
            HashSlots(config.argon2_concurrency or default_hash_concurrency(), config.argon2_wait_s),
        ),
        sessions=sessions,
        provisioner=provisioner,
        cards=CardService(provisioner, sessions, config.card_cache_ttl_s),
        idempotency=IdempotencyService(
            factory,
            derive_subkey(config.secret_key, "idempotency"),
            ttl_s=config.idempotency_ttl_s,
            lease_s=config.request_deadline_s,
        ),
    )


def create_app(config: Config | Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask application.

    ``config`` is a :class:`Config`, a mapping of :class:`Config` field overrides applied to the
    environment's configuration, or ``None`` for the environment alone.
    """
    if config is None:
        cfg = Config.from_env()
    elif isinstance(config, Config):
        cfg = config
    else:
        cfg = Config.from_env(**dict(config))
    jsonlog.install_from_env()
    app = Flask("tsp_backend")
    app.config.update(
        SECRET_KEY=cfg.secret_key,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        RATELIMIT_ENABLED=cfg.ratelimit_enabled,
        RATELIMIT_HEADERS_ENABLED=True,
    )
    svc = build_services(cfg)
    app.extensions["hcekit"] = svc
    crosssite.init_app(app)

    for blueprint in (auth.bp, devices.bp, cards.bp, terminals.bp, meta.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(payments.bp)
    app.register_blueprint(transactions.bp)
    app.register_blueprint(issuer_actions.bp)
    payments.init_app(app, svc)
    if cfg.dev_mode:
        app.register_blueprint(dev.bp)
    web.init_app(app)
    metrics.init_app(app, svc)

    _install_limiter(app, cfg, svc)
    _install_error_handlers(app)

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db", None)
        if session is not None:
            session.close()

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app


def _install_limiter(app: Flask, cfg: Config, svc: Services) -> None:
    storage = "memory://"
    if cfg.redis_url:
        storage = (
            cfg.redis_url.replace("unix://", "redis+unix://", 1)
            if cfg.redis_url.startswith("unix://")
            else cfg.redis_url
        )

    def client_key() -> str:
        token, _ = request_token()
        data = svc.sessions.get(token) if token else None
        return f"user:{data.user_id}" if data else f"ip:{get_remote_address()}"

    limiter = Limiter(
        client_key, app=app, storage_uri=storage, key_prefix="hcekit-rl", strategy="fixed-window"
    )
    # Every limit of the service is a route's own (the decorator below checks it when the view
    # runs): the extension's before-request check of every other request — every authorization
    # among them — finds nothing to do and costs a few per cent of a worker's CPU.
    hooks = app.before_request_funcs.get(None, [])
    if limiter._check_request_limit in hooks:  # absent when rate limiting is off
        hooks.remove(limiter._check_request_limit)
    for endpoint, field in RATE_LIMITED.items():
        limit = getattr(cfg, field)
        key_func = (lambda: f"ip:{get_remote_address()}") if endpoint in PER_ADDRESS else client_key
        app.view_functions[endpoint] = limiter.limit(limit, key_func=key_func)(app.view_functions[endpoint])  # type: ignore[assignment]
    app.extensions["hcekit_limiter"] = limiter


def _install_error_handlers(app: Flask) -> None:
    @app.errorhandler(TSPError)
    def _service_error(error: TSPError) -> Response:
        roll_back_request()
        if error.status in _AUDITED_REFUSALS:
            audit_refusal(error.status, error.slug)
        return problem_response(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        slug, title = _HTTP_SLUGS.get(status, (None, error.name or None))
        detail = error.description or error.name or "error"
        if status == 429:
            detail = f"rate limit exceeded ({error.description}); retry later"
        body = http_problem(status, detail, slug=slug, title=title)
        body["instance"] = request.path
        response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MEDIA_TYPE)
        for name, value in error.get_headers():
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        mapped = end_failed_request(error)
        if mapped is not None:
            log.warning(
                "%s unavailable on %s %s: %s",
                mapped.extensions["dependency"],
                request.method,
                request.path,
                type(error).__name__,
            )
            return problem_response(mapped)
        log.error("unhandled %s on %s %s", type(error).__name__, request.method, request.path)
        body = http_problem(
            500,
            "an unexpected error occurred; it has been logged",
            slug="internal-error",
            title="Internal error",
        )
        return Response(json.dumps(body), status=500, mimetype=PROBLEM_MEDIA_TYPE)
