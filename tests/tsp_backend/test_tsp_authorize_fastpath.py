"""The authorization's short path: the Idempotency-Key claimed in the effect's transaction, the
ATC window and key use in one statement, the transaction and audit rows written by Core."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from terminal.host import HostAnswer, parse_answer
from tests.tsp_backend.tsp_helpers import Wallet
from tests.tsp_backend.tsp_pay_helpers import FlaskHost, applet, provision_profile, tap
from tsp_backend.db import driver_execute
from tsp_backend.errors import IdempotencyInFlight, IdempotencyKeyReused
from tsp_backend.models import AuditEvent, IdempotencyKey, LukUse, Transaction, UsedATC
from tsp_backend.services.idempotency import Claim, IdempotencyService, Replay

ROUTE = "POST /api/authorize"


def _service(app: Flask) -> IdempotencyService:
    service: IdempotencyService = app.extensions["hcekit"].idempotency
    return service


POSTGRES_ONLY = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.integration)], indirect=True
)
"""Claims in the effect's transaction are a PostgreSQL path: these tests run on PostgreSQL only."""


@POSTGRES_ONLY
def test_claim_then_complete_commits_with_the_effect(app: Flask) -> None:
    """A claim completed and committed in one transaction replays its answer afterwards."""
    service, factory = _service(app), app.extensions["hcekit"].sessions_factory
    with factory() as session:
        claim = service.claim(session, "apikey:1", ROUTE, "k-commit", "h1")
        assert isinstance(claim, Claim)
        service.complete(session, claim, 200, '{"approved": true}')
        session.commit()
    with factory() as session:
        again = service.claim(session, "apikey:1", ROUTE, "k-commit", "h1")
        session.rollback()
    assert again == Replay(200, '{"approved": true}')


@POSTGRES_ONLY
def test_claim_rolled_back_leaves_the_key_free(app: Flask) -> None:
    """A rolled-back claim leaves nothing behind: the next request owns the key."""
    service, factory = _service(app), app.extensions["hcekit"].sessions_factory
    with factory() as session:
        assert isinstance(service.claim(session, "apikey:1", ROUTE, "k-rollback", "h1"), Claim)
        session.rollback()
    with factory() as session:
        assert isinstance(service.claim(session, "apikey:1", ROUTE, "k-rollback", "h1"), Claim)
        session.rollback()


@POSTGRES_ONLY
def test_claim_with_another_body_is_422(app: Flask) -> None:
    """A finished key sent with another request body is idempotency-key-reused."""
    service, factory = _service(app), app.extensions["hcekit"].sessions_factory
    service.store("apikey:1", ROUTE, "k-body", "h1", 400, "{}")
    with factory() as session, pytest.raises(IdempotencyKeyReused):
        service.claim(session, "apikey:1", ROUTE, "k-body", "h2")


@POSTGRES_ONLY
def test_stored_refusal_is_replayed_and_never_overwritten(app: Flask) -> None:
    """store() keeps the first answer; a later claim replays it."""
    service, factory = _service(app), app.extensions["hcekit"].sessions_factory
    service.store("apikey:1", ROUTE, "k-store", "h1", 400, '{"first": 1}')
    service.store("apikey:1", ROUTE, "k-store", "h1", 400, '{"second": 2}')
    with factory() as session:
        assert service.claim(session, "apikey:1", ROUTE, "k-store", "h1") == Replay(400, '{"first": 1}')
        session.rollback()


@POSTGRES_ONLY
def test_concurrent_claim_is_409_while_the_first_is_open_then_replays(app: Flask) -> None:
    """A claim of a key held by an open transaction is 409 at once; after the commit it replays."""
    service, factory = _service(app), app.extensions["hcekit"].sessions_factory
    outcome: list[Any] = []
    first = factory()
    claim = service.claim(first, "apikey:1", ROUTE, "k-wait", "h1")
    assert isinstance(claim, Claim)

    def second() -> None:
        with factory() as session:
            try:
                outcome.append(service.claim(session, "apikey:1", ROUTE, "k-wait", "h1"))
            except IdempotencyInFlight as exc:
                outcome.append(exc)
            session.rollback()

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the second claim waited instead of answering"
    assert len(outcome) == 1 and isinstance(outcome[0], IdempotencyInFlight)
    service.complete(first, claim, 200, '{"ok": 1}')
    first.commit()
    first.close()
    with factory() as session:
        assert service.claim(session, "apikey:1", ROUTE, "k-wait", "h1") == Replay(200, '{"ok": 1}')
        session.rollback()


