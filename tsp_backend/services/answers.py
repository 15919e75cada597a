"""What the payment routes answer: an authorization's result, in each route's format.

The 200 body of a payment is stored under its ``Idempotency-Key`` — by the request
(:mod:`tsp_backend.services.authorization`), or by the reconciliation
(:mod:`tsp_backend.services.reconcile`) when no request is left to store it — and replayed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tsp_backend.models import Transaction


@dataclass(frozen=True)
class AuthorizationResult:
    """The answer (see :meth:`to_json`) and the transaction row it was written to."""

    approved: bool
    response_code: str
    reason: str
    transaction_id: str
    status: str
    network: str | None = None
    auth_code: str | None = None
    arpc: bytes | None = None
    card_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The body of ``POST /api/authorize``'s 200 answer."""
        return {
            "approved": self.approved,
            "responseCode": self.response_code,
            "authCode": self.auth_code,
            "arpc": self.arpc.hex().upper() if self.arpc is not None else None,
            "transactionId": self.transaction_id,
            "network": self.network,
            "reason": self.reason,
        }

    def to_payment_json(self) -> dict[str, Any]:
        """The body of ``POST /api/payments/in-app``'s 200 answer (a PaymentResult: no ARPC)."""
        return {
            "approved": self.approved,
            "authCode": self.auth_code,
            "network": self.network,
            "transactionId": self.transaction_id,
            "responseCode": self.response_code,
            "reason": self.reason,
        }


ANSWER_FORMATS: dict[str, Callable[[AuthorizationResult], dict[str, Any]]] = {
    "POST /api/authorize": AuthorizationResult.to_json,
    "POST /api/payments/in-app": AuthorizationResult.to_payment_json,
    "POST /wallet/pay/confirm (authorization)": AuthorizationResult.to_payment_json,
}
"""The 200 body of each payment route, by the route an idempotency key is scoped to: the
answer stored under the key by the request, or by the reconciliation when no request is left
to store it."""


def stored_answer(route: str, result: AuthorizationResult) -> str:
    """The JSON text stored under an idempotency key of ``route`` for ``result``."""
    return json.dumps(ANSWER_FORMATS.get(route, AuthorizationResult.to_json)(result))


@dataclass(frozen=True)
class IdempotentRequest:
    """Who asks, on which route, under which ``Idempotency-Key``, with which body fingerprint."""

    scope: str
    route: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class Answer:
    """What the route sends: status, JSON body, and whether it is a stored answer replayed."""

    status: int
    body: str
    replayed: bool = False
    result: AuthorizationResult | None = None
    issuer_actions: bool = False
    """An approval of a token with an issuer action waiting (:mod:`~tsp_backend.services.issuer_actions`)."""


def result_of(txn: Transaction, arpc: bytes | None = None) -> AuthorizationResult:
    """The answer a transaction row stands for."""
    return AuthorizationResult(
        approved=txn.status == "approved",
        response_code=txn.response_code,
        reason=txn.reason or "",
        transaction_id=txn.public_id,
        status=txn.status,
        network=txn.network,
        auth_code=txn.auth_code,
        arpc=arpc,
        card_id=txn.card_id,
    )
