"""Server-side sessions in the store, found by an opaque bearer token.

A session token is 256 random bits (``hs_…``); the store keeps only its SHA-256, with the user,
the device it was opened on and its CSRF token. Indexes per user and per device let logout,
"device lost" and password changes revoke every session at once. Browsers carry the token in
an httpOnly, SameSite=Lax cookie and must echo the CSRF token in ``X-CSRF-Token`` (or a form
field ``csrf_token``) on unsafe requests; API clients send ``Authorization: Bearer <token>``
and need no CSRF token.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

from tsp_backend.stores import Store

TOKEN_PREFIX = "hs_"  # noqa: S105 - a prefix, not a secret
"""Session tokens start with this (terminal API keys start with ``hk_``)."""


@dataclass(frozen=True)
class SessionData:
    """What a session token stands for."""

    user_id: int
    device_id: int | None
    csrf: str
    token_hash: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionManager:
    """Create, look up and revoke sessions."""

    def __init__(self, store: Store, ttl_s: int) -> None:
        self.store = store
        self.ttl_s = ttl_s

    def create(self, user_id: int, device_id: int | None = None) -> tuple[str, SessionData]:
        """A fresh session token and its data."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        data = SessionData(user_id, device_id, secrets.token_urlsafe(32), _hash(token))
        payload = json.dumps({"user_id": user_id, "device_id": device_id, "csrf": data.csrf}).encode()
        self.store.set(f"session:{data.token_hash}", payload, self.ttl_s)
        self.store.sadd(f"user_sessions:{user_id}", data.token_hash, self.ttl_s)
        if device_id is not None:
            self.store.sadd(f"device_sessions:{device_id}", data.token_hash, self.ttl_s)
        return token, data

    def get(self, token: str) -> SessionData | None:
        """The session of a token, or ``None`` if unknown, expired or revoked."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        token_hash = _hash(token)
        raw = self.store.get(f"session:{token_hash}")
        if raw is None:
            return None
        data = json.loads(raw)
        return SessionData(int(data["user_id"]), data.get("device_id"), str(data["csrf"]), token_hash)

    def revoke(self, token: str) -> None:
        """End one session."""
        self.store.delete(f"session:{_hash(token)}")

    def revoke_device(self, device_id: int) -> int:
        """End every session opened on a device; how many were listed."""
        hashes = self.store.smembers(f"device_sessions:{device_id}")
        self.store.delete(*(f"session:{h}" for h in hashes), f"device_sessions:{device_id}")
        return len(hashes)

    def revoke_user(self, user_id: int) -> int:
        """End every session of a user; how many were listed."""
        hashes = self.store.smembers(f"user_sessions:{user_id}")
        self.store.delete(*(f"session:{h}" for h in hashes), f"user_sessions:{user_id}")
        return len(hashes)
