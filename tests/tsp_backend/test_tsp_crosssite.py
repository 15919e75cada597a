"""Cross-site requests and non-JSON bodies are refused on every state-changing route."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.tsp_backend.test_tsp_web import csrf_of, sign_up
from tests.tsp_backend.tsp_helpers import PASSWORD, make_wallet
from tests.tsp_backend.tsp_pay_helpers import terminal_key
from tsp_backend.models import AuditEvent, User

PROBLEMS = "https://hcekit.dev/problems/"
EVIL = "http://attacker.example"
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


def _unsafe_routes(app: Flask, prefix: str) -> list[tuple[str, str]]:
    """Every (method, concrete path) under ``prefix`` that changes state."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(prefix):
            continue
        path = _CONVERTER.sub(lambda m: "1" if m.group(1) == "int" else "x", rule.rule)
        found += [(method, path) for method in sorted(rule.methods or ()) if method in UNSAFE]
    return found


def _problem(response: Any, status: int, slug: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["type"] == PROBLEMS + slug


def _users(app: Flask) -> int:
    with app.extensions["hcekit"].sessions_factory() as session:
        return int(session.scalar(select(func.count()).select_from(User)) or 0)


def test_login_csrf_form_is_refused(app: Flask, client: FlaskClient) -> None:
    """A cross-site url-encoded login or registration form opens no session and creates no account."""
    make_wallet(client, "victim-to-be@example.com")
    form = {"email": "attacker@example.com", "password": PASSWORD}
    before = _users(app)
    for path in ("/api/auth/register", "/api/auth/login"):
        with_origin = client.post(path, data=form, headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"})
        _problem(with_origin, 403, "cross-site-request")
        bare = client.post(path, data=form)
        _problem(bare, 415, "unsupported-media-type")
        assert "Set-Cookie" not in bare.headers and "Set-Cookie" not in with_origin.headers
    assert _users(app) == before


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL},
        {"Origin": "null"},
        {"Origin": "http://localhost:1"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
    ids=["foreign-origin", "null-origin", "other-port", "fetch-cross-site", "fetch-same-site"],
)
def test_cross_site_json_is_refused(client: FlaskClient, headers: dict[str, str]) -> None:
    """Even a JSON body is refused when another site's page sent it."""
    client.post("/api/auth/register", json={"email": "x@example.com", "password": PASSWORD})
    response = client.post(
        "/api/auth/login", json={"email": "x@example.com", "password": PASSWORD}, headers=headers
    )
    _problem(response, 403, "cross-site-request")


def test_same_origin_and_non_browser_requests_pass(client: FlaskClient) -> None:
    """The service's own origin, Sec-Fetch-Site same-origin/none and header-less clients go through."""
    client.post("/api/auth/register", json={"email": "y@example.com", "password": PASSWORD})
    body = {"email": "y@example.com", "password": PASSWORD}
    for headers in (
        {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        {},
    ):
        assert client.post("/api/auth/login", json=body, headers=headers).status_code == 200


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"],
)
def test_json_api_takes_json_only(client: FlaskClient, content_type: str) -> None:
    """A body of another media type is 415 problem+json, before any effect."""
    response = client.post(
        "/api/auth/register",
        data='{"email": "z@example.com", "password": "correct horse battery"}',
        headers={"Content-Type": content_type},
    )
    _problem(response, 415, "unsupported-media-type")
    assert response.get_json()["accepted"] == ["application/json"]
    login = client.post("/api/auth/login", json={"email": "z@example.com", "password": PASSWORD})
    assert login.status_code == 401


def test_every_unsafe_api_route_is_covered(app: Flask, client: FlaskClient) -> None:
    """Each POST/PUT/PATCH/DELETE under /api/ refuses a foreign Origin (403) and a form body (415)."""
    wallet = make_wallet(client)
    routes = _unsafe_routes(app, "/api/")
    assert ("POST", "/api/auth/login") in routes and ("POST", "/api/authorize") in routes
    assert len(routes) >= 15
    for method, path in routes:
        foreign = client.open(path, method=method, json={}, headers={**wallet.headers, "Origin": EVIL})
        _problem(foreign, 403, "cross-site-request")
        form = client.open(path, method=method, data={"a": "b"}, headers=wallet.headers)
        _problem(form, 415, "unsupported-media-type")


def test_terminal_requests_carry_no_origin_and_pass(client: FlaskClient) -> None:
    """A terminal's bearer request (no Origin, no Sec-Fetch-Site) reaches the authorizer."""
    wallet = make_wallet(client)
    key = terminal_key(wallet)
    response = client.post(
        "/api/authorize",
        json={"emv": "9F2608", "amount": 100, "currency": "EUR"},
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "k-terminal-1"},
    )
    assert response.status_code not in (403, 415), response.get_json()


def test_every_wallet_form_needs_its_csrf_token(app: Flask, client: FlaskClient) -> None:
    """Each POST under /wallet/ without a CSRF token is refused (403), signed in or not; the
    payment sheet's JSON endpoints refuse a form body (415) and a JSON one without the token (403)."""
    sign_up(client)
    routes = _unsafe_routes(app, "/wallet/")
    assert ("POST", "/wallet/login") in routes and ("POST", "/wallet/register") in routes
    for method, path in routes:
        response = client.open(path, method=method, data={"email": "a@example.com", "password": PASSWORD})
        if response.status_code == 415:  # the sheet's JSON endpoints: the same request as JSON
            response = client.open(path, method=method, json={"cardId": 1})
        assert response.status_code == 403, (method, path, response.status_code)


def test_wallet_forms_refuse_a_foreign_origin_even_with_a_token(app: Flask, client: FlaskClient) -> None:
    """The web login form with a valid token but a foreign Origin is refused and logs nobody in."""
    client.post("/api/auth/register", json={"email": "w@example.com", "password": PASSWORD})
    page = client.get("/wallet/login")
    response = client.post(
        "/wallet/login",
        data={"csrf_token": csrf_of(page), "email": "w@example.com", "password": PASSWORD},
        headers={"Origin": EVIL},
    )
    assert response.status_code == 403
    assert "hcekit_session" not in response.headers.get("Set-Cookie", "")
    with app.extensions["hcekit"].sessions_factory() as session:
        logins = session.scalar(
            select(func.count()).select_from(AuditEvent).where(
                AuditEvent.action == "user.login", AuditEvent.outcome == "success"
            )
        )
    assert logins == 0
