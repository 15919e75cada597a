"""API keys for terminals and merchants: ``hk_`` + 256 random bits, stored as SHA-256.

A key with 256 bits of entropy needs no slow hash (OWASP ASVS 4.0 §2.9); look-up is by
digest and the comparison is constant-time.

Revocation is immediate in every process. Each process may remember a key it authenticated
(:class:`RememberedKeys`, to spare the database a look-up per tap), so
:func:`revoke_api_key` also writes a revocation marker into the shared store (Redis when
configured) before the row's ``revoked_at`` commits, and every use of a remembered key checks
that marker first (:func:`is_revoked`): one store read instead of a database query. The marker
outlives any remembered entry; after it expires the row's ``revoked_at`` is what refuses the key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from tsp_backend.errors import NotFound
from tsp_backend.models import ApiKey, utcnow
from tsp_backend.stores import Store

KEY_PREFIX = "hk_"

REVOCATION_MARKER_TTL_S = 7 * 24 * 3600
"""How long the store keeps a revocation marker (far longer than any process remembers a key)."""


API_KEY_CACHE_S = 30.0
"""How long a process remembers a terminal key it authenticated; a revocation is seen at once all
the same, through the store's revocation marker checked on every use."""

KEY_REQUIRED = "a terminal API key is required: Authorization: Bearer hk_…"
"""Why a request without a live terminal API key is refused (401)."""


def revocation_marker(key_id: int) -> str:
    """The store key that marks API key ``key_id`` revoked."""
    return f"apikey_revoked:{key_id}"


def is_revoked(store: Store, key_id: int) -> bool:
    """Whether the shared store marks API key ``key_id`` revoked."""
    return store.get(revocation_marker(key_id)) is not None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(
    session: Session, name: str, *, kind: str = "terminal", created_by: int | None = None
) -> tuple[ApiKey, str]:
    """A new key row and the key itself (shown once, never stored)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, kind=kind, prefix=key[:10], key_hash=_digest(key), created_by=created_by)
    session.add(row)
    session.flush()
    return row, key


def authenticate_api_key(session: Session, key: str) -> ApiKey | None:
    """The live key row for ``key``, or ``None``."""
    if not key.startswith(KEY_PREFIX):
        return None
    digest = _digest(key)
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, digest):
        return None
    return row


def revoke_api_key(session: Session, store: Store, key_id: int, *, user_id: int, admin: bool) -> ApiKey:
    """Revoke a key (the caller commits): the store's marker at once, ``revoked_at`` on the row.

    Administrators revoke any key, other users the keys they created; any other key is
    ``NotFound`` (nobody learns which ids exist). Revoking a revoked key changes nothing.
    """
    row = session.get(ApiKey, key_id, with_for_update=True)
    if row is None or not (admin or row.created_by == user_id):
        raise NotFound(f"no API key {key_id}")
    store.set(revocation_marker(row.id), b"1", REVOCATION_MARKER_TTL_S)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


class RememberedKeys:
    """The terminal keys this process authenticated, each remembered for :data:`API_KEY_CACHE_S`.

    Every use checks the store's revocation marker, so a key revoked through any process is
    refused at once: here, or with ``check_revoked=False`` by the authorization service, which
    reads the marker in the same store round trip as the token.
    """

    MAX_ENTRIES = 10_000

    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self._keys: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def live(self, session: Session, key: str, *, check_revoked: bool = True) -> int | None:
        """The id of the live API key ``key``, or ``None`` (unknown, revoked)."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        now = self._clock()
        with self._lock:
            known = self._keys.get(digest)
        if known is not None and known[1] > now:
            key_id = known[0]
        else:
            row = authenticate_api_key(session, key)
            if row is None:
                return None
            key_id = row.id
            with self._lock:
                if len(self._keys) > self.MAX_ENTRIES:
                    self._keys.clear()
                self._keys[digest] = (key_id, now + API_KEY_CACHE_S)
        if check_revoked and is_revoked(self._store, key_id):
            with self._lock:
                self._keys.pop(digest, None)
            return None
        return key_id
