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
   so the client may retry. A claim is a *lease* of ``lease_s`` seconds — the request's own
   deadline — so a row whose owner died (a worker killed mid-request) is taken over by the
   first retry after the deadline, never held for longer.

A route may instead *claim in its own transaction* (:meth:`IdempotencyService.claim`): the
IN_FLIGHT row is inserted with ``INSERT … ON CONFLICT DO NOTHING`` by the transaction that
performs the first step of the effect. On PostgreSQL the same statement first takes a
transaction-scoped advisory lock on the key (``pg_try_advisory_xact_lock``): a concurrent request
with the same key does not get it and is answered ``409 idempotency-request-in-flight`` at once
instead of waiting on the unique index; on SQLite the database's single writer orders the claims.
An effect that must outlive its transaction — an authorization, which commits its intent before
it asks the issuer — links the claim to what it wrote (:meth:`IdempotencyService.attach`); the
retry that takes the claim over after the lease finds that link in :attr:`Claim.transaction_id`
and finishes the same effect instead of starting another. A refusal whose effect was rolled back
is stored by :meth:`IdempotencyService.store`.

A route that claims before its effect uses :class:`KeyUse`, the one owner of the policy: a
:class:`Replay` is answered as stored; the effect's answer is stored in its transaction; a refusal
(4xx other than 409/429) is stored and replayed like a success; a conflict, a rate limit, a server
error or an unexpected exception releases the key so the client may retry. A request that finds
the key in flight is answered ``409 idempotency-request-in-flight`` at once, never kept waiting.

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
from types import TracebackType
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tsp_backend.db import driver_execute
from tsp_backend.errors import (
    IdempotencyInFlight,
    IdempotencyKeyReused,
    TSPError,
    ValidationFailed,
)
from tsp_backend.models import Base, IdempotencyKey, utcnow

MAX_KEY_LENGTH = 255
IN_FLIGHT = "a request with this Idempotency-Key is in progress; retry later"
"""The detail of every ``409 idempotency-request-in-flight``."""


