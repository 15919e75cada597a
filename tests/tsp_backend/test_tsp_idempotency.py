"""Idempotency-Key semantics (IETF draft and Stripe), and 20 parallel requests with one key."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections import Counter

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.serving import make_server

from tests.tsp_backend.tsp_helpers import PASSWORD, Wallet, make_wallet
from tsp_backend.errors import (
    IdempotencyInFlight,
    IdempotencyKeyReused,
    NetworkUnavailable,
    NotFound,
    ProvisioningDeclined,
    TooManyRequests,
    TSPError,
    ValidationFailed,
)
from tsp_backend.models import Card, IdempotencyKey
from tsp_backend.services.idempotency import Claim, IdempotencyService, KeyUse, Replay

PROBLEMS = "https://hcekit.dev/problems/"


def test_missing_key_is_400(wallet: Wallet) -> None:
    """POST /api/cards without Idempotency-Key is idempotency-key-missing."""
    body = {"pan": "4111111111111111", "expiry": "12/30", "cvv": "123", "deviceId": wallet.device_id}
    response = wallet.post("/api/cards", body)
    assert response.status_code == 400
    assert response.get_json()["type"] == PROBLEMS + "idempotency-key-missing"


def test_replay_returns_first_status_and_body(wallet: Wallet) -> None:
    """The same key and body replay the first response with Idempotent-Replayed: true."""
    first = wallet.provision(key="k-1")
    second = wallet.provision(key="k-1")
    assert second.status_code == first.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.get_data() == first.get_data()
    assert len(wallet.get("/api/cards").get_json()["items"]) == 1


def test_refusals_are_replayed_too(wallet: Wallet) -> None:
    """A declined provisioning is stored and replayed as the same problem."""
    first = wallet.provision("4000000000000002", key="k-red")
    second = wallet.provision("4000000000000002", key="k-red")
    assert first.status_code == second.status_code == 422
    assert (
        second.content_type == "application/problem+json" and second.headers["Idempotent-Replayed"] == "true"
    )


def test_same_key_other_body_is_422(wallet: Wallet) -> None:
    """Reusing a key with another body is idempotency-key-reused."""
    wallet.provision("4111111111111111", key="k-2")
    response = wallet.provision("5555555555554444", key="k-2")
    assert response.status_code == 422
    assert response.get_json()["type"] == PROBLEMS + "idempotency-key-reused"


def test_keys_are_scoped_by_client(client: FlaskClient) -> None:
    """Two users may use the same key value independently."""
    alice, bob = make_wallet(client), make_wallet(client)
    assert alice.provision(key="shared").status_code == 201
    second = bob.provision(key="shared")
    assert second.status_code == 201 and "Idempotent-Replayed" not in second.headers


def test_in_flight_then_done_then_reaped(app: Flask) -> None:
    """The service answers 409 while in flight, replays when done, and the reaper drops expired keys."""
    svc: IdempotencyService = app.extensions["hcekit"].idempotency
    claim = svc.begin("user:1", "POST /x", "key", "h1")
    assert isinstance(claim, Claim)
    with pytest.raises(IdempotencyInFlight):
        svc.begin("user:1", "POST /x", "key", "h1")
    with pytest.raises(IdempotencyKeyReused):
        svc.begin("user:1", "POST /x", "key", "h2")
    svc.complete_alone(claim, 201, '{"ok": true}')
    assert svc.begin("user:1", "POST /x", "key", "h1") == Replay(201, '{"ok": true}')
    later = svc.clock() + dt.timedelta(hours=25)
    assert svc.reap(later) == 1
    with svc.sessions() as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


def test_abandoned_claim_is_taken_over_after_the_lease(app: Flask) -> None:
    """A claim whose owner died is taken over after its lease; the old owner can no longer complete."""
    svc: IdempotencyService = app.extensions["hcekit"].idempotency
    first = svc.begin("user:1", "POST /x", "k", "h")
    assert isinstance(first, Claim)
    now = svc.clock()
    svc.clock = lambda: now + dt.timedelta(seconds=svc.lease_s + 1)
    second = svc.begin("user:1", "POST /x", "k", "h")
    assert isinstance(second, Claim) and second.locked_at != first.locked_at
    with pytest.raises(IdempotencyInFlight):
        svc.complete_alone(first, 201, "{}")
    svc.complete_alone(second, 201, "{}")


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_twenty_parallel_requests_create_one_card(app: Flask) -> None:
    """20 threads POST /api/cards with one key over a real socket: exactly one card exists."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        with httpx.Client(base_url=base) as http:
            http.post("/api/auth/register", json={"email": "race@example.com", "password": PASSWORD})
            token = http.post(
                "/api/auth/login", json={"email": "race@example.com", "password": PASSWORD}
            ).json()
            from tests.tsp_backend.tsp_helpers import new_device_key

            _, public = new_device_key()
            headers = {"Authorization": f"Bearer {token['token']}"}
            device = http.post("/api/devices", json={"publicKey": public}, headers=headers).json()["id"]
        key = str(uuid.uuid4())
        body = {"pan": "4111111111111111", "expiry": "12/30", "cvv": "123", "deviceId": device}
        barrier = threading.Barrier(20)
        results: list[tuple[int, str | None]] = []
        lock = threading.Lock()

        def worker() -> None:
            with httpx.Client(base_url=base, timeout=60) as http:
                barrier.wait()
                response = http.post("/api/cards", json=body, headers={**headers, "Idempotency-Key": key})
                with lock:
                    results.append((response.status_code, response.headers.get("Idempotent-Replayed")))

        threads = [threading.Thread(target=worker) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.shutdown()
        thread.join()
    statuses = Counter(status for status, _ in results)
    assert len(results) == 20
    assert set(statuses) <= {201, 409}
    fresh = [r for r in results if r == (201, None)]
    assert len(fresh) == 1
    with app.extensions["hcekit"].sessions_factory() as session:
        assert session.scalar(select(func.count()).select_from(Card)) == 1


@pytest.mark.parametrize(
    ("error", "stored"),
    [
        (ValidationFailed("bad"), True),
        (NotFound("gone"), True),
        (ProvisioningDeclined("no"), True),
        (IdempotencyInFlight("busy"), False),
        (TooManyRequests("slow down"), False),
        (NetworkUnavailable("down"), False),
    ],
)
def test_key_use_stores_refusals_and_releases_the_rest(app: Flask, error: TSPError, stored: bool) -> None:
    """KeyUse stores a 4xx refusal (not 409/429) for replay, and releases the key otherwise."""
    svc: IdempotencyService = app.extensions["hcekit"].idempotency
    key = str(uuid.uuid4())
    with (
        svc.sessions() as session,
        pytest.raises(type(error)),
        KeyUse(svc, session, "user:1", "POST /x", key, "h", instance="/x"),
    ):
        raise error
    again = svc.begin("user:1", "POST /x", key, "h")
    if stored:
        assert isinstance(again, Replay) and again.status == error.status
        assert json.loads(again.body)["type"] == error.to_problem()["type"]
    else:
        assert isinstance(again, Claim)


def test_key_use_releases_after_an_unexpected_error_and_replays_a_success(app: Flask) -> None:
    """An unexpected exception releases the key; a completed use is replayed with its answer."""
    svc: IdempotencyService = app.extensions["hcekit"].idempotency
    key = str(uuid.uuid4())
    with svc.sessions() as session:
        with pytest.raises(RuntimeError), KeyUse(svc, session, "user:1", "POST /x", key, "h", instance="/x"):
            raise RuntimeError("boom")
        with KeyUse(svc, session, "user:1", "POST /x", key, "h", instance="/x") as use:
            assert use.replay is None
            use.complete(201, '{"ok": true}')
            session.commit()
        with KeyUse(svc, session, "user:1", "POST /x", key, "h", instance="/x") as use:
            assert use.replay == Replay(201, '{"ok": true}')
