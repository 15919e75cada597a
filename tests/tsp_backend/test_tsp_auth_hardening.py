"""Sign-in on a lost device, terminal key revocation across workers, registration and hashing limits."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.tsp_backend.tsp_helpers import PASSWORD, Servers, dispose, make_config, make_wallet
from tsp_backend.app import create_app
from tsp_backend.errors import HashingBusy
from tsp_backend.models import AuditEvent
from tsp_backend.services.users import HashSlots, UserService

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


def test_registration_is_rate_limited_per_address(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The fourth registration in a minute from one address is 429 problem+json with Retry-After."""
    app = create_app(make_config(backend, tmp_path, request, register_rate_limit="3 per minute"))
    try:
        client = app.test_client()
        statuses = [
            client.post("/api/auth/register", json={"email": f"r{i}@example.com", "password": PASSWORD})
            for i in range(4)
        ]
        assert [r.status_code for r in statuses] == [201, 201, 201, 429]
        limited = statuses[-1]
        assert limited.mimetype == "application/problem+json"
        assert limited.get_json()["type"] == PROBLEMS + "rate-limited"
        assert int(limited.headers["Retry-After"]) > 0
        other = client.post(
            "/api/auth/register",
            json={"email": "r9@example.com", "password": PASSWORD},
            environ_base={"REMOTE_ADDR": "192.0.2.7"},
        )
        assert other.status_code == 201
    finally:
        dispose(app)


class GatedHasher(PasswordHasher):
    """A real Argon2id hasher that counts the hashes inside it and holds them until the gate opens."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8192, parallelism=1)
        self.changed = threading.Condition()
        self.inside = 0
        self.most = 0
        self.gate = threading.Event()
        self.gate.set()

    def close_gate(self) -> None:
        """Hold every hash from now on until :attr:`gate` is set; count afresh."""
        self.gate.clear()
        self.most = 0

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        """Count the entry, wait for the gate, hash."""
        with self.changed:
            self.inside += 1
            self.most = max(self.most, self.inside)
            self.changed.notify_all()
        try:
            self.gate.wait()
            return super().hash(password, salt=salt)
        finally:
            with self.changed:
                self.inside -= 1
                self.changed.notify_all()


def _hash_in_threads(users: UserService, count: int) -> tuple[list[threading.Thread], list[str]]:
    outcomes: list[str] = []

    def work() -> None:
        try:
            users.hash_password(PASSWORD)
            outcomes.append("hashed")
        except HashingBusy:
            outcomes.append("busy")

    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, outcomes


def test_hash_slots_bound_concurrent_hashes() -> None:
    """With 2 slots and no wait, 8 simultaneous hashes: exactly 2 run, 6 are refused busy."""
    hasher = GatedHasher()
    users = UserService(hasher, HashSlots(2, 0))
    hasher.close_gate()
    threads, outcomes = _hash_in_threads(users, 8)
    with hasher.changed:
        assert hasher.changed.wait_for(lambda: hasher.inside + outcomes.count("busy") == 8, timeout=60)
        assert hasher.inside == 2
    hasher.gate.set()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["busy"] * 6 + ["hashed"] * 2
    assert hasher.most == 2


def test_hash_slots_queue_waiters() -> None:
    """With 2 slots and a long wait, 8 hashes all finish, never more than 2 at once."""
    hasher = GatedHasher()
    users = UserService(hasher, HashSlots(2, 600))
    hasher.close_gate()
    threads, outcomes = _hash_in_threads(users, 8)
    with hasher.changed:
        assert hasher.changed.wait_for(lambda: hasher.inside == 2, timeout=60)
    hasher.gate.set()
    for thread in threads:
        thread.join()
    assert outcomes == ["hashed"] * 8
    assert hasher.most == 2


def test_register_answers_429_when_every_hashing_slot_is_busy(client: FlaskClient, app: Flask) -> None:
    """All slots busy past the wait: registration and login are 429 password-hashing-busy, Retry-After."""
    users: UserService = app.extensions["hcekit"].users
    users.slots = HashSlots(1, 0)
    body = {"email": "busy@example.com", "password": PASSWORD}
    with users.slots.slot():
        busy = client.post("/api/auth/register", json=body)
        assert busy.status_code == 429, busy.get_json()
        assert busy.get_json()["type"] == PROBLEMS + "password-hashing-busy"
        assert int(busy.headers["Retry-After"]) >= 1
    assert client.post("/api/auth/register", json=body).status_code == 201
    with users.slots.slot():
        assert client.post("/api/auth/login", json=body).status_code == 429
    assert client.post("/api/auth/login", json=body).status_code == 200


def test_remembered_keys_ask_the_database_once_per_period(app: Flask, wallet: Any) -> None:
    """A remembered key is served from memory until API_KEY_CACHE_S passes; the marker still
    refuses it at once, and after the period the database's ``revoked_at`` does."""
    from sqlalchemy import event

    from tsp_backend.services.terminals import API_KEY_CACHE_S, RememberedKeys, revoke_api_key
    from tsp_backend.stores import MemoryStore

    key, key_id = new_key(wallet)
    svc = app.extensions["hcekit"]
    now = [1000.0]
    store = MemoryStore()
    keys = RememberedKeys(store, clock=lambda: now[0])
    selects: list[str] = []
    event.listen(svc.engine, "before_cursor_execute",
                 lambda *a: selects.append(a[2]) if "api_keys" in a[2] else None)
    with svc.sessions_factory() as session:
        assert keys.live(session, key) == key_id
        assert keys.live(session, key) == key_id
        assert len(selects) == 1
        assert keys.live(session, "hk_" + "x" * 43) is None
        revoke_api_key(session, store, key_id, user_id=0, admin=True)
        session.commit()
        assert keys.live(session, key) is None            # the marker, at once
        store.delete(f"apikey_revoked:{key_id}")            # the marker gone (expired)
        now[0] += API_KEY_CACHE_S + 1
        assert keys.live(session, key) is None            # the row's revoked_at
