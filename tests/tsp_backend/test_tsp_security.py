"""Security properties: isolation between users, no PAN/CVV anywhere, sessions, CSRF, rate limits."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from tests.tsp_backend.tsp_helpers import PASSWORD, Wallet, dispose, make_config, make_wallet
from tsp_backend.app import create_app
from tsp_backend.models import Base

PROBLEMS = "https://hcekit.dev/problems/"


def test_second_user_gets_404_on_every_route(client: FlaskClient) -> None:
    """Every route touching another user's card or device answers 404, never 403 or data."""
    alice, mallory = make_wallet(client), make_wallet(client)
    card = alice.provision().get_json()["card"]["id"]
    pending = alice.provision("4012888888881881").get_json()["card"]["id"]
    device = alice.device_id
    attempts = [
        ("GET", f"/api/cards/{card}", None),
        ("DELETE", f"/api/cards/{card}", None),
        ("POST", f"/api/cards/{card}/suspend", {"reason": "CUSTOMER_REQUEST"}),
        ("POST", f"/api/cards/{card}/reactivate", {"reason": "CUSTOMER_REQUEST"}),
        ("PUT", f"/api/cards/{card}/default", None),
        ("POST", f"/api/cards/{card}/keys", None),
        ("POST", f"/api/cards/{pending}/verify", {"code": "123456"}),
        ("POST", f"/api/cards/{pending}/verify", {"method": "otp_sms"}),
        ("GET", f"/api/devices/{device}", None),
        ("POST", f"/api/devices/{device}/lost", None),
    ]
    for method, path, body in attempts:
        response = client.open(path, method=method, json=body, headers=mallory.headers)
        assert response.status_code == 404, (method, path, response.get_json())
        assert response.get_json()["type"] == PROBLEMS + "not-found"
    provision = mallory.provision(device_id=device)
    assert provision.status_code == 404
    assert mallory.get("/api/cards").get_json()["items"] == []
    assert alice.get(f"/api/cards/{card}").get_json()["status"] == "ACTIVE"


def _all_values(app: Flask) -> list[str]:
    engine = app.extensions["hcekit"].engine
    values = []
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(text(f"SELECT * FROM {table.name}")):
                for value in row:
                    values.append(value.decode("latin-1") if isinstance(value, bytes) else str(value))
                    if isinstance(value, bytes):
                        values.append(value.hex())
    return values


@pytest.mark.parametrize("pan", ["4111111111111111", "4012888888881881", "4000000000000002"])
def test_pan_and_cvv_never_in_logs_responses_or_rows(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture, pan: str
) -> None:
    """After a provisioning run, no log line, response or database row holds the PAN or CVV."""
    caplog.set_level(logging.DEBUG)
    wallet = make_wallet(client)
    cvv = "987"
    responses = [wallet.provision(pan, cvv=cvv, key="same"), wallet.provision(pan, cvv=cvv, key="same")]
    card = responses[0].get_json().get("card")
    if card and card["status"] == "INACTIVE":
        responses.append(
            wallet.post(f"/api/cards/{card['id']}/verify", {"code": wallet.outbox_code(card["id"])})
        )
    if card:
        responses.append(wallet.post(f"/api/cards/{card['id']}/keys"))
    responses += [wallet.get("/api/cards"), wallet.get("/api/me"), wallet.provision(pan, cvv="12")]
    responses.append(wallet.get("/api/dev/outbox"))
    for blob in [r.get_data(as_text=True) for r in responses] + [caplog.text]:
        assert pan not in blob
        assert '"cvv": "' not in blob.lower() and f'"{cvv}"' not in blob
    assert not re.search(rf"(?<!\d){cvv}(?!\d)", caplog.text)
    values = _all_values(app)
    assert not any(pan in value for value in values)
    assert cvv not in values and not any('"cvv": "' in value.lower() for value in values)


