"""API keys for terminals and merchants: ``hk_`` + 256 random bits, stored as SHA-256.

A key with 256 bits of entropy needs no slow hash (OWASP ASVS 4.0 §2.9); look-up is by
digest and the comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from tsp_backend.models import ApiKey

KEY_PREFIX = "hk_"


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
