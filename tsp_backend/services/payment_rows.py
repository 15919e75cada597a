"""The rows an authorization writes: spent counters, the transaction, its audit row.

The decision itself (:mod:`tsp_backend.services.verdict`) only computes; the reads it needs and
every write of an authorization are here, each a statement of its own, on SQLite and
PostgreSQL alike:

* :func:`token_snapshot`, :func:`card_owner`, :func:`vault_entry_of` — the reads;
* :func:`consume` — the ATC window, the ATC's insert under the unique (card, ATC), one use of
  the limited-use key; with the token's vault entry. On PostgreSQL one round trip.
* :func:`insert_transaction` (:func:`transaction_row`), :func:`insert_final` — a transaction
  row, ``pending`` before the issuer is asked, or final (with its audit row);
* :func:`settle` — ``pending`` → the issuer's decision (:class:`Outcome`), only if still
  ``pending`` (a retry or the reconciliation may have settled it first: exactly one writer wins);
* :func:`load` — a row as the answer it stands for.

On PostgreSQL the two writes of an approval are one statement each
(:mod:`tsp_backend.services.payment_intent`). Every other path — a refusal, a replayed key, a
retry — takes the general statements above in one transaction.

The ATC window
--------------
An ATC is accepted once per token (unique constraint), and only within
``[highest seen - ATC_LOOKBACK, highest seen + ATC_LOOKAHEAD]``: :data:`ATC_LOOKBACK` (32)
lets cryptograms that arrive out of order pass, :data:`ATC_LOOKAHEAD` (100) refuses a counter
that jumped further than a wallet plausibly taps without going online (cryptograms declined on
the phone also consume ATCs). The window is written once, as the query :func:`_window`: SQLite
runs it and inserts only when it says the ATC is inside; on PostgreSQL it is the first CTE of
both one-statement spends (:data:`_CONSUME_PG` and the intent's), which insert on the same
condition. Its answer (below, above, used) also names the refusal (:meth:`Spent.refusal`), so
no form recomputes the bounds.

The transaction's status is one of :data:`STATUSES`; ``pending`` and ``in_doubt`` are the two
that the reconciliation settles.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.orm import Session

from tsp_backend.db import driver_execute
from tsp_backend.models import (
    Base,
    Card,
    IssuerAction,
    KeyBatch,
    LukUse,
    Transaction,
    UsedATC,
    VaultEntry,
    utcnow,
)
from tsp_backend.services.verdict import AuthorizationRequest, Decline, ResponseCode, TokenSnapshot

STATUSES = ("pending", "approved", "declined", "in_doubt", "reversed")
"""A transaction's states: ``pending`` — written before the issuer is asked, the issuer's answer
not yet recorded; ``in_doubt`` — the issuer gave no answer in time, or the request died after
asking it; ``reversed`` — the issuer approved but the terminal never learnt it, so it was
reversed. ``approved`` and ``declined`` are final."""

_TRANSACTIONS = Base.metadata.tables["transactions"]
_INSERT_TRANSACTION = insert(_TRANSACTIONS).returning(_TRANSACTIONS.c.id)
_INSERT_AUDIT = insert(Base.metadata.tables["audit_events"])


ATC_LOOKBACK = 32
"""How far below the highest ATC seen an unused ATC is still accepted (module docstring)."""

ATC_LOOKAHEAD = 100
"""How far above the highest ATC seen an ATC is accepted."""


def _window(param: Callable[[str], str]) -> str:
    """The ATC window as one query: the highest ATC of the card, whether ``atc`` was used, and
    whether it lies below or above the window — in the parameter style ``param`` spells."""
    atc, card = param("atc"), param("card_id")
    return f"""
        SELECT max(atc) AS top, count(*) FILTER (WHERE atc = {atc}) AS same,
               coalesce({atc} < max(atc) - {ATC_LOOKBACK}, false) AS below,
               {atc} > coalesce(max(atc), 0) + {ATC_LOOKAHEAD} AS above
        FROM used_atcs WHERE card_id = {card}"""  # noqa: S608 - placeholders and constants only


def spend_pg(gate: str) -> str:
    """The CTEs ``w`` (the window), ``a`` (the ATC, inserted only inside the window and when
    ``gate`` holds) and ``l`` (the key use, only if the ATC went in), for PostgreSQL."""
    return f"""w AS ({_window(lambda name: f"%({name})s")}
    ), a AS (
        INSERT INTO used_atcs (card_id, atc, used_at)
        SELECT %(card_id)s, %(atc)s, %(now)s FROM w
        WHERE {gate} w.same = 0 AND NOT w.below AND NOT w.above
        ON CONFLICT (card_id, atc) DO NOTHING
        RETURNING id
    ), l AS (
        INSERT INTO luk_uses (card_id, luk_index, uses)
        SELECT %(card_id)s, %(luk_index)s, 1 FROM a
        ON CONFLICT (card_id, luk_index) DO UPDATE SET uses = luk_uses.uses + 1
        WHERE luk_uses.uses < %(max_uses)s
        RETURNING uses
    )"""  # noqa: S608 - placeholders and constants only


_WINDOW_SQLITE = text(_window(lambda name: f":{name}"))


@dataclass(frozen=True)
class Spent:
    """What :func:`consume` found: the window's top ATC, whether the ATC was used before or lies
    outside the window, whether it went in, the key's uses, the token's vault entry."""

    top: int | None
    replayed: bool
    below: bool
    above: bool
    inserted: bool
    uses: int | None
    entry: VaultEntry | None

    @classmethod
    def of_columns(cls, row: Any) -> Spent:
        """From (top, same, below, above, ATC row id, uses, *vault entry columns)."""
        top, same, below, above, used, uses = row[:6]
        return cls(top, bool(same), bool(below), bool(above), used is not None, uses, _vault_entry(row[6:11]))

    def refusal(self) -> Decline | None:
        """The refusal of a spend that did not go through (ATC window, replay, key uses), if any.

        An ATC inside the window that still did not go in was taken by a concurrent copy: a replay.
        """
        fraud = ResponseCode.SUSPECTED_FRAUD
        if not self.inserted:
            if self.top is not None and not self.replayed:
                if self.below:
                    return Decline(fraud, "the ATC is too far below the highest seen")
                if self.above:
                    return Decline(fraud, "the ATC jumped too far above the highest seen")
            return Decline(fraud, "the cryptogram's ATC was used before (replay)")
        if self.uses is None:
            reason = "the limited-use key has made all its cryptograms; replenish"
            return Decline(ResponseCode.FREQUENCY_LIMIT, reason)
        return None


def consume(
    session: Session, *, card_id: int, atc: int, luk_index: int, max_uses: int, vault_id: int
) -> Spent:
    """Spend ``atc`` and one use of LUK ``luk_index`` if the ATC is inside the window.

    The ATC goes in only once (unique (card, ATC)) and only inside
    ``[top - ATC_LOOKBACK, top + ATC_LOOKAHEAD]``; the key's use count rises only if the ATC
    went in and stays within ``max_uses``. PostgreSQL does it in one statement (:data:`_CONSUME_PG`).
    """
    params = {
        "card_id": card_id, "atc": atc, "now": utcnow(), "luk_index": luk_index, "max_uses": max_uses,
    }
    if session.get_bind().dialect.name == "postgresql":
        row = driver_execute(session, _CONSUME_PG, {**params, "vault_id": vault_id}).fetchone()
        return Spent.of_columns(row)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    top, same, below, above = session.execute(_WINDOW_SQLITE, params).one()
    used = uses = None
    if not same and not below and not above:
        used = session.execute(
            sqlite_insert(UsedATC)
            .values(card_id=card_id, atc=atc, used_at=params["now"])
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
    entry = session.get(VaultEntry, vault_id)
    return Spent(top, bool(same), bool(below), bool(above), used is not None, uses, entry)


_CONSUME_PG = f"""
    WITH {spend_pg(gate="")}
    SELECT w.top, w.same, w.below, w.above, (SELECT id FROM a), (SELECT uses FROM l),
           v.id, v.fingerprint, v.key_version, v.nonce, v.ciphertext
    FROM w LEFT JOIN vault_entries v ON v.id = %(vault_id)s
    """  # noqa: S608 - placeholders and constants only
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


def token_snapshot(session: Session, token_pan: str) -> TokenSnapshot | None:
    """The token with this token PAN as authorization reads it, or ``None``."""
    card = session.scalar(select(Card).where(Card.token_pan == token_pan))
    if card is None:
        return None
    batches = session.execute(
        select(KeyBatch.first_index, KeyBatch.count, KeyBatch.max_uses, KeyBatch.not_after)
        .where(KeyBatch.card_id == card.id)
        .order_by(KeyBatch.first_index)
    ).all()
    return TokenSnapshot(
        card_id=card.id,
        user_id=card.user_id,
        status=card.status,
        network=card.network,
        token_ref=card.token_ref,
        token_expiry=card.token_expiry,
        psn=card.psn,
        vault_id=card.vault_id,
        channels=_split(card.allowed_channels),
        merchants=_split(card.allowed_merchants),
        blocked_mccs=_split(card.blocked_mccs) or (),
        batches=tuple((int(b[0]), int(b[1]), int(b[2]), int(b[3])) for b in batches),
        issuer_actions=session.execute(
            select(IssuerAction.id)
            .where(IssuerAction.card_id == card.id, IssuerAction.status.in_(IssuerAction.OPEN))
            .limit(1)
        ).first() is not None,
    )


def _split(listed: str | None) -> tuple[str, ...] | None:
    if listed is None:
        return None
    return tuple(part for part in (p.strip() for p in listed.split(",")) if part)


def card_owner(session: Session, card_id: int) -> tuple[str, int] | None:
    """(network, owner's user id) of card ``card_id``, or ``None``."""
    row = session.execute(select(Card.network, Card.user_id).where(Card.id == card_id)).one_or_none()
    return None if row is None else (row[0], row[1])


def vault_entry_of(session: Session, card_id: int | None) -> VaultEntry | None:
    """The funding card's vault entry of card ``card_id``, or ``None``."""
    vault_id = session.scalar(select(Card.vault_id).where(Card.id == card_id))
    return None if vault_id is None else session.get(VaultEntry, vault_id)


def transaction_row(
    request: AuthorizationRequest,
    *,
    card_id: int | None,
    user_id: int | None,
    network: str | None,
    atc: int | None,
    luk_index: int | None,
    status: str,
    code: str,
    reason: str,
    reference: str | None,
) -> dict[str, Any]:
    """The columns of a new transaction row for ``request``, ``status`` and ``code``."""
    now = utcnow()
    return {
        "public_id": "txn_" + secrets.token_hex(10),
        "card_id": card_id,
        "user_id": user_id,
        "amount": request.amount,
        "currency": request.currency.upper()[:3],
        "merchant_id": (request.merchant_id or None) and request.merchant_id[:64],
        "merchant_name": (request.merchant_name or None) and request.merchant_name[:120],
        "mcc": request.mcc,
        "terminal_id": (request.terminal_id or None) and request.terminal_id[:64],
        "channel": request.channel,
        "network": network,
        "atc": atc,
        "approved": status == "approved",
        "response_code": code,
        "auth_code": None,
        "reason": reason[:120],
        "status": status,
        "luk_index": luk_index,
        "issuer_ref": reference,
        "api_key_id": request.api_key_id,
        "created_at": now,
        "settled_at": None if status in ("pending", "in_doubt") else now,
    }


def insert_final(
    session: Session, row: dict[str, Any], *, actor: str, origin: str | None, detail: dict[str, Any]
) -> None:
    """Insert a final row (a refusal) and its audit row."""
    insert_transaction(session, row)
    event = audit_event(
        actor=actor, public_id=row["public_id"], code=row["response_code"], status=row["status"],
        origin=origin, detail=detail,
    )
    insert_audit(session, event)


def insert_transaction(session: Session, row: dict[str, Any]) -> int:
    """Insert a transaction row (the columns of :class:`~tsp_backend.models.Transaction`); its id."""
    return int(session.execute(_INSERT_TRANSACTION, row).scalar_one())


def insert_audit(session: Session, event: dict[str, Any]) -> None:
    """Insert one audit row (the columns of :class:`~tsp_backend.models.AuditEvent`)."""
    session.execute(_INSERT_AUDIT, event)


@dataclass(frozen=True)
class Outcome:
    """A decision on a transaction row: its status, response code, reason and auth code."""

    status: str
    code: str
    reason: str
    auth_code: str | None = None

    def columns(self) -> dict[str, Any]:
        """The columns the decision sets on a transaction row (``settled_at`` unless in doubt)."""
        return {
            "status": self.status,
            "approved": self.status == "approved",
            "response_code": self.code,
            "reason": self.reason[:120],
            "auth_code": self.auth_code,
            "settled_at": None if self.status == "in_doubt" else utcnow(),
        }


def settle(session: Session, transaction_id: int, outcome: Outcome, *, from_status: str = "pending") -> bool:
    """Record ``outcome`` on a ``from_status`` row; whether this call did (exactly one writer does)."""
    result = session.execute(
        update(_TRANSACTIONS)
        .where(_TRANSACTIONS.c.id == transaction_id, _TRANSACTIONS.c.status == from_status)
        .values(**outcome.columns())
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
