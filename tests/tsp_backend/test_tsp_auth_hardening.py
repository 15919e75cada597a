"""Sign-in on a lost device, terminal key revocation across workers, registration limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.tsp_backend.tsp_helpers import PASSWORD, Servers, dispose, make_config, make_wallet
from tsp_backend.app import create_app
from tsp_backend.models import AuditEvent

PROBLEMS = "https://hcekit.dev/problems/"
_TAP = {"emv": "9F02060000000001009F2608", "amount": 100, "currency": "EUR"}


def _authorize(client: FlaskClient, api_key: str, idem: str) -> Any:
    return client.post(
        "/api/authorize",
        json=_TAP,
        headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": idem},
    )


def test_login_with_a_lost_device_is_refused(app: Flask, client: FlaskClient) -> None:
    """deviceId of a device marked lost: 409 device-lost, no session, a refused audit row."""
    wallet = make_wallet(client)
    credentials = {"email": wallet.email, "password": PASSWORD}
    bound = client.post("/api/auth/login", json={**credentials, "deviceId": wallet.device_id})
    assert bound.status_code == 200
    assert wallet.post(f"/api/devices/{wallet.device_id}/lost").status_code == 200
    again = client.post("/api/auth/login", json={**credentials, "deviceId": wallet.device_id})
    assert again.status_code == 409, again.get_json()
    assert again.mimetype == "application/problem+json"
    assert again.get_json()["type"] == PROBLEMS + "device-lost"
    assert "Set-Cookie" not in again.headers and "token" not in again.get_json()
    with app.extensions["hcekit"].sessions_factory() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.login")).all()
    refusal = rows[-1]
    assert refusal.outcome == "refused" and "device_lost" in json.dumps(refusal.detail)
    assert client.post("/api/auth/login", json=credentials).status_code == 200


def test_terminal_key_revocation(client: FlaskClient) -> None:
    """The creator revokes a key (200, no secret in the answer); the next tap is 401; others get 404."""
    owner, other = make_wallet(client), make_wallet(client)
    key, key_id = new_key(owner)
    assert _authorize(client, key, "r-1").status_code != 401
    assert other.delete(f"/api/terminals/{key_id}").status_code == 404
    assert other.delete("/api/terminals/999999").status_code == 404
    revoked = owner.delete(f"/api/terminals/{key_id}")
    assert revoked.status_code == 200, revoked.get_json()
    doc = revoked.get_json()
    assert doc["id"] == key_id and doc["revokedAt"] and key not in json.dumps(doc)
    refused = _authorize(client, key, "r-2")
    assert refused.status_code == 401 and refused.get_json()["type"] == PROBLEMS + "unauthorized"
    assert owner.delete(f"/api/terminals/{key_id}").get_json()["revokedAt"] == doc["revokedAt"]


def new_key(wallet: Any) -> tuple[str, int]:
    """A new terminal API key and its id."""
    created = wallet.post("/api/terminals", {"name": "T-revocable"})
    assert created.status_code == 201, created.get_json()
    return str(created.get_json()["apiKey"]), int(created.get_json()["id"])


@pytest.fixture
def two_workers(
    servers: Servers, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Flask, Flask]]:
    """Two application instances (two workers) on one PostgreSQL and one Redis."""
    config = make_config("postgres", tmp_path, request)
    first, second = create_app(config), create_app(config)
    yield first, second
    dispose(first)
    dispose(second)


@pytest.mark.integration
def test_revocation_is_seen_at_once_by_another_worker(two_workers: tuple[Flask, Flask]) -> None:
    """Worker B remembers a key it authenticated; revoked through worker A, B refuses it at once."""
    a, b = (app.test_client() for app in two_workers)
    owner = make_wallet(a)
    key, key_id = new_key(owner)
    assert _authorize(b, key, "w-1").status_code != 401
    assert _authorize(b, key, "w-2").status_code != 401
    assert owner.delete(f"/api/terminals/{key_id}").status_code == 200
    assert _authorize(b, key, "w-3").status_code == 401
    assert _authorize(a, key, "w-4").status_code == 401