def test_session_cookie_flags_and_rotation(client: FlaskClient) -> None:
    """Login sets an httpOnly SameSite=Lax cookie, and a new login revokes the old session."""
    make_wallet(client, "cookie@example.com")
    first = client.post("/api/auth/login", json={"email": "cookie@example.com", "password": PASSWORD})
    cookie = first.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    old_token = first.get_json()["token"]
    second = client.post("/api/auth/login", json={"email": "cookie@example.com", "password": PASSWORD})
    assert second.get_json()["token"] != old_token
    assert client.get("/api/me", headers={"Authorization": f"Bearer {old_token}"}).status_code == 401


def test_cookie_requests_need_the_csrf_token(client: FlaskClient) -> None:
    """A cookie-authenticated POST without X-CSRF-Token is refused; with it, it passes."""
    make_wallet(client, "csrf@example.com")
    login = client.post(
        "/api/auth/login", json={"email": "csrf@example.com", "password": PASSWORD}
    ).get_json()
    assert client.get("/api/me").status_code == 200
    refused = client.post("/api/devices", json={"publicKey": "x"})
    assert refused.status_code == 403 and refused.get_json()["type"] == PROBLEMS + "csrf-failed"
    accepted = client.post("/api/auth/logout", headers={"X-CSRF-Token": login["csrfToken"]})
    assert accepted.status_code == 204
    assert client.get("/api/me").status_code == 401


def test_logout_revokes_bearer_session(wallet: Wallet) -> None:
    """After logout the bearer token is dead."""
    assert wallet.post("/api/auth/logout").status_code == 204
    assert wallet.get("/api/me").status_code == 401


def test_wrong_password_and_unknown_user_look_the_same(client: FlaskClient) -> None:
    """Login failures are one invalid-credentials problem whatever was wrong."""
    make_wallet(client, "known@example.com")
    wrong = client.post("/api/auth/login", json={"email": "known@example.com", "password": "nope-nope"})
    unknown = client.post("/api/auth/login", json={"email": "ghost@example.com", "password": "nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json()["detail"] == unknown.get_json()["detail"]


def test_audit_log_records_logins_provisioning_and_refusals(app: Flask, client: FlaskClient) -> None:
    """Logins, provisioning, lifecycle and refused access each leave an audit row with an origin."""
    alice, mallory = make_wallet(client), make_wallet(client)
    card = alice.provision().get_json()["card"]["id"]
    alice.post(f"/api/cards/{card}/suspend", {"reason": "CUSTOMER_REQUEST"})
    mallory.get(f"/api/cards/{card}")
    client.post("/api/auth/login", json={"email": alice.email, "password": "wrong-password"})
    with app.extensions["hcekit"].engine.connect() as conn:
        rows = conn.execute(text("SELECT actor, action, outcome, origin FROM audit_events")).all()
    actions = {(r.action, r.outcome) for r in rows}
    assert ("card.provision", "green") in actions and ("card.suspend", "success") in actions
    assert ("user.login", "success") in actions and ("user.login", "refused") in actions
    assert any(r.action == "access.refused" and r.actor == f"user:{mallory.user_id}" for r in rows)
    assert all(r.origin for r in rows)


@pytest.mark.parametrize(
    ("field", "endpoint"),
    [
        ("login_rate_limit", "login"),
        ("provision_rate_limit", "provision"),
        ("verify_rate_limit", "verify"),
    ],
)
def test_rate_limits(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, field: str, endpoint: str
) -> None:
    """Login, provisioning and one-time codes are rate limited (429 rate-limited problem)."""
    application = create_app(make_config(backend, tmp_path, request, **{field: "3 per hour"}))
    try:
        client = application.test_client()
        wallet = make_wallet(client)
        card = wallet.provision("4012888888881881").get_json()["card"]["id"] if endpoint == "verify" else 0
        statuses = []
        for _ in range(5):
            if endpoint == "login":
                response = client.post(
                    "/api/auth/login", json={"email": wallet.email, "password": "bad-pass"}
                )
            elif endpoint == "provision":
                response = wallet.provision("4000000000000002")
            else:
                response = wallet.post(f"/api/cards/{card}/verify", {"method": "otp_sms"})
            statuses.append(response.status_code)
        assert statuses[-1] == 429
        assert response.get_json()["type"] == PROBLEMS + "rate-limited"
        assert response.content_type == "application/problem+json"
    finally:
        dispose(application)
