"""Configuration of the token service, from the environment or from an explicit mapping.

Two shapes of deployment share one code path:

* **embedded** (no environment at all): a SQLite file, an in-process store and secrets generated
  once and kept in ``<instance>/secrets.json`` (mode 0600, as is the SQLite file), so
  ``hcekit serve`` runs with no set-up. The instance directory is ``HCEKIT_INSTANCE`` or the
  user's data directory.
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
``HCEKIT_NETWORK_LATENCY_MS``  simulated network latency of the in-process networks (0)
``HCEKIT_REQUEST_DEADLINE_MS``  a request's deadline and an idempotency claim's lease (5000)
``HCEKIT_SECURE_COOKIES``   ``0`` drops the Secure flag of the cookies outside dev mode (plain-http
                            test set-ups only); default: Secure unless ``HCEKIT_DEV=1``
``HCEKIT_INSTANCE``         the instance directory of the embedded default
==========================  ===============================================================

Issuer master keys
------------------
:data:`DEV_ISSUER_MASTER_KEYS` are published (one test key per simulated token BIN range):
anyone can derive every card key from them, so they are used only in dev mode. The keys come
from, in this order:

1. ``HCEKIT_ISSUER_MASTER_KEYS`` (refused outside dev mode if it names a published key);
2. in dev mode, :data:`DEV_ISSUER_MASTER_KEYS`, so the built-in test cards and ``hcekit demo``
   work;
3. otherwise the ``issuer_master_keys`` of ``secrets.json``: fresh random keys, one per BIN
   range, generated on first start (the log says so in one line) and kept with the other
   secrets at mode 0600. Tokens provisioned under them stay valid across restarts.

:class:`Config` itself refuses a published key outside dev mode, however it was built.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptogram.sealing import aes256_key

#: Published development issuer master keys, one per simulated token BIN range (16-byte 3DES).
DEV_ISSUER_MASTER_KEYS: dict[str, str] = {
    "489537": "0123456789ABCDEFFEDCBA9876543210",
    "535522": "11223344556677888877665544332211",
    "374245": "A1A2A3A4A5A6A7A8B1B2B3B4B5B6B7B8",
    "601156": "C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF",
}


log = logging.getLogger("tsp_backend.config")


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
    secure_cookies: bool = True
    session_ttl_s: int = 12 * 3600
    idempotency_ttl_s: int = 24 * 3600
    request_deadline_s: float = 5.0
    """How long a request may take: an idempotency claim's lease, after which a retry takes over
    and the reconciliation may settle an authorization the request left ``pending``."""
    card_cache_ttl_s: int = 300
    luk_batch_size: int = 5
    luk_max_uses: int = 10
    luk_lifetime_s: int = 30 * 24 * 3600
    max_key_batches_per_day: int = 4
    otp_attempts: int = 3
    otp_ttl_s: int = 600
    login_rate_limit: str = "10 per minute"
    register_rate_limit: str = "5 per minute"
    provision_rate_limit: str = "30 per minute"
    verify_rate_limit: str = "10 per minute"
    ratelimit_enabled: bool = True
    network_latency_s: float = 0.0
    network_error_rate: float = 0.0
    breaker_fail_max: int = 5
    breaker_reset_s: int = 30
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_concurrency: int = 0
    """Password hashes at once per process; 0: half the CPUs (at least one)."""
    argon2_wait_s: float = 2.0
    """How long a password check waits for a hashing slot before answering 429."""
    admin_emails: frozenset[str] = frozenset()
    oda_profiles: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.dev_mode:
            published = {prefix for prefix, key in self.issuer_master_keys.items() if key in _DEV_KEY_BYTES}
            if published:
                raise ConfigError(
                    "HCEKIT_ISSUER_MASTER_KEYS: the published development key for "
                    f"{', '.join(sorted(published))} is allowed only with HCEKIT_DEV=1"
                )

    @property
    def active_vault_version(self) -> int:
        """The vault key version that encrypts new entries (the highest configured)."""
        return max(self.vault_keys)

    def with_(self, **changes: Any) -> Config:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @classmethod
    def embedded(cls, instance_path: str | Path, **overrides: Any) -> Config:
        """The no-set-up configuration: SQLite and secrets kept under ``instance_path``.

        Issuer master keys (unless given in ``overrides``): the published development keys when
        ``dev_mode`` is true, else the random keys of ``secrets.json`` (generated on first use).
        Cookies are Secure unless ``dev_mode`` is true or ``secure_cookies`` says otherwise.
        """
        path = Path(instance_path)
        path.mkdir(parents=True, exist_ok=True)
        dev_mode = bool(overrides.get("dev_mode", False))
        stored = _load_or_create_secrets(
            path / "secrets.json", issuer_keys="issuer_master_keys" not in overrides and not dev_mode
        )
        values: dict[str, Any] = {
            "database_url": f"sqlite:///{path / 'hcekit.db'}",
            "secret_key": base64.b64decode(stored["secret_key"]),
            "vault_keys": parse_vault_keys(stored["vault_keys"]),
            "instance_path": path,
            "secure_cookies": not dev_mode,
        }
        if "issuer_master_keys" not in overrides:
            spec = _dev_imk_spec() if dev_mode else stored["issuer_master_keys"]
            values["issuer_master_keys"] = parse_issuer_master_keys(spec)
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Read the environment; anything missing falls back to the embedded default."""
        env = os.environ if environ is None else environ
        instance = Path(env.get("HCEKIT_INSTANCE") or _default_instance())
        values: dict[str, Any] = {}
        if env.get("HCEKIT_DEV"):
            values["dev_mode"] = env["HCEKIT_DEV"].lower() in {"1", "true", "yes"}
        if "dev_mode" in overrides:
            values["dev_mode"] = bool(overrides["dev_mode"])
        if env.get("HCEKIT_ISSUER_MASTER_KEYS"):
            values["issuer_master_keys"] = parse_issuer_master_keys(env["HCEKIT_ISSUER_MASTER_KEYS"])
        if "issuer_master_keys" in overrides:
            values["issuer_master_keys"] = overrides["issuer_master_keys"]
        if env.get("DATABASE_URL"):
            values["database_url"] = _normalise_db_url(env["DATABASE_URL"])
        if env.get("REDIS_URL"):
            values["redis_url"] = env["REDIS_URL"]
        if env.get("HCEKIT_SECRET_KEY"):
            values["secret_key"] = env["HCEKIT_SECRET_KEY"].encode()
        if env.get("HCEKIT_VAULT_KEYS"):
            values["vault_keys"] = parse_vault_keys(env["HCEKIT_VAULT_KEYS"])
        if env.get("HCEKIT_ADMIN_EMAILS"):
            values["admin_emails"] = frozenset(
                e.strip().lower() for e in env["HCEKIT_ADMIN_EMAILS"].split(",") if e.strip()
            )
        if env.get("HCEKIT_RATELIMIT"):
            values["ratelimit_enabled"] = env["HCEKIT_RATELIMIT"].lower() not in {"0", "false", "no", "off"}
        if env.get("HCEKIT_NETWORK_LATENCY_MS"):
            values["network_latency_s"] = _milliseconds(
                env["HCEKIT_NETWORK_LATENCY_MS"], "HCEKIT_NETWORK_LATENCY_MS"
            )
        if env.get("HCEKIT_REQUEST_DEADLINE_MS"):
            values["request_deadline_s"] = _milliseconds(
                env["HCEKIT_REQUEST_DEADLINE_MS"], "HCEKIT_REQUEST_DEADLINE_MS"
            )
        if env.get("HCEKIT_ODA"):
            values["oda_profiles"] = env["HCEKIT_ODA"].lower() in {"1", "true", "yes"}
        if env.get("HCEKIT_SECURE_COOKIES"):
            values["secure_cookies"] = env["HCEKIT_SECURE_COOKIES"].lower() in {"1", "true", "yes"}
        values.update(overrides)
        return cls.embedded(instance, **values)


