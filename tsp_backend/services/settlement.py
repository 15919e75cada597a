"""Steps 3 and 4 of an authorization: ask the issuer for a ``pending`` row, settle it.

:mod:`tsp_backend.services.authorization` writes the intent (the ``pending`` row and the claim of
its ``Idempotency-Key``), then hands the row here: the issuer is asked through the network's
circuit breaker with the row's reference, and its decision is recorded — only if the row is
still ``pending`` — with its audit row and the answer stored under the key. A row someone else
settled first (a retry, the reconciliation) answers with what it says. A time-out leaves the
row ``in_doubt`` (91) for :mod:`tsp_backend.services.reconcile`.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from tsp_backend import metrics
from tsp_backend.errors import IdempotencyInFlight
from tsp_backend.models import Transaction, VaultEntry
from tsp_backend.services import payment_intent, payment_rows
from tsp_backend.services.answers import Answer, AuthorizationResult, result_of, stored_answer
from tsp_backend.services.idempotency import Claim, IdempotencyService
from tsp_backend.services.issuers import IssuerDecision, IssuerRequest
from tsp_backend.services.netsim import CircuitOpen, SwitchError, SwitchTimeout
from tsp_backend.services.networks import NetworkClients
from tsp_backend.services.payment_rows import Outcome
from tsp_backend.services.vault import Vault
from tsp_backend.services.verdict import ResponseCode

Arpc = Callable[[int | None, str], bytes | None]
"""The ARPC for (card, response code), when the request's cryptogram verified for that card."""


class Settlement:
    """Asks the issuer and records its decision (module docstring)."""

    def __init__(self, vault: Vault, networks: NetworkClients, idempotency: IdempotencyService) -> None:
        self.vault = vault
        self.networks = networks
        self.idempotency = idempotency

    def ask_and_settle(
        self,
        session: Session,
        claim: Claim,
        pending: payment_rows.Pending,
        entry: VaultEntry | None,
        arpc: Arpc,
        *,
        actor: str,
        origin: str | None,
        route: str,
    ) -> Answer:
        """Ask the issuer for a ``pending`` row and record its decision; the answer.

        When someone else settled the row first (a retry, the reconciliation), the answer is
        what the row says.
        """
        if entry is None:
            entry = payment_rows.vault_entry_of(session, pending.card_id)
            session.rollback()
        metrics.lap("intent")
        outcome = self.ask(pending, entry)
        metrics.lap("issuer")
        result = AuthorizationResult(
            approved=outcome.status == "approved",
            response_code=outcome.code,
            reason=outcome.reason,
            transaction_id=pending.public_id,
            status=outcome.status,
            network=pending.network,
            auth_code=outcome.auth_code,
            arpc=arpc(pending.card_id, outcome.code),
            card_id=pending.card_id,
        )
        answer = Answer(200, stored_answer(route, result), result=result)
        event = payment_rows.audit_event(
            actor=actor,
            public_id=pending.public_id,
            code=outcome.code,
            status=outcome.status,
            origin=origin,
            detail={"card": pending.card_id, "channel": pending.channel, "network": pending.network},
        )
        settled = payment_intent.settle_with_answer(
            session, pending.id, outcome, event=event, claim=claim, answer=answer.body
        )
        if settled == "answered":
            return answer
        if settled == "settled":
            return self.store_answer(session, claim, answer)
        session.rollback()
        txn = payment_rows.load(session, pending.id)
        assert txn is not None
        return self.answer_from_row(session, claim, txn, arpc, route)

    def answer_from_row(
        self, session: Session, claim: Claim, txn: Transaction, arpc: Arpc, route: str
    ) -> Answer:
        """The answer a settled row stands for, stored under the claim."""
        result = result_of(txn, arpc(txn.card_id, txn.response_code))
        return self.store_answer(session, claim, Answer(200, stored_answer(route, result), result=result))

    def store_answer(self, session: Session, claim: Claim, answer: Answer) -> Answer:
        """Store ``answer`` under the claim and commit; the answer someone else stored, if they did."""
        try:
            self.idempotency.complete(session, claim, answer.status, answer.body)
        except IdempotencyInFlight:
            session.rollback()
            stored = self.idempotency.answer_of(session, claim)
            session.rollback()
            if stored is None:
                raise
            return Answer(stored.status, stored.body)
        session.commit()
        return answer

    def ask(self, txn: payment_rows.Pending, entry: VaultEntry | None) -> Outcome:
        """The issuer's decision on ``txn``."""
        if entry is None or txn.network is None or txn.issuer_ref is None:
            return Outcome("declined", ResponseCode.INVALID_CARD.value, "the token has no funding card")
        issuer_request = IssuerRequest(
            reference=txn.issuer_ref,
            pan=self.vault.decrypt(entry),
            amount=txn.amount,
            currency=txn.currency,
            merchant_id=txn.merchant_id or "",
            mcc=txn.mcc or "",
        )
        try:
            decision: IssuerDecision = self.networks.authorize(txn.network, issuer_request)
        except SwitchTimeout as exc:
            return Outcome("in_doubt", ResponseCode.ISSUER_INOPERATIVE.value, str(exc))
        except SwitchError as exc:
            reason = str(exc) if isinstance(exc, CircuitOpen) else f"{exc}; try again later"
            return Outcome("declined", ResponseCode.ISSUER_INOPERATIVE.value, reason)
        status = "approved" if decision.approved else "declined"
        return Outcome(status, decision.code, decision.reason, decision.auth_code)