@POSTGRES_ONLY
def test_driver_execute_runs_inside_the_session_transaction(app: Flask) -> None:
    """A statement run on the driver connection is undone by the session's rollback."""
    factory = app.extensions["hcekit"].sessions_factory
    with factory() as session:
        driver_execute(
            session,
            "INSERT INTO idempotency_keys (scope, route, key, request_hash, state, created_at, expires_at) "
            "VALUES (%(s)s, 'r', 'k', 'h', 'DONE', now(), now())",
            {"s": "driver"},
        )
        inside = session.scalar(select(IdempotencyKey.id).where(IdempotencyKey.scope == "driver"))
        session.rollback()
    with factory() as session:
        after = session.scalar(select(IdempotencyKey.id).where(IdempotencyKey.scope == "driver"))
    assert inside is not None and after is None


def test_approval_writes_rows_and_counts_once(app: Flask, wallet: Wallet, host: FlaskHost) -> None:
    """An approval writes one transaction, one audit row, one used ATC and one key use."""
    card_id, profile = provision_profile(wallet)
    answer = tap(applet(profile), 1250, host).outcome.host
    assert answer is not None and answer.approved
    factory = app.extensions["hcekit"].sessions_factory
    with factory() as session:
        txn = session.scalars(select(Transaction)).one()
        audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "payment.authorize")).one()
        atcs = session.scalars(select(UsedATC).where(UsedATC.card_id == card_id)).all()
        uses = session.scalars(select(LukUse).where(LukUse.card_id == card_id)).one()
    assert (txn.status, txn.response_code, txn.card_id, txn.amount) == ("approved", "00", card_id, 1250)
    assert txn.settled_at is not None and txn.created_at.tzinfo is not None
    assert audit.target == f"txn:{txn.public_id}" and audit.outcome == "00 approved"
    assert json.loads(audit.detail or "{}") == {"card": card_id, "channel": "contactless", "network": "visa"}
    assert [a.atc for a in atcs] == [txn.atc] and uses.uses == 1


def test_replayed_cryptogram_spends_nothing_more(app: Flask, wallet: Wallet, host: FlaskHost) -> None:
    """A second copy of a tap under a new key is 59 (replay) and leaves the key's use count at one."""
    card_id, profile = provision_profile(wallet)
    result = tap(applet(profile), 700, host)
    body = host.requests[-1]
    second = host.post(body, str(uuid.uuid4())).get_json()
    assert result.outcome.host is not None and result.outcome.host.approved
    assert (second["approved"], second["responseCode"]) == (False, "59") and "replay" in second["reason"]
    factory = app.extensions["hcekit"].sessions_factory
    with factory() as session:
        uses = session.scalars(select(LukUse).where(LukUse.card_id == card_id)).one()
    assert uses.uses == 1


