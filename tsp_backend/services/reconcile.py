"""Reconciliation: settle every transaction whose issuer answer never reached its terminal.

Two kinds of rows are left open by an authorization
(:mod:`tsp_backend.services.authorization`, "A durable intent before the issuer"):

* ``in_doubt`` — the issuer did not answer in time; the terminal was told 91;
* ``pending`` — the request died between writing its intent and recording the issuer's
  answer, and no retry finished it within the request's deadline.

A run first takes over the ``pending`` rows past the deadline by turning them ``in_doubt``
(conditionally: a request or retry that settles a row first keeps it, and once the row is
``in_doubt`` no late request can settle it), then settles each ``in_doubt`` row with the issuer:
an approval the issuer recorded is reversed (status ``reversed``), an unknown or declined
reference is voided (``declined``) — the terminal never heard of an approval, so nothing may
stay charged. A network that still fails leaves the row in doubt for the next run. Each row is
settled in its own transaction, conditionally on still being ``in_doubt``, so two runs at once
settle it once; a run that dies part-way leaves rows ``in_doubt`` for the next.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from tsp_backend.models import IdempotencyKey, Transaction
from tsp_backend.services import audit, payment_rows
from tsp_backend.services.answers import result_of, stored_answer
from tsp_backend.services.netsim import SwitchError
from tsp_backend.services.networks import NetworkClients
from tsp_backend.services.verdict import ResponseCode


@dataclass(frozen=True)
class ReconcileReport:
    """What one reconciliation run did."""

    checked: int = 0
    reversed: int = 0
    declined: int = 0
    still_in_doubt: int = 0
    abandoned: int = 0
    """``pending`` rows past the deadline taken over (they are counted again as checked)."""

    def to_json(self) -> dict[str, int]:
        """As JSON."""
        return {
            "checked": self.checked,
            "reversed": self.reversed,
            "declined": self.declined,
            "stillInDoubt": self.still_in_doubt,
            "abandoned": self.abandoned,
        }


class Reconciler:
    """Settles ``pending`` rows past the deadline and ``in_doubt`` rows with the issuer (module docstring)."""

    def __init__(
        self, sessions: sessionmaker[Session], networks: NetworkClients, *, deadline_s: float
    ) -> None:
        self.sessions = sessions
        self.networks = networks
        self.deadline_s = deadline_s

    def take_over_abandoned(self) -> int:
        """Turn ``pending`` rows older than the request deadline ``in_doubt``; how many."""
        cutoff = payment_rows.older_than(self.deadline_s)
        with self.sessions() as session, session.begin():
            result = session.execute(
                update(Transaction)
                .where(Transaction.status == "pending", Transaction.created_at <= cutoff)
                .values(
                    status="in_doubt",
                    response_code=ResponseCode.ISSUER_INOPERATIVE.value,
                    reason="the request ended before the issuer's answer was recorded",
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def reconcile(self, *, older_than_s: float = 0.0, limit: int = 500) -> ReconcileReport:
        """Settle up to ``limit`` transactions in doubt for at least ``older_than_s`` seconds."""
        abandoned = self.take_over_abandoned()
        cutoff = payment_rows.older_than(older_than_s)
        counts = {"checked": 0, "reversed": 0, "declined": 0, "still_in_doubt": 0}
        with self.sessions() as session:
            rows = session.execute(
                select(Transaction.id, Transaction.public_id, Transaction.network, Transaction.issuer_ref)
                .where(Transaction.status == "in_doubt", Transaction.created_at <= cutoff)
                .order_by(Transaction.id)
                .limit(limit)
            ).all()
            session.rollback()
            for transaction_id, public_id, network, reference in rows:
                counts["checked"] += 1
                if network is None or reference is None:
                    status, reason = "declined", "the issuer was never asked; voided"
                else:
                    try:
                        prior = self.networks.reverse(network, reference)
                    except SwitchError:
                        counts["still_in_doubt"] += 1
                        continue
                    if prior is not None and prior.approved:
                        status, reason = "reversed", "approved by the issuer, never delivered; reversed"
                    elif prior is None:
                        status, reason = "declined", "the issuer never received it; voided"
                    else:
                        status, reason = "declined", f"the issuer declined ({prior.code}); voided"
                outcome = payment_rows.Outcome(status, ResponseCode.ISSUER_INOPERATIVE.value, reason)
                settled = payment_rows.settle(session, transaction_id, outcome, from_status="in_doubt")
                if settled:
                    counts["reversed" if status == "reversed" else "declined"] += 1
                    self._answer_abandoned_claims(session, transaction_id)
                    audit.record(
                        session,
                        actor="system:reconciler",
                        action="payment.reconcile",
                        target=f"txn:{public_id}",
                        outcome=status,
                    )
                session.commit()
        return ReconcileReport(**counts, abandoned=abandoned)

    @staticmethod
    def _answer_abandoned_claims(session: Session, transaction_id: int) -> None:
        """Store the settled row's answer under the key of the request that left it (if one is in flight).

        A late retry with that key is then answered at once, and no key stays ``IN_FLIGHT``; a
        retry that holds the claim at this moment fails to complete it (409) and, asked again,
        gets this answer.
        """
        claims = session.execute(
            select(IdempotencyKey.id, IdempotencyKey.route).where(
                IdempotencyKey.transaction_id == transaction_id, IdempotencyKey.state == "IN_FLIGHT"
            )
        ).all()
        txn = payment_rows.load(session, transaction_id)
        if not claims or txn is None:
            return
        for claim_id, route in claims:
            session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.id == claim_id, IdempotencyKey.state == "IN_FLIGHT")
                .values(state="DONE", response_status=200, response_body=stored_answer(route, result_of(txn)))
            )
