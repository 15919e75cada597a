"""The simulated issuer names accounts by a keyed hash: nothing in Redis leads back to a PAN."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.tsp_backend.tsp_helpers import Servers, dispose, make_config
from tsp_backend.app import create_app
from tsp_backend.services.issuers import IssuerRequest, IssuerSimulator, RedisLedger, account_key
from tsp_backend.services.vault import derive_subkey

PAN = "5454545454545454"


@pytest.mark.parametrize(
    ("key", "data", "digest"),
    [
        # RFC 4231 §4.2 and §4.3, HMAC-SHA-256, truncated to 128 bits
        (b"\x0b" * 20, "Hi There", "b0344c61d8db38535ca8afceaf0bf12b"),
        (b"Jefe", "what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c7"),
    ],
)
def test_account_key_is_hmac_sha256(key: bytes, data: str, digest: str) -> None:
    """account_key is HMAC-SHA-256 (RFC 4231 test cases 1 and 2), 32 hex digits."""
    assert account_key(data, key) == digest


def test_account_names_depend_on_the_secret() -> None:
    """Another secret, another name; never the unkeyed SHA-256 of the PAN."""
    first = IssuerSimulator(account_secret=b"a" * 32).account(PAN)
    second = IssuerSimulator(account_secret=b"b" * 32).account(PAN)
    assert first != second
    assert hashlib.sha256(PAN.encode()).hexdigest()[:32] not in (first, second)


@pytest.mark.integration
def test_redis_holds_no_unkeyed_pan_digest(
    servers: Servers, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two workers share one Redis ledger under the service's derived key; no key is sha256(PAN)."""
    config = make_config("postgres", tmp_path, request)
    first, second = create_app(config), create_app(config)
    try:
        issuers = [app.extensions["hcekit"].networks.issuer for app in (first, second)]
        assert all(isinstance(i.ledger, RedisLedger) for i in issuers)
        assert issuers[0].decide(IssuerRequest("ref-a", PAN, 6000, "EUR")).code == "00"
        assert issuers[1].decide(IssuerRequest("ref-b", PAN, 6000, "EUR")).code == "51"
        keys = [k.decode() for k in servers.redis.keys("*")]
        plain = hashlib.sha256(PAN.encode()).hexdigest()[:32]
        assert keys and not [k for k in keys if plain in k or PAN in k]
        keyed = account_key(PAN, derive_subkey(config.secret_key, "issuer-accounts"))
        assert [k for k in keys if keyed in k]
    finally:
        dispose(first)
        dispose(second)
