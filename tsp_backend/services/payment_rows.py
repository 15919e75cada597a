"""The rows an authorization writes: spent counters, the transaction, its audit row.

The decision itself (:mod:`tsp_backend.services.authorization`) reads and computes; every write
of an authorization is here, each a statement of its own, on SQLite and PostgreSQL alike:

* :func:`consume` — the ATC window, the ATC's insert under the unique (card, ATC), one use of
  the limited-use key; with the token's vault entry. On PostgreSQL one round trip.
* :func:`insert` — a transaction row, ``pending`` before the issuer is asked, or final;
* :func:`settle` — ``pending`` → the issuer's decision, only if still ``pending`` (a retry or
  the reconciliation may have settled it first: exactly one writer wins);
* :func:`load` — a row as the answer it stands for.

On PostgreSQL the two writes of an approval are one statement each, on a connection in
autocommit mode — one round trip and one commit apiece: :func:`intent_pg` (claim the key, spend
the ATC and the key use, insert the ``pending`` row, read the vault entry) and
:func:`settle_pg` (the decision, its audit row and the stored answer). Every other path — a
refusal, a replayed key, a retry — takes the general statements above in one transaction.

The transaction's status is one of :data:`STATUSES`; ``pending`` and ``in_doubt`` are the two
that the reconciliation settles.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from tsp_backend.db import driver_execute
from tsp_backend.models import Base, LukUse, Transaction, UsedATC, VaultEntry, utcnow

STATUSES = ("pending", "approved", "declined", "in_doubt", "reversed")
"""A transaction's states: ``pending`` — written before the issuer is asked, the issuer's answer
not yet recorded; ``in_doubt`` — the issuer gave no answer in time, or the request died after
asking it; ``reversed`` — the issuer approved but the terminal never learnt it, so it was
reversed. ``approved`` and ``declined`` are final."""

_TRANSACTIONS = Base.metadata.tables["transactions"]
_INSERT_TRANSACTION = insert(_TRANSACTIONS).returning(_TRANSACTIONS.c.id)
_INSERT_AUDIT = insert(Base.metadata.tables["audit_events"])


@dataclass(frozen=True)
class Spent:
    """What :func:`consume` found: the window's top ATC, whether the ATC went in, the key's uses."""

    top: int | None
    replayed: bool
    inserted: bool
    uses: int | None
    entry: VaultEntry | None


def consume(
    session: Session,
    *,
    card_id: int,
    atc: int,
    luk_index: int,
    max_uses: int,
    vault_id: int,
    lookback: int,
    lookahead: int,
) -> Spent:
    """Spend ``atc`` and one use of LUK ``luk_index`` if the ATC is inside the window.

    The ATC goes in only once (unique (card, ATC)) and only inside
    ``[top - lookback, top + lookahead]``; the key's use count rises only if the ATC went in
    and stays within ``max_uses``. PostgreSQL does it in one statement (:data:`_CONSUME_PG`).
    """
    if session.get_bind().dialect.name == "postgresql":
        row = driver_execute(
            session,
            _CONSUME_PG,
            {
                "card": card_id,
                "atc": atc,
                "now": utcnow(),
                "lookback": lookback,
                "lookahead": lookahead,
                "luk": luk_index,
                "max_uses": max_uses,
                "vault": vault_id,
            },
        ).fetchone()
        return Spent(row[0], bool(row[1]), row[2] is not None, row[3], _vault_entry(row[4:9]))
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    top, same = session.execute(
        select(func.max(UsedATC.atc), func.count().filter(UsedATC.atc == atc)).where(
            UsedATC.card_id == card_id
        )
    ).one()
    inside = not same and (top is None or atc >= top - lookback) and atc <= (top or 0) + lookahead
    used = uses = None
    if inside:
        used = session.execute(
            sqlite_insert(UsedATC)
            .values(card_id=card_id, atc=atc, used_at=utcnow())
            .on_conflict_do_nothing(index_elements=["card_id", "atc"])
            .returning(UsedATC.id)
        ).scalar_one_or_none()
    if used is not None:
        uses = session.execute(
            sqlite_insert(LukUse)
            .values(card_id=card_id, luk_index=luk_index, uses=1)
            .on_conflict_do_update(
                index_elements=["card_id", "luk_index"],
                set_={"uses": LukUse.__table__.c.uses + 1},
                where=LukUse.__table__.c.uses < max_uses,
            )
            .returning(LukUse.uses)
        ).scalar_one_or_none()
    return Spent(top, bool(same), used is not None, uses, session.get(VaultEntry, vault_id))


_CONSUME_PG = """
    WITH w AS (
        SELECT max(atc) AS top, count(*) FILTER (WHERE atc = %(atc)s) AS same
        FROM used_atcs WHERE card_id = %(card)s
    ), a AS (
        INSERT INTO used_atcs (card_id, atc, used_at)
        SELECT %(card)s, %(atc)s, %(now)s FROM w
        WHERE w.same = 0
          AND (w.top IS NULL OR %(atc)s >= w.top - %(lookback)s)
          AND %(atc)s <= coalesce(w.top, 0) + %(lookahead)s
        ON CONFLICT (card_id, atc) DO NOTHING
        RETURNING id
    ), l AS (
        INSERT INTO luk_uses (card_id, luk_index, uses)
        SELECT %(card)s, %(luk)s, 1 FROM a
        ON CONFLICT (card_id, luk_index) DO UPDATE SET uses = luk_uses.uses + 1
        WHERE luk_uses.uses < %(max_uses)s
        RETURNING uses
    )
    SELECT w.top, w.same, (SELECT id FROM a), (SELECT uses FROM l),
           v.id, v.fingerprint, v.key_version, v.nonce, v.ciphertext
    FROM w LEFT JOIN vault_entries v ON v.id = %(vault)s
    """
""":func:`consume` in one round trip. A concurrent copy of the same cryptogram waits on the
unique index and then finds the ATC taken."""


def _vault_entry(columns: Any) -> VaultEntry | None:
    """A vault entry from (id, fingerprint, key version, nonce, ciphertext), or ``None`` for no row."""
    if columns[0] is None:
        return None
    entry_id, fingerprint, key_version, nonce, ciphertext = columns
    return VaultEntry(
        id=entry_id, fingerprint=fingerprint, key_version=key_version, nonce=nonce, ciphertext=ciphertext
    )


def insert_transaction(session: Session, row: dict[str, Any]) -> int:
    """Insert a transaction row (the columns of :class:`~tsp_backend.models.Transaction`); its id."""
    return int(session.execute(_INSERT_TRANSACTION, row).scalar_one())


def insert_audit(session: Session, event: dict[str, Any]) -> None:
    """Insert one audit row (the columns of :class:`~tsp_backend.models.AuditEvent`)."""
    session.execute(_INSERT_AUDIT, event)


def settle(
    session: Session,
    transaction_id: int,
    *,
    status: str,
    code: str,
    reason: str,
    auth_code: str | None,
    from_status: str = "pending",
) -> bool:
    """Record the decision on a ``from_status`` row; whether this call did (exactly one writer does)."""
    now = utcnow()
    result = session.execute(
        update(_TRANSACTIONS)
        .where(_TRANSACTIONS.c.id == transaction_id, _TRANSACTIONS.c.status == from_status)
        .values(
            status=status,
            approved=status == "approved",
            response_code=code,
            reason=reason[:120],
            auth_code=auth_code,
            settled_at=None if status == "in_doubt" else now,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


def load(session: Session, transaction_id: int) -> Transaction | None:
    """The transaction row ``transaction_id`` as it is now (read past the session's cache)."""
    return session.scalar(
        select(Transaction).where(Transaction.id == transaction_id).execution_options(populate_existing=True)
    )


def audit_event(
    *, actor: str, public_id: str, code: str, status: str, origin: str | None, detail: dict[str, Any]
) -> dict[str, Any]:
    """The audit row of an authorization's decision."""
    return {
        "at": utcnow(),
        "actor": actor,
        "action": "payment.authorize",
        "target": f"txn:{public_id}",
        "outcome": f"{code} {status}" if code else status,
        "origin": origin[:200] if origin else None,
        "detail": json.dumps(detail, sort_keys=True),
    }


def older_than(seconds: float) -> dt.datetime:
    """The moment ``seconds`` ago."""
    return utcnow() - dt.timedelta(seconds=seconds)


@dataclass(frozen=True)
class Pending:
    """What asking the issuer and settling need of a ``pending`` row."""

    id: int
    public_id: str
    card_id: int | None
    network: str | None
    channel: str
    amount: int
    currency: str
    merchant_id: str | None
    mcc: str | None
    issuer_ref: str | None

    @classmethod
    def of_row(cls, transaction_id: int, row: dict[str, Any]) -> Pending:
        """The pending part of a row about to be (or just) inserted under ``transaction_id``."""
        return cls(
            transaction_id,
            public_id=row["public_id"],
            card_id=row["card_id"],
            network=row["network"],
            channel=row["channel"],
            amount=row["amount"],
            currency=row["currency"],
            merchant_id=row["merchant_id"],
            mcc=row["mcc"],
            issuer_ref=row["issuer_ref"],
        )

    @classmethod
    def of(cls, txn: Transaction) -> Pending:
        """The pending part of a loaded row."""
        return cls(
            txn.id,
            txn.public_id,
            txn.card_id,
            txn.network,
            txn.channel,
            txn.amount,
            txn.currency,
            txn.merchant_id,
            txn.mcc,
            txn.issuer_ref,
        )


@dataclass(frozen=True)
class Intent:
    """What :func:`intent_pg` did: whether it claimed the key, spent the ATC, wrote the row."""

    locked: bool
    claim_id: int | None
    transaction_id: int
    """The row's id, allocated before the insert; a refusal's row takes it too."""
    inserted: bool
    spent: Spent


_INTENT_PG = """
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
    ), w AS (
        SELECT max(atc) AS top, count(*) FILTER (WHERE atc = %(atc)s) AS same
        FROM used_atcs WHERE card_id = %(card_id)s
    ), a AS (
        INSERT INTO used_atcs (card_id, atc, used_at)
        SELECT %(card_id)s, %(atc)s, %(now)s FROM w
        WHERE EXISTS (SELECT 1 FROM claim) AND w.same = 0
          AND (w.top IS NULL OR %(atc)s >= w.top - %(lookback)s)
          AND %(atc)s <= coalesce(w.top, 0) + %(lookahead)s
        ON CONFLICT (card_id, atc) DO NOTHING
        RETURNING id
    ), l AS (
        INSERT INTO luk_uses (card_id, luk_index, uses)
        SELECT %(card_id)s, %(luk_index)s, 1 FROM a
        ON CONFLICT (card_id, luk_index) DO UPDATE SET uses = luk_uses.uses + 1
        WHERE luk_uses.uses < %(max_uses)s
        RETURNING uses
    ), t AS (
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
           w.top, w.same, (SELECT id FROM a), (SELECT uses FROM l),
           v.id, v.fingerprint, v.key_version, v.nonce, v.ciphertext
    FROM lock CROSS JOIN w LEFT JOIN vault_entries v ON v.id = %(vault_id)s
    """
"""The intent of an authorization in one statement (PostgreSQL): the key claimed (with the
advisory lock of :mod:`tsp_backend.services.idempotency`) and linked to the row's pre-allocated
id; the ATC and key use spent only if the claim was won; the ``pending`` row only if both were
spent. A conflicting key spends nothing: the caller then takes the general path."""


def intent_pg(connection: Any, params: dict[str, Any]) -> Intent:
    """Run :data:`_INTENT_PG` on a psycopg connection in autocommit mode."""
    row = connection.execute(_INTENT_PG, params, prepare=True).fetchone()
    spent = Spent(row[4], bool(row[5]), row[6] is not None, row[7], _vault_entry(row[8:13]))
    return Intent(bool(row[0]), row[1], int(row[2]), row[3] is not None, spent)


_SETTLE_PG = """
    WITH s AS (
        UPDATE transactions
        SET status = %(status)s, approved = %(approved)s, response_code = %(code)s,
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