@dataclass(frozen=True)
class Claim:
    """This request owns the key; finish with :meth:`IdempotencyService.complete`.

    ``transaction_id`` is set when the claim was taken over from a request that died after it
    had written a transaction (:meth:`IdempotencyService.attach`): the retry finishes that one.
    """

    id: int
    locked_at: dt.datetime
    transaction_id: int | None = None


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
        lease_s: float = 5.0,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self._secret = secret
        self.ttl_s = ttl_s
        self.lease_s = lease_s
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
        raise IdempotencyInFlight(IN_FLIGHT)

    def claim(self, session: Session, scope: str, route: str, key: str, request_hash: str) -> Claim | Replay:
        """Claim the key inside ``session``'s transaction (module docstring; raises 409/422 problems).

        The caller performs the effect, calls :meth:`complete` and commits in the same
        transaction (or links the claim to what it committed with :meth:`attach`); on a :class:`Replay`
        or an error it rolls back.
        """
        now = self.clock()
        params = {
            "scope": scope,
            "route": route,
            "key": key,
            "lock": self.lock_name(scope, route, key),
            "request_hash": request_hash,
            "now": now,
            "expires_at": now + dt.timedelta(seconds=self.ttl_s),
        }
        postgres = session.get_bind().dialect.name == "postgresql"
        for _ in range(2):
            if postgres:
                locked, claimed = driver_execute(session, _CLAIM_PG, params).fetchone()
                if not locked:
                    raise IdempotencyInFlight(IN_FLIGHT)
            else:
                claimed = session.execute(_CLAIM, params).scalar_one_or_none()
            if claimed is not None:
                return Claim(int(claimed), now)
            outcome = self._decide_existing(session, scope, route, key, request_hash, now)
            if outcome is not None:
                return outcome
        raise IdempotencyInFlight(IN_FLIGHT)

    @staticmethod
    def lock_name(scope: str, route: str, key: str) -> str:
        """The text whose hash names the key's advisory lock (PostgreSQL)."""
        return f"{scope}\x1f{route}\x1f{key}"

    @staticmethod
    def attach(session: Session, claim: Claim, transaction_id: int) -> None:
        """Link the claim to the transaction its request wrote, in that transaction (module docstring)."""
        session.execute(
            update(_TABLE)
            .where(_TABLE.c.id == claim.id, _TABLE.c.locked_at == claim.locked_at)
            .values(transaction_id=transaction_id)
        )

    def store(self, scope: str, route: str, key: str, request_hash: str, status: int, body: str) -> None:
        """Store a finished answer under a key nobody holds (a refusal after :meth:`claim`'s rollback)."""
        now = self.clock()
        with self.sessions() as session, session.begin():
            session.execute(
                _store(session.get_bind().dialect.name),
                {
                    "scope": scope,
                    "route": route,
                    "key": key,
                    "request_hash": request_hash,
                    "now": now,
                    "expires_at": now + dt.timedelta(seconds=self.ttl_s),
                    "status": status,
                    "body": body,
                },
            )

    def _existing(
        self, scope: str, route: str, key: str, request_hash: str, now: dt.datetime
    ) -> Claim | Replay | None:
        with self.sessions() as session, session.begin():
            return self._decide_existing(session, scope, route, key, request_hash, now)

    def _decide_existing(
        self, session: Session, scope: str, route: str, key: str, request_hash: str, now: dt.datetime
    ) -> Claim | Replay | None:
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
        if locked + dt.timedelta(seconds=self.lease_s) <= now:
            row.locked_at = now
            session.flush()
            return Claim(row.id, now, row.transaction_id)
        raise IdempotencyInFlight(IN_FLIGHT)

    def complete(self, session: Session, claim: Claim, status: int, body: str) -> None:
        """Store the response in the effect's transaction (``409`` if the claim was taken over)."""
        params = {
            "claim_id": claim.id,
            "claim_locked_at": claim.locked_at,
            "answer_status": status,
            "answer": body,
        }
        if session.get_bind().dialect.name == "postgresql":
            session.flush()
            result = driver_execute(session, _COMPLETE_PG, params)
        else:
            result = session.execute(_COMPLETE, params)
        if getattr(result, "rowcount", 1) != 1:
            raise IdempotencyInFlight("this request's Idempotency-Key was taken over by a retry")

    @staticmethod
    def answer_of(session: Session, claim: Claim) -> Replay | None:
        """The answer stored under the claim's key by someone else (a retry, the reconciliation)."""
        row = session.execute(
            select(_TABLE.c.state, _TABLE.c.response_status, _TABLE.c.response_body).where(
                _TABLE.c.id == claim.id
            )
        ).one_or_none()
        if row is None or row[0] != "DONE":
            return None
        return Replay(int(row[1] or 200), row[2] or "")

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


def stored_refusal(status: int) -> bool:
    """Whether a refusal with ``status`` is stored under its key and replayed like a success.

    A client error is the request's own answer; a conflict (409) or a rate limit (429) passes, and
    a server error is the service's: those release the key so that a retry may succeed.

    >>> [stored_refusal(s) for s in (400, 404, 409, 422, 429, 503)]
    [True, True, False, True, False, False]
    """
    return 400 <= status < 500 and status not in (409, 429)


