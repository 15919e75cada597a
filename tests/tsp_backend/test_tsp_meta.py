"""OpenAPI, health, problem documents for framework errors, migrations and the CLI."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import inspect

from cli.main import cli
from tests.tsp_backend.tsp_helpers import Wallet
from tsp_backend.db import downgrade, make_engine, upgrade
from tsp_backend.models import Base, VaultEntry


def test_openapi_lists_every_route(app: Flask, client: FlaskClient) -> None:
    """Every /api rule of the app appears in /openapi.json with its method."""
    document = client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api"):
            continue
        path = rule.rule.replace("<int:card_id>", "{id}").replace("<int:device_id>", "{id}")
        path = path.replace("<string:txn_id>", "{id}").replace("<int:key_id>", "{id}")
        path = path.replace("<int:action_id>", "{id}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:  # type: ignore[operator]
            assert method.lower() in document["paths"][path], (method, path)
    create = document["paths"]["/api/cards"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["required"] for p in create["parameters"])
    assert "deviceId" in document["components"]["schemas"]["ProvisionBody"]["properties"]


def test_healthz(client: FlaskClient) -> None:
    """/healthz reports the database, the store and the breakers."""
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["breakers"]["visa"] == "closed"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nowhere", 404),
        ("PATCH", "/api/cards", 405),
        ("GET", "/api/cards", 401),
    ],
)
def test_framework_errors_are_problems(client: FlaskClient, method: str, path: str, status: int) -> None:
    """Unknown routes, wrong methods and missing sessions answer application/problem+json."""
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.content_type == "application/problem+json"
    assert response.get_json()["type"].startswith("https://hcekit.dev/problems/")


def test_terminal_key_is_shown_once_and_stored_hashed(app: Flask, wallet: Wallet) -> None:
    """POST /api/terminals returns an hk_ key whose SHA-256 is what the database holds."""
    from tsp_backend.services.terminals import authenticate_api_key

    response = wallet.post("/api/terminals", {"name": "T-1"})
    assert response.status_code == 201
    key = response.get_json()["apiKey"]
    assert key.startswith("hk_")
    with app.extensions["hcekit"].sessions_factory() as session:
        row = authenticate_api_key(session, key)
        assert row is not None and row.key_hash != key and key not in row.key_hash
        assert authenticate_api_key(session, key + "x") is None


def test_migrations_upgrade_and_downgrade(config) -> None:  # type: ignore[no-untyped-def]
    """Alembic creates exactly the models' tables and removes them again."""
    engine = make_engine(config.database_url)
    try:
        upgrade(engine)
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
        downgrade(engine)
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(engine)
    finally:
        engine.dispose()


def test_vault_rotate_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`hcekit vault rotate` re-encrypts entries under the newest key version."""
    from tests.tsp_backend.tsp_helpers import FAST, make_wallet
    from tsp_backend.app import create_app
    from tsp_backend.config import Config

    v1 = "1:" + base64.b64encode(os.urandom(32)).decode()
    monkeypatch.setenv("HCEKIT_INSTANCE", str(tmp_path))
    monkeypatch.setenv("HCEKIT_VAULT_KEYS", v1)
    app = create_app(Config.from_env(None, **FAST))
    make_wallet(app.test_client()).provision()
    app.extensions["hcekit"].engine.dispose()
    monkeypatch.setenv("HCEKIT_VAULT_KEYS", v1 + ",2:" + base64.b64encode(os.urandom(32)).decode())
    result = CliRunner().invoke(cli, ["vault", "rotate", "--json"])
    assert result.exit_code == 0, result.output
    assert '"rotated": 1' in result.output
    engine = make_engine(Config.from_env().database_url)
    with engine.connect() as conn:
        assert {row.key_version for row in conn.execute(VaultEntry.__table__.select())} == {2}
    engine.dispose()


def test_serve_refuses_workers_without_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`hcekit serve --workers 2` without REDIS_URL exits with one clear error line."""
    monkeypatch.setenv("HCEKIT_INSTANCE", str(tmp_path))
    monkeypatch.delenv("REDIS_URL", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--workers", "2"])
    assert result.exit_code == 1 and "REDIS_URL" in result.output
