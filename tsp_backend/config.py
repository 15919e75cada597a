"""Configuration of the token service, from the environment or from an explicit mapping.

Two shapes of deployment share one code path:

* **embedded** (no environment at all): a SQLite file, an in-process store and secrets generated
  once and kept in ``<instance>/secrets.json`` (mode 0600), so ``hcekit serve`` runs with no
  set-up. The instance directory is ``HCEKIT_INSTANCE`` or the user's data directory.
* **production**: ``DATABASE_URL`` (``postgresql+psycopg://…``) and ``REDIS_URL`` (``redis://…``
  or ``unix:///path/to/redis.sock``); several processes on one PostgreSQL + Redis then behave as
  one service.

Environment variables
---------------------
==========================  ===============================================================
``DATABASE_URL``            SQLAlchemy URL; default ``sqlite:///<instance>/hcekit.db``
``REDIS_URL``               Redis/Valkey URL; default: the in-process store
``HCEKIT_SECRET_KEY``       secret for session tokens, CSRF and the PAN fingerprint key
``HCEKIT_VAULT_KEYS``       versioned AES-256 keys: ``"1:<base64 32 bytes>,2:<base64>"``;
                            the highest version encrypts, every listed version decrypts
``HCEKIT_ISSUER_MASTER_KEYS``  issuer master keys per token BIN prefix:
                            ``"489537:<32 hex>,535522:<32 hex>"`` (2-key 3DES, 16 bytes)
``HCEKIT_DEV``              ``1`` enables the development routes (``/api/dev/outbox``) and lets
                            any user create terminal API keys
``HCEKIT_ADMIN_EMAILS``     comma-separated addresses that register as administrators
``HCEKIT_RATELIMIT``        ``0`` turns rate limiting off (benchmarks)
``HCEKIT_SECURE_COOKIES``   ``1`` marks the session cookie Secure (behind HTTPS)
``HCEKIT_INSTANCE``         the instance directory of the embedded default
==========================  ===============================================================

Development issuer master keys
------------------------------
Without ``HCEKIT_ISSUER_MASTER_KEYS`` the service uses :data:`DEV_ISSUER_MASTER_KEYS`, one
published test key per simulated token BIN range. They are for development only: anyone can
derive every card key from them.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

#: Published development issuer master keys, one per simulated token BIN range (16-byte 3DES).
DEV_ISSUER_MASTER_KEYS: dict[str, str] = {
    "489537": "0123456789ABCDEFFEDCBA9876543210",
    "535522": "11223344556677888877665544332211",
    "374245": "A1A2A3A4A5A6A7A8B1B2B3B4B5B6B7B8",
    "601156": "C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF",
}


class ConfigError(ValueError):
    """A configuration value is missing or malformed (the message names the variable, never its value)."""


@dataclass(frozen=True)
class Config:
    """Everything the service reads at start; build one with :meth:`from_env` or :meth:`embedded`."""

    database_url: str
    secret_key: bytes
    vault_keys: Mapping[int, bytes]
    issuer_master_keys: Mapping[str, bytes]
    redis_url: str | None = None
    instance_path: Path | None = None
    dev_mode: bool = False
    auto_migrate: bool = True
    secure_cookies: bool = False
    session_ttl_s: int = 12 * 3600
    idempotency_ttl_s: int = 24 * 3600
    idempotency_lock_s: int = 60
    card_cache_ttl_s: int = 300
    luk_batch_size: int = 5
    luk_max_uses: int = 10
    luk_lifetime_s: int = 30 * 24 * 3600
    max_key_batches_per_day: int = 4
    otp_attempts: int = 3
    otp_ttl_s: int = 600
    login_rate_limit: str = "10 per minute"
    provision_rate_limit: str = "30 per minute"
    verify_rate_limit: str = "10 per minute"
    ratelimit_enabled: bool = True
    network_latency_s: float = 0.0
    network_error_rate: float = 0.0
    breaker_fail_max: int = 5
    breaker_reset_s: int = 30
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    admin_emails: frozenset[str] = frozenset()
    oda_profiles: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def active_vault_version(self) -> int:
        """The vault key version that encrypts new entries (the highest configured)."""
        return max(self.vault_keys)

    def with_(self, **changes: Any) -> Config:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @classmethod
    def embedded(cls, instance_path: str | Path, **overrides: Any) -> Config:
        """The no-set-up configuration: SQLite and secrets kept under ``instance_path``."""
        path = Path(instance_path)
        path.mkdir(parents=True, exist_ok=True)
        stored = _load_or_create_secrets(path / "secrets.json")
        values: dict[str, Any] = {
            "database_url": f"sqlite:///{path / 'hcekit.db'}",
            "secret_key": base64.b64decode(stored["secret_key"]),
            "vault_keys": parse_vault_keys(stored["vault_keys"]),
            "issuer_master_keys": parse_issuer_master_keys(_dev_imk_spec()),
            "instance_path": path,
        }
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Read the environment; anything missing falls back to the embedded default."""
        env = os.environ if environ is None else environ
        instance = Path(env.get("HCEKIT_INSTANCE") or _default_instance())
        base = cls.embedded(instance)
        values: dict[str, Any] = {}
        if env.get("DATABASE_URL"):
            values["database_url"] = _normalise_db_url(env["DATABASE_URL"])
        if env.get("REDIS_URL"):
            values["redis_url"] = env["REDIS_URL"]
        if env.get("HCEKIT_SECRET_KEY"):
            values["secret_key"] = env["HCEKIT_SECRET_KEY"].encode()
        if env.get("HCEKIT_VAULT_KEYS"):
            values["vault_keys"] = parse_vault_keys(env["HCEKIT_VAULT_KEYS"])
        if env.get("HCEKIT_ISSUER_MASTER_KEYS"):
            values["issuer_master_keys"] = parse_issuer_master_keys(env["HCEKIT_ISSUER_MASTER_KEYS"])
        if env.get("HCEKIT_DEV"):
            values["dev_mode"] = env["HCEKIT_DEV"].lower() in {"1", "true", "yes"}
        if env.get("HCEKIT_ADMIN_EMAILS"):
            values["admin_emails"] = frozenset(
                e.strip().lower() for e in env["HCEKIT_ADMIN_EMAILS"].split(",") if e.strip()
            )
        if env.get("HCEKIT_RATELIMIT"):
            values["ratelimit_enabled"] = env["HCEKIT_RATELIMIT"].lower() not in {"0", "false", "no", "off"}
        if env.get("HCEKIT_ODA"):
            values["oda_profiles"] = env["HCEKIT_ODA"].lower() in {"1", "true", "yes"}
        if env.get("HCEKIT_SECURE_COOKIES"):
            values["secure_cookies"] = env["HCEKIT_SECURE_COOKIES"].lower() in {"1", "true", "yes"}
        values.update(overrides)
        return base.with_(**values)


