"""Helpers of the token-service tests: a logged-in wallet, device keys, test configurations."""

from __future__ import annotations

import base64
import itertools
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient

from cryptogram.sealing import open_sealed, point_bytes
from tsp_backend.config import Config

PASSWORD = "correct horse battery"

FAST = {
    "argon2_time_cost": 1,
    "argon2_memory_kib": 8192,
    "dev_mode": True,
    "register_rate_limit": "1000 per minute",
}
"""Cheap password hashing and room for many test users per address (both are configuration)."""

_TABLES = (
    "audit_events, idempotency_keys, used_atcs, key_batches, transactions, cards, "
    "vault_entries, api_keys, devices, users"
)


@dataclass
class Servers:
    """The real PostgreSQL and Redis of the session."""

    database_url: str
    redis_url: str
    redis: Any
    pg: Any


def make_config(backend: str, tmp_path: Path, request: pytest.FixtureRequest, **overrides: Any) -> Config:
    """A test configuration for ``backend`` with fast hashing and dev mode."""
    values = {**FAST, **overrides}
    if backend == "postgres":
        servers: Servers = request.getfixturevalue("servers")
        values.setdefault("database_url", servers.database_url)
        values.setdefault("redis_url", servers.redis_url)
        reset_postgres(servers)
    return Config.embedded(tmp_path / "instance", **values)


def reset_postgres(servers: Servers) -> None:
    """Empty every table and flush Redis between tests."""
    from sqlalchemy import inspect, text

    from tsp_backend.db import make_engine

    engine = make_engine(servers.database_url)
    try:
        if "users" in inspect(engine).get_table_names():
            with engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()
    servers.redis.flushdb()


def dispose(app: Flask) -> None:
    """Close an app's database pool."""
    app.extensions["hcekit"].engine.dispose()


def transaction_count(app: Flask) -> int:
    """How many transaction rows ``app``'s database holds."""
    from sqlalchemy import func, select

    from tsp_backend.models import Transaction

    with app.extensions["hcekit"].sessions_factory() as session:
        return int(session.scalar(select(func.count()).select_from(Transaction)) or 0)


_emails = itertools.count(1)


@dataclass
class Wallet:
    """A registered, logged-in user with one device, talking to the API with a bearer token."""

    client: FlaskClient
    email: str
    token: str
    user_id: int
    device_id: int
    device_key: ec.EllipticCurvePrivateKey
    csrf: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        """The bearer header."""
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str) -> Any:
        """GET with the bearer token."""
        return self.client.get(path, headers=self.headers)

    def post(self, path: str, json: Any = None, key: str | None = None) -> Any:
        """POST with the bearer token (and an Idempotency-Key when given)."""
        headers = dict(self.headers)
        if key:
            headers["Idempotency-Key"] = key
        return self.client.post(path, json=json, headers=headers)

    def put(self, path: str) -> Any:
        """PUT with the bearer token."""
        return self.client.put(path, headers=self.headers)

    def delete(self, path: str) -> Any:
        """DELETE with the bearer token."""
        return self.client.delete(path, headers=self.headers)

    def provision(
        self,
        pan: str = "4111111111111111",
        *,
        expiry: str = "12/30",
        cvv: str | None = None,
        key: str | None = None,
        device_id: int | None = None,
    ) -> Any:
        """POST /api/cards with a fresh Idempotency-Key."""
        if cvv is None:
            cvv = "1234" if pan.startswith("3") else "123"
        body = {"pan": pan, "expiry": expiry, "cvv": cvv, "deviceId": device_id or self.device_id}
        return self.post("/api/cards", body, key=key or str(uuid.uuid4()))

    def open(self, envelope: dict[str, str]) -> dict[str, Any]:
        """Open a sealed envelope with the device key."""
        return open_sealed(self.device_key, envelope)

    def outbox_code(self, card_id: int) -> str:
        """The newest one-time code sent for a card."""
        messages = self.get("/api/dev/outbox").get_json()
        return str(next(m["code"] for m in messages if m["cardId"] == card_id))


def new_device_key() -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A P-256 key pair and its public point in base64."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key, base64.b64encode(point_bytes(key.public_key())).decode()


def make_wallet(client: FlaskClient, email: str | None = None) -> Wallet:
    """Register, log in and register a device."""
    email = email or f"user{next(_emails)}@example.com"
    assert client.post("/api/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
    login = client.post("/api/auth/login", json={"email": email, "password": PASSWORD}).get_json()
    key, public = new_device_key()
    headers = {"Authorization": f"Bearer {login['token']}"}
    device = client.post("/api/devices", json={"name": "phone", "publicKey": public}, headers=headers)
    assert device.status_code == 201, device.get_json()
    client.delete_cookie("hcekit_session")
    return Wallet(
        client, email, login["token"], login["user"]["id"], device.get_json()["id"], key, login["csrfToken"]
    )