@POSTGRES_ONLY
def test_postgres_approval_writes_in_two_statements(
    backend: str, app: Flask, wallet: Wallet, host: FlaskHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL an approval writes in two autocommit statements (intent, settle) and nothing
    else: no write and no commit through the ORM session."""
    import psycopg
    from sqlalchemy import event

    _, profile = provision_profile(wallet)
    card = applet(profile)
    assert tap(card, 1250, host).outcome.host.approved  # type: ignore[union-attr]
    direct: list[str] = []
    orm_writes: list[str] = []
    commits: list[int] = []
    execute = psycopg.Connection.execute

    def counted(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        direct.append(str(query))
        return execute(self, query, *args, **kwargs)

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE", "WITH"):
            orm_writes.append(statement)

    monkeypatch.setattr(psycopg.Connection, "execute", counted)
    engine = app.extensions["hcekit"].engine
    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", lambda *_: commits.append(1))
    try:
        answer = tap(card, 1250, host).outcome.host
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
    assert answer is not None and answer.approved, answer
    assert len(direct) == 2, direct
    assert "INSERT INTO idempotency_keys" in direct[0] and "UPDATE transactions" in direct[1]
    assert orm_writes == [] and commits == []



def _commands_during(redis: Any, action: Callable[[], Any]) -> tuple[Any, list[str]]:
    """What ``action`` returned and every command Redis received meanwhile (Redis's MONITOR)."""
    seen: list[str] = []
    ready, end = threading.Event(), f"monitor-end-{uuid.uuid4()}"

    def watch() -> None:
        with redis.monitor() as monitor:
            redis.get(f"monitor-ready-{end}")
            for command in monitor.listen():
                text = command["command"]
                if "monitor-ready-" in text:
                    ready.set()
                elif end in text:
                    return
                elif ready.is_set():
                    seen.append(text)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert ready.wait(10), "MONITOR did not start"
    result = action()
    redis.get(end)
    watcher.join(10)
    return result, seen


@POSTGRES_ONLY
def test_an_approval_asks_redis_once(
    backend: str, app: Flask, wallet: Wallet, host: FlaskHost, request: pytest.FixtureRequest
) -> None:
    """A warm approval reads Redis in one MGET (the token and the terminal key's revocation
    marker) and sends it nothing else; the breakers' state is the one read in process. (The
    issuer simulator keeps its ledger under ``hcekit:issuer:``: that is the issuer's, not ours.)"""
    redis = request.getfixturevalue("servers").redis
    for breaker in app.extensions["hcekit"].networks.breakers.values():
        breaker._state_storage.refresh_s = 3600.0   # the cache's period, not the test's clock
    _, profile = provision_profile(wallet)
    card = applet(profile)
    assert tap(card, 700, host).outcome.host.approved
    result, commands = _commands_during(redis, lambda: tap(card, 800, host))
    assert result.outcome.host is not None and result.outcome.host.approved
    ours = [c for c in commands if "hcekit:issuer:" not in c]
    assert len(ours) == 1 and ours[0].startswith("MGET hcekit:token:"), ours
    assert "hcekit:apikey_revoked:" in ours[0]


def test_a_revoked_key_is_refused_before_anything_is_written(
    app: Flask, wallet: Wallet, client: FlaskClient
) -> None:
    """The marker is read with the token: a genuine tap under a revoked key is 401, and neither a
    transaction nor a claim of its Idempotency-Key is left behind."""
    created = wallet.post("/api/terminals", {"name": "T-revoked"}).get_json()
    host = FlaskHost(client, created["apiKey"])
    _, profile = provision_profile(wallet)
    card = applet(profile)
    assert tap(card, 700, host).outcome.host.approved
    assert wallet.delete(f"/api/terminals/{created['id']}").status_code == 200
    factory = app.extensions["hcekit"].sessions_factory

    def rows() -> tuple[int | None, int | None]:
        with factory() as session:
            return (session.scalar(select(func.count()).select_from(Transaction)),
                    session.scalar(select(func.count()).select_from(IdempotencyKey)))

    before = rows()
    recording = _Recording(host)
    tap(card, 800, recording)
    [response] = recording.responses
    assert response.status_code == 401 and response.mimetype == "application/problem+json"
    assert response.get_json()["detail"] == "a terminal API key is required: Authorization: Bearer hk_…"
    assert rows() == before and before[0] == 1


@dataclass
class _Recording:
    """A host that posts to ``/api/authorize``, keeps the HTTP answer, and tells the kernel no."""

    host: FlaskHost
    responses: list[Any] = field(default_factory=list)

    def authorize(self, body: dict[str, Any]) -> HostAnswer:
        self.responses.append(self.host.post(body, str(uuid.uuid4())))
        return parse_answer({"approved": False})
