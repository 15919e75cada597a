"""Production defaults: no published issuer keys outside dev mode, Secure cookies, private files."""

from __future__ import annotations

import json
import logging
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.tsp_backend.tsp_helpers import PASSWORD, dispose, make_wallet
from tests.tsp_backend.tsp_pay_helpers import FlaskHost, applet, provision_profile, tap
from tsp_backend.app import create_app
from tsp_backend.config import DEV_ISSUER_MASTER_KEYS, Config, ConfigError, parse_issuer_master_keys
from tsp_backend.services import keys

ADMIN = "ops@example.com"
_CHEAP = {"argon2_time_cost": 1, "argon2_memory_kib": 8192}
_DEV_SPEC = ",".join(f"{prefix}:{key}" for prefix, key in DEV_ISSUER_MASTER_KEYS.items())
_DEV_BYTES = {bytes.fromhex(key) for key in DEV_ISSUER_MASTER_KEYS.values()}


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HCEKIT_INSTANCE": str(tmp_path / "instance"), "HCEKIT_ADMIN_EMAILS": ADMIN, **extra}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def prod_app(tmp_path: Path) -> Iterator[Flask]:
    """The service as ``hcekit serve`` builds it with no environment but an instance directory."""
    application = create_app(Config.from_env(_env(tmp_path), **_CHEAP))
    application.testing = True
    yield application
    dispose(application)


def test_without_dev_mode_the_published_keys_are_not_used(tmp_path: Path, caplog: Any) -> None:
    """No HCEKIT_DEV, no keys: fresh random issuer keys in secrets.json (0600), announced in the log."""
    with caplog.at_level(logging.WARNING, logger="tsp_backend.config"):
        config = Config.from_env(_env(tmp_path))
    assert not config.dev_mode
    assert set(config.issuer_master_keys) == set(DEV_ISSUER_MASTER_KEYS)
    assert not _DEV_BYTES & set(config.issuer_master_keys.values())
    assert [r.getMessage() for r in caplog.records if "issuer master keys" in r.getMessage()]
    secrets_file = tmp_path / "instance" / "secrets.json"
    assert _mode(secrets_file) == 0o600
    stored = json.loads(secrets_file.read_text())
    assert parse_issuer_master_keys(stored["issuer_master_keys"]) == dict(config.issuer_master_keys)
    again = Config.from_env(_env(tmp_path))
    assert dict(again.issuer_master_keys) == dict(config.issuer_master_keys)


def test_an_old_secrets_file_gains_issuer_keys_and_stays_private(tmp_path: Path) -> None:
    """A secrets.json written before issuer keys were kept there gets them, still mode 0600."""
    Config.embedded(tmp_path / "instance", dev_mode=True)
    secrets_file = tmp_path / "instance" / "secrets.json"
    assert "issuer_master_keys" not in json.loads(secrets_file.read_text())
    config = Config.from_env(_env(tmp_path))
    assert not _DEV_BYTES & set(config.issuer_master_keys.values())
    assert "issuer_master_keys" in json.loads(secrets_file.read_text())
    assert _mode(secrets_file) == 0o600


def test_dev_mode_keeps_the_published_keys(tmp_path: Path) -> None:
    """HCEKIT_DEV=1 uses the published keys, so the built-in test cards and the demo work."""
    config = Config.from_env(_env(tmp_path, HCEKIT_DEV="1"))
    assert config.dev_mode and set(config.issuer_master_keys.values()) == _DEV_BYTES


@pytest.mark.parametrize(
    "build",
    [
        lambda p: Config.from_env(_env(p, HCEKIT_ISSUER_MASTER_KEYS=_DEV_SPEC)),
        lambda p: Config.embedded(p / "i", issuer_master_keys=parse_issuer_master_keys(_DEV_SPEC)),
        lambda p: Config.embedded(p / "i", dev_mode=True).with_(dev_mode=False),
    ],
    ids=["environment", "embedded", "with_"],
)
def test_published_keys_are_refused_outside_dev_mode(tmp_path: Path, build: Any) -> None:
    """However the configuration is built, a published key without dev mode is a ConfigError."""
    with pytest.raises(ConfigError, match=r"HCEKIT_ISSUER_MASTER_KEYS.*489537.*HCEKIT_DEV"):
        build(tmp_path)


def _forged_profile(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile an outsider builds from a token PAN and the published keys."""
    dev = parse_issuer_master_keys(_DEV_SPEC)
    forged = keys.luk_batch(
        dev,
        profile["pan"],
        profile["psn"],
        first_index=profile["luks"][0]["index"],
        count=len(profile["luks"]),
        max_uses=profile["luks"][0]["max_uses"],
        not_after=profile["luks"][0]["not_after"],
    )
    return {**profile, "luks": forged}


def _admin_terminal(prod: Flask) -> tuple[Any, str]:
    client = prod.test_client()
    wallet = make_wallet(client, ADMIN)
    response = wallet.post("/api/terminals", {"name": "T-prod"})
    assert response.status_code == 201, response.get_json()
    return wallet, str(response.get_json()["apiKey"])


def test_a_cryptogram_made_with_the_published_keys_is_declined(prod_app: Flask) -> None:
    """A tap forged from the dev keys is declined; the card's own keys are approved."""
    wallet, api_key = _admin_terminal(prod_app)
    _, profile = provision_profile(wallet)
    host = FlaskHost(wallet.client, api_key)
    forged = tap(applet(_forged_profile(profile)), 4999, host)
    assert host.requests, "the forged tap never reached the service"
    assert forged.outcome.outcome.value == "declined", forged.outcome
    genuine = tap(applet(profile), 4999, host)
    assert genuine.outcome.outcome.value == "approved", genuine.outcome


def _set_cookies(response: Any) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")}


def _login(app: Flask) -> Any:
    client = app.test_client()
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    assert client.post("/api/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
    return client.post("/api/auth/login", json={"email": email, "password": PASSWORD})


def test_session_cookie_is_secure_outside_dev_mode(prod_app: Flask) -> None:
    """Without dev mode the session cookie carries Secure (and stays httpOnly, SameSite=Lax)."""
    cookie = _set_cookies(_login(prod_app))["hcekit_session"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_insecure_cookie_switch_for_plain_http(tmp_path: Path) -> None:
    """HCEKIT_SECURE_COOKIES=0 is the documented switch for plain-http test set-ups."""
    app = create_app(Config.from_env(_env(tmp_path, HCEKIT_SECURE_COOKIES="0"), **_CHEAP))
    try:
        assert "Secure" not in _set_cookies(_login(app))["hcekit_session"]
    finally:
        dispose(app)


def test_sqlite_file_is_private(prod_app: Flask, tmp_path: Path) -> None:
    """The embedded SQLite database (and its WAL) is mode 0600."""
    _login(prod_app)
    instance = tmp_path / "instance"
    assert _mode(instance / "hcekit.db") == 0o600
    for extra in ("hcekit.db-wal", "hcekit.db-shm"):
        if (instance / extra).exists():
            assert _mode(instance / extra) == 0o600


def test_an_existing_world_readable_sqlite_file_is_narrowed(tmp_path: Path) -> None:
    """A database file left 0644 by an older version is narrowed to 0600 at start."""
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "hcekit.db").touch(mode=0o644)
    (instance / "hcekit.db").chmod(0o644)
    app = create_app(Config.from_env(_env(tmp_path), **_CHEAP))
    dispose(app)
    assert _mode(instance / "hcekit.db") == 0o600