class KeyUse:
    """One request's use of its ``Idempotency-Key``, as a context manager (module docstring).

    ``with KeyUse(...) as use:`` claims the key; :attr:`replay` is the stored answer when the key
    was used before (the block answers it and does nothing else). Otherwise the block performs the
    effect in ``session`` and ends with :meth:`complete` before it commits. A :class:`TSPError`
    leaving the block is settled by :meth:`refuse`; any other exception releases the key. Both roll
    ``session`` back first. ``instance`` is the problem documents' ``instance`` (the request path).
    """

    def __init__(
        self,
        service: IdempotencyService,
        session: Session,
        scope: str,
        route: str,
        key: str,
        fingerprint: str,
        *,
        instance: str,
    ) -> None:
        self.service = service
        self.session = session
        self.scope, self.route, self.key, self.fingerprint = scope, route, key, fingerprint
        self.instance = instance
        self.replay: Replay | None = None
        self._claim: Claim | None = None

    def __enter__(self) -> KeyUse:
        outcome = self.service.begin(self.scope, self.route, self.key, self.fingerprint)
        if isinstance(outcome, Replay):
            self.replay = outcome
        else:
            self._claim = outcome
        return self

    def complete(self, status: int, body: str) -> None:
        """Store the answer in the effect's transaction (the caller commits)."""
        assert self._claim is not None, "a replayed request has no effect to complete"
        self.service.complete(self.session, self._claim, status, body)

    def refuse(self, error: TSPError) -> dict[str, Any]:
        """End the claim of a request refused with ``error`` (:func:`stored_refusal`); its problem."""
        self.session.rollback()
        problem = error.to_problem(instance=self.instance)
        claim, self._claim = self._claim, None
        if claim is not None:
            if stored_refusal(error.status):
                self.service.complete_alone(claim, error.status, json.dumps(problem))
            else:
                self.service.release(claim)
        return problem

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None or self._claim is None:
            return
        if isinstance(exc, TSPError):
            self.refuse(exc)
            return
        self.session.rollback()
        claim, self._claim = self._claim, None
        self.service.release(claim)


_CLAIM_PG = """
    WITH lock AS (SELECT pg_try_advisory_xact_lock(hashtextextended(%(lock)s, 0)) AS got),
    claim AS (
        INSERT INTO idempotency_keys
            (scope, route, key, request_hash, state, created_at, locked_at, expires_at)
        SELECT %(scope)s, %(route)s, %(key)s, %(request_hash)s, 'IN_FLIGHT', %(now)s, %(now)s, %(expires_at)s
        FROM lock WHERE lock.got
        ON CONFLICT (scope, route, key) DO NOTHING
        RETURNING id
    )
    SELECT lock.got, (SELECT id FROM claim) FROM lock
    """
"""Claim a key in the caller's transaction: (got the key's lock, id of the new row or NULL)."""

_TABLE = Base.metadata.tables["idempotency_keys"]

def _insert_unless_taken(dialect_insert: Any, **values: Any) -> Any:
    """``INSERT … ON CONFLICT (scope, route, key) DO NOTHING`` of a key row, from the usual parameters."""
    return (
        dialect_insert(_TABLE)
        .values(
            scope=bindparam("scope"),
            route=bindparam("route"),
            key=bindparam("key"),
            request_hash=bindparam("request_hash"),
            created_at=bindparam("now"),
            locked_at=bindparam("now"),
            expires_at=bindparam("expires_at"),
            **values,
        )
        .on_conflict_do_nothing(index_elements=["scope", "route", "key"])
    )


_CLAIM = _insert_unless_taken(sqlite_insert, state="IN_FLIGHT").returning(_TABLE.c.id)
"""Claim a key in the caller's transaction (SQLite): the id of the new row, or no row."""


def _store(dialect: str) -> Any:
    """Store a finished answer unless the key is taken."""
    return _insert_unless_taken(
        pg_insert if dialect == "postgresql" else sqlite_insert,
        state="DONE",
        response_status=bindparam("status"),
        response_body=bindparam("body"),
    )


_COMPLETE = (
    update(_TABLE)
    .where(
        _TABLE.c.id == bindparam("claim_id"),
        _TABLE.c.state == "IN_FLIGHT",
        _TABLE.c.locked_at == bindparam("claim_locked_at"),
    )
    .values(state="DONE", response_status=bindparam("answer_status"), response_body=bindparam("answer"))
)
"""Mark a claim DONE with its answer, if it is still this request's."""

_COMPLETE_PG = """
    UPDATE idempotency_keys
    SET state = 'DONE', response_status = %(answer_status)s, response_body = %(answer)s
    WHERE id = %(claim_id)s AND state = 'IN_FLIGHT' AND locked_at = %(claim_locked_at)s
    """
""":data:`_COMPLETE` as a prepared statement on PostgreSQL."""