def parse_vault_keys(spec: str) -> dict[int, bytes]:
    """Parse ``"1:<base64>,2:<base64>"`` into versioned 32-byte keys.

    >>> sorted(parse_vault_keys("1:" + "A" * 43 + "=,2:" + "B" * 43 + "="))
    [1, 2]
    >>> parse_vault_keys("1:AAAA")
    Traceback (most recent call last):
    ...
    tsp_backend.config.ConfigError: HCEKIT_VAULT_KEYS: version 1 is not a 32-byte key
    """
    keys: dict[int, bytes] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        version, _, encoded = item.partition(":")
        if not version.isdigit():
            raise ConfigError("HCEKIT_VAULT_KEYS: each entry is <version>:<base64 key>")
        try:
            key = base64.b64decode(encoded, validate=True)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise ConfigError(f"HCEKIT_VAULT_KEYS: version {int(version)} is not a 32-byte key")
        keys[int(version)] = key
    if not keys:
        raise ConfigError("HCEKIT_VAULT_KEYS: no key")
    return keys


def parse_issuer_master_keys(spec: str) -> dict[str, bytes]:
    """Parse ``"489537:<32 hex>,…"`` into issuer master keys per token BIN prefix.

    >>> parse_issuer_master_keys("489537:0123456789ABCDEFFEDCBA9876543210")["489537"].hex()[:4]
    '0123'
    """
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        prefix, _, hex_key = item.partition(":")
        if not prefix.isdigit():
            raise ConfigError("HCEKIT_ISSUER_MASTER_KEYS: each entry is <BIN prefix>:<hex key>")
        try:
            key = bytes.fromhex(hex_key)
        except ValueError:
            key = b""
        if len(key) not in (16, 24, 32):
            raise ConfigError(f"HCEKIT_ISSUER_MASTER_KEYS: the key for {prefix} is not 16, 24 or 32 bytes")
        keys[prefix] = key
    return keys


def generate_vault_key_spec(version: int = 1) -> str:
    """A fresh vault key entry ``"<version>:<base64>"`` for ``HCEKIT_VAULT_KEYS``."""
    return f"{version}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def _dev_imk_spec() -> str:
    return ",".join(f"{prefix}:{key}" for prefix, key in DEV_ISSUER_MASTER_KEYS.items())


def _default_instance() -> str:
    import platformdirs

    return platformdirs.user_data_dir("hcekit", appauthor=False)


def _normalise_db_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _load_or_create_secrets(path: Path) -> dict[str, str]:
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text())
        return data
    data = {
        "secret_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "vault_keys": generate_vault_key_spec(1),
    }
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        existing: dict[str, str] = json.loads(path.read_text())
        return existing
    with os.fdopen(fd, "w") as fp:
        json.dump(data, fp)
    return data
