"""The two writes of an approval on PostgreSQL, one statement and one commit each.

An authorization (:mod:`tsp_backend.services.authorization`) writes its intent before asking the
issuer and settles after (:mod:`tsp_backend.services.settlement`). On PostgreSQL each is one
statement on a connection in autocommit mode — one round trip and one commit apiece:
:func:`intent_pg` (claim the key, spend the ATC and the key use, insert the ``pending`` row,
read the vault entry) and :func:`settle_pg` (the decision, its audit row and the stored
answer). SQLite takes the general statements of :mod:`tsp_backend.services.payment_rows` in one
transaction; :func:`settle_with_answer` is the settlement in either form.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tsp_backend.services.payment_rows import Outcome, Spent, insert_audit, settle, spend_pg


@dataclass(frozen=True)
class Intent:
    """What :func:`intent_pg` did: whether it claimed the key, spent the ATC, wrote the row."""

    locked: bool
    claim_id: int | None
    transaction_id: int
    """The row's id, allocated before the insert; a refusal's row takes it too."""
    inserted: bool
    spent: Spent


_INTENT_PG = f"""
    WITH ids AS (SELECT nextval(pg_get_serial_sequence('transactions', 'id')) AS txn),
    lock AS (SELECT pg_try_advisory_xact_lock(hashtextextended(%(lock)s, 0)) AS got),
    claim AS (
        INSERT INTO idempotency_keys
            (scope, route, key, request_hash, state, created_at, locked_at, expires_at, transaction_id)
        SELECT %(scope)s, %(route)s, %(key)s, %(request_hash)s, 'IN_FLIGHT', %(now)s, %(now)s,
               %(expires_at)s, ids.txn
        FROM lock, ids WHERE lock.got
        ON CONFLICT (scope, route, key) DO NOTHING
        RETURNING id
    ), {spend_pg(gate="EXISTS (SELECT 1 FROM claim) AND")}, t AS (
        INSERT INTO transactions (
            id, public_id, card_id, user_id, amount, currency, merchant_id, merchant_name, mcc, terminal_id,
            channel, network, atc, approved, response_code, auth_code, reason, status, luk_index,
            issuer_ref, api_key_id, created_at, settled_at
        )
        SELECT ids.txn, %(public_id)s, %(card_id)s, %(user_id)s, %(amount)s, %(currency)s, %(merchant_id)s,
               %(merchant_name)s, %(mcc)s, %(terminal_id)s, %(channel)s, %(network)s, %(atc)s,
               false, '', NULL, %(reason)s, 'pending', %(luk_index)s, %(issuer_ref)s,
               %(api_key_id)s, %(now)s, NULL
        FROM ids WHERE EXISTS (SELECT 1 FROM l)
        RETURNING id
    )
    SELECT lock.got, (SELECT id FROM claim), (SELECT txn FROM ids), (SELECT id FROM t),
           w.top, w.same, w.below, w.above, (SELECT id FROM a), (SELECT uses FROM l),
           v.id, v.fingerprint, v.key_version, v.nonce, v.ciphertext
    FROM lock CROSS JOIN w LEFT JOIN vault_entries v ON v.id = %(vault_id)s
    """  # noqa: S608 - placeholders and constants only
"""The intent of an authorization in one statement (PostgreSQL): the key claimed (with the
advisory lock of :mod:`tsp_backend.services.idempotency`) and linked to the row's pre-allocated
id; the ATC and key use spent only if the claim was won; the ``pending`` row only if both were
spent. A conflicting key spends nothing: the caller then takes the general path."""


def intent_pg(connection: Any, params: dict[str, Any]) -> Intent:
    """Run :data:`_INTENT_PG` on a psycopg connection in autocommit mode."""
    row = connection.execute(_INTENT_PG, params, prepare=True).fetchone()
    spent = Spent.of_columns(row[4:])
    return Intent(bool(row[0]), row[1], int(row[2]), row[3] is not None, spent)


_SETTLE_PG = """
    WITH s AS (
        UPDATE transactions
        SET status = %(status)s, approved = %(approved)s, response_code = %(response_code)s,
            reason = %(reason)s, auth_code = %(auth_code)s, settled_at = %(settled_at)s
        WHERE id = %(transaction_id)s AND status = 'pending'
        RETURNING id
    ), a AS (
        INSERT INTO audit_events (at, actor, action, target, outcome, origin, detail)
        SELECT %(at)s, %(actor)s, %(action)s, %(target)s, %(outcome)s, %(origin)s, %(detail)s FROM s
    ), c AS (
        UPDATE idempotency_keys
        SET state = 'DONE', response_status = 200, response_body = %(answer)s
        WHERE id = %(claim_id)s AND state = 'IN_FLIGHT' AND locked_at = %(claim_locked_at)s
          AND EXISTS (SELECT 1 FROM s)
        RETURNING id
    )
    SELECT (SELECT id FROM s), (SELECT id FROM c)
    """
"""The decision on a ``pending`` row, its audit row and the stored answer in one statement
(PostgreSQL); nothing if the row was settled by someone else first."""


def settle_pg(connection: Any, params: dict[str, Any]) -> tuple[bool, bool]:
    """Run :data:`_SETTLE_PG` in autocommit mode: (this call settled the row, and stored the answer)."""
    row = connection.execute(_SETTLE_PG, params, prepare=True).fetchone()
    return row[0] is not None, row[1] is not None


@contextmanager
def autocommit(session: Session) -> Iterator[Any]:
    """A psycopg connection of ``session``'s engine in autocommit mode: one statement, one commit."""
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        yield connection.connection.driver_connection


def settle_with_answer(
    session: Session, transaction_id: int, outcome: Outcome, *, event: dict[str, Any], claim: Any, answer: str
) -> str | None:
    """Record the issuer's decision on a ``pending`` row with its audit row.

    ``"answered"``: settled, and on PostgreSQL ``answer`` stored under ``claim`` in the same
    statement (:func:`settle_pg`, committed); ``"settled"``: settled in the session's
    transaction, the answer still to store; ``None``: someone else settled the row first.
    """
    if session.get_bind().dialect.name == "postgresql":
        params = {
            **event,
            **outcome.columns(),
            "transaction_id": transaction_id,
            "answer": answer,
            "claim_id": claim.id,
            "claim_locked_at": claim.locked_at,
        }
        with autocommit(session) as connection:
            settled, _stored = settle_pg(connection, params)
        return "answered" if settled else None
    if settle(session, transaction_id, outcome):
        insert_audit(session, event)
        return "settled"
    return None
