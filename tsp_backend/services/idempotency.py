"""Idempotent POSTs: Stripe's recovery-point design and the IETF Idempotency-Key draft.

A request with an ``Idempotency-Key`` goes through three steps:

1. :meth:`IdempotencyService.begin` inserts ``(scope, route, key)`` as IN_FLIGHT in its own
   committed transaction — the unique constraint makes exactly one request win. A loser sees
   the stored row: another body → ``422 idempotency-key-reused``; still in flight →
   ``409 idempotency-request-in-flight``; finished → a :class:`Replay` of the first status and
   body (the API adds ``Idempotent-Replayed: true``).
2. The effect runs, and :meth:`IdempotencyService.complete` stores the response **in the same
   transaction as the effect**: either both commit or neither does.
3. If the effect fails unexpectedly, :meth:`IdempotencyService.release` deletes the IN_FLIGHT row
   so the client may retry; a row whose owner died is taken over after ``lock_s`` seconds.

Keys are scoped by client (``user:<id>``) and route (``POST /api/cards``) and expire after
``ttl_s`` (24 h); :meth:`IdempotencyService.reap` deletes expired rows. The request fingerprint is
an HMAC of the canonical JSON body, so the stored row reveals nothing of a card number.
(IETF draft-ietf-httpapi-idempotency-key-header-06 §2; Stripe, "Implementing Stripe-like
Idempotency Keys in Postgres".)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tsp_backend.errors import IdempotencyInFlight, IdempotencyKeyReused, ValidationFailed
from tsp_backend.models import IdempotencyKey, utcnow

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Claim:
    """This request owns the key; finish with :meth:`IdempotencyService.complete`."""

    id: int
    locked_at: dt.datetime


@dataclass(frozen=True)
class Replay:
    """The key was used before by the same request: answer with the stored response."""

    status: int
    body: str


class IdempotencyService:
    """Claims, completes, replays and reaps idempotency keys."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        secret: bytes,
        *,
        ttl_s: int = 24 * 3600,
        lock_s: int = 60,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self._secret = secret
        self.ttl_s = ttl_s
        self.lock_s = lock_s
        self.clock = clock

    def fingerprint(self, body: Any) -> str:
        """HMAC-SHA256 of the canonical JSON of the request body."""
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
        return hmac.new(self._secret, canonical, hashlib.sha256).hexdigest()

    @staticmethod
    def check_key(key: str) -> str:
        """The key if it is 1–255 visible ASCII characters (draft §2.1 recommends a UUID)."""
        if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
            raise ValidationFailed("Idempotency-Key must be 1 to 255 printable ASCII characters")
        return key

    def begin(self, scope: str, route: str, key: str, request_hash: str) -> Claim | Replay:
        """Claim the key, or learn what happened to it (raises 409/422 problems)."""
        now = self.clock()
        for _ in range(3):
            try:
                with self.sessions() as session, session.begin():
                    row = IdempotencyKey(
                        scope=scope,
                        route=route,
                        key=key,
                        request_hash=request_hash,
                        state="IN_FLIGHT",
                        created_at=now,
                        locked_at=now,
                        expires_at=now + dt.timedelta(seconds=self.ttl_s),
                    )
                    session.add(row)
                    session.flush()
                    return Claim(row.id, now)
            except IntegrityError:
                pass
            outcome = self._existing(scope, route, key, request_hash, now)
            if outcome is not None:
                return outcome
        raise IdempotencyInFlight("a request with this Idempotency-Key is in progress; retry later")

    def _existing(
        self, scope: str, route: str, key: str, request_hash: str, now: dt.datetime
    ) -> Claim | Replay | None:
        with self.sessions() as session, session.begin():
            row = session.scalar(
                select(IdempotencyKey)
                .where(
                    IdempotencyKey.scope == scope, IdempotencyKey.route == route, IdempotencyKey.key == key
                )
                .with_for_update()
            )
            if row is None:
                return None
            if row.expires_at <= now:
                session.delete(row)
                return None
            if not hmac.compare_digest(row.request_hash, request_hash):
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was already used with a different request body"
                )
            if row.state == "DONE":
                return Replay(int(row.response_status or 200), row.response_body or "")
            locked = row.locked_at or row.created_at
            if locked + dt.timedelta(seconds=self.lock_s) <= now:
                row.locked_at = now
                return Claim(row.id, now)
            raise IdempotencyInFlight("a request with this Idempotency-Key is in progress; retry later")

    def complete(self, session: Session, claim: Claim, status: int, body: str) -> None:
        """Store the response in the effect's transaction (``409`` if the claim was taken over)."""
        result = session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.id == claim.id,
                IdempotencyKey.state == "IN_FLIGHT",
                IdempotencyKey.locked_at == claim.locked_at,
            )
            .values(state="DONE", response_status=status, response_body=body)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 1) != 1:
            raise IdempotencyInFlight("this request's Idempotency-Key was taken over by a retry")

    def complete_alone(self, claim: Claim, status: int, body: str) -> None:
        """Store a response in its own transaction (a refusal with no effect to commit)."""
        with self.sessions() as session, session.begin():
            self.complete(session, claim, status, body)

    def release(self, claim: Claim) -> None:
        """Forget an IN_FLIGHT claim whose effect failed, so the client may retry."""
        with self.sessions() as session, session.begin():
            session.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.id == claim.id, IdempotencyKey.state == "IN_FLIGHT"
                )
            )

    def reap(self, now: dt.datetime | None = None) -> int:
        """Delete expired keys; how many."""
        with self.sessions() as session, session.begin():
            result = session.execute(
                delete(IdempotencyKey).where(IdempotencyKey.expires_at <= (now or self.clock()))
            )
            return int(getattr(result, "rowcount", 0) or 0)