def _milliseconds(text: str, name: str) -> float:
    """A non-negative number of milliseconds from the environment, in seconds.

    >>> _milliseconds("40", "X")
    0.04
    """
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 60_000:
        raise ConfigError(f"{name}: a number of milliseconds from 0 to 60000")
    return value / 1000.0


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
        key = aes256_key(encoded)
        if key is None:
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


_DEV_KEY_BYTES = frozenset(bytes.fromhex(key) for key in DEV_ISSUER_MASTER_KEYS.values())


def generate_issuer_master_key_spec() -> str:
    """Fresh random issuer master keys, one per simulated BIN range, as ``HCEKIT_ISSUER_MASTER_KEYS``."""
    return ",".join(f"{prefix}:{secrets.token_hex(16).upper()}" for prefix in DEV_ISSUER_MASTER_KEYS)


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


def _load_or_create_secrets(path: Path, *, issuer_keys: bool) -> dict[str, str]:
    """The instance's secrets, created (mode 0600) on first use; with ``issuer_keys``, issuer
    master keys are added to a file that lacks them (and the log says so)."""
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text())
    else:
        data = {
            "secret_key": base64.b64encode(secrets.token_bytes(32)).decode(),
            "vault_keys": generate_vault_key_spec(1),
        }
        if issuer_keys:
            data["issuer_master_keys"] = generate_issuer_master_key_spec()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return _load_or_create_secrets(path, issuer_keys=issuer_keys)
        with os.fdopen(fd, "w") as fp:
            json.dump(data, fp)
        if issuer_keys:
            log.warning("generated new random issuer master keys in %s (no HCEKIT_ISSUER_MASTER_KEYS)", path)
        return data
    if issuer_keys and "issuer_master_keys" not in data:
        data = {**data, "issuer_master_keys": generate_issuer_master_key_spec()}
        _replace_secrets(path, data)
        log.warning("generated new random issuer master keys in %s (no HCEKIT_ISSUER_MASTER_KEYS)", path)
    return data


def _replace_secrets(path: Path, data: Mapping[str, str]) -> None:
    """Write ``data`` to ``path`` atomically, mode 0600 from the first byte."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fp:
        json.dump(dict(data), fp)
        fp.flush()
        os.fsync(fp.fileno())
    os.replace(temporary, path)
