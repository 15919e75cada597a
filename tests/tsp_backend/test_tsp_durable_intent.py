"""The durable intent: nothing held at an issuer without a row, retries finish what a crash left.

A "crash" here is a :class:`Crash` (a ``BaseException``, like the ``SystemExit`` of a dying
worker) raised by the network switch *after* the issuer decided: the request never records the
answer, exactly as when a worker is killed between the issuer and the commit. The fault test
with real processes and ``kill -9`` is ``tests/integration/test_payment_crash.py``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.tsp_backend.tsp_helpers import Wallet, make_wallet
from tests.tsp_backend.tsp_pay_helpers import (
    FlaskHost,
    applet,
    in_app_emv,
    in_app_request,
    provision_profile,
    tap,
)
from tsp_backend.models import IdempotencyKey, Transaction
from tsp_backend.services.issuers import IssuerDecision, IssuerRequest


class Crash(BaseException):
    """The worker dies."""


class DiesAfterTheIssuer:
    """A switch that forwards to the real one and then kills the request (the issuer has decided)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.decisions: list[IssuerDecision] = []

    def authorize(self, request: IssuerRequest, timeout_s: float) -> IssuerDecision:
        self.decisions.append(self.inner.authorize(request, timeout_s))
        raise Crash("kill -9")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def crash(self, app: Flask, post: Callable[[], Any]) -> None:
        """``post`` dies after the issuer decided; the network is whole again afterwards."""
        with pytest.raises(Crash):
            post()
        app.extensions["hcekit"].networks.switches["visa"] = self.inner


def _rows(app: Flask) -> list[Transaction]:
    with app.extensions["hcekit"].sessions_factory() as session:
        return list(session.scalars(select(Transaction).order_by(Transaction.id)))


def _issuer_state(app: Flask, reference: str) -> IssuerDecision | None:
    return app.extensions["hcekit"].networks.issuer.status(reference)  # type: ignore[no-any-return]


def _lease_over(app: Flask) -> None:
    """Move the idempotency clock past every claim's lease (the request deadline)."""
    idempotency = app.extensions["hcekit"].idempotency
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=idempotency.lease_s + 1)
    idempotency.clock = lambda: later


def _tap_body(wallet: Wallet, amount: int = 1250) -> tuple[dict[str, Any], int]:
    card_id, profile = provision_profile(wallet)
    result = tap(applet(profile), amount, None)
    emv = result.outcome.authorization_data.hex().upper()
    merchant = {"id": "M-1", "name": "Shop"}
    return {"emv": emv, "amount": amount, "currency": "EUR", "merchant": merchant}, card_id


@pytest.fixture
def dying(app: Flask) -> DiesAfterTheIssuer:
    """The Visa switch of ``app``, dying after every issuer decision until restored."""
    networks = app.extensions["hcekit"].networks
    switch = DiesAfterTheIssuer(networks.switches["visa"])
    networks.switches["visa"] = switch
    return switch


def test_a_crash_after_the_issuer_leaves_a_pending_row(
    app: Flask, wallet: Wallet, host: FlaskHost, dying: DiesAfterTheIssuer
) -> None:
    """The attempt is on disk before the issuer is asked: a crash leaves it pending, with its reference."""
    body, card_id = _tap_body(wallet)
    with pytest.raises(Crash):
        host.post(body, "key-1")
    (row,) = _rows(app)
    assert (row.status, row.card_id, row.amount, row.approved) == ("pending", card_id, 1250, False)
    assert row.issuer_ref is not None and _issuer_state(app, row.issuer_ref) == dying.decisions[0]
    assert dying.decisions[0].approved


def test_retry_after_the_lease_gets_the_issuers_decision(
    app: Flask, wallet: Wallet, host: FlaskHost, dying: DiesAfterTheIssuer
) -> None:
    """Inside the lease a retry is 409; after it, the retry finishes the same row with the issuer's answer."""
    body, _ = _tap_body(wallet)
    dying.crash(app, lambda: host.post(body, "key-1"))
    assert host.post(body, "key-1").status_code == 409
    _lease_over(app)
    answer = host.post(body, "key-1").get_json()
    (row,) = _rows(app)
    assert (answer["approved"], answer["responseCode"], answer["authCode"]) == (
        True,
        "00",
        dying.decisions[0].auth_code,
    )
    assert answer["transactionId"] == row.public_id and row.status == "approved"
    assert answer["arpc"] is not None
    replay = host.post(body, "key-1")
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.get_json() == answer


def test_retry_reaches_the_issuers_decision_even_when_the_atc_window_moved_on(
    app: Flask, wallet: Wallet, host: FlaskHost, dying: DiesAfterTheIssuer
) -> None:
    """The first attempt spent its ATC: forty later taps do not turn its retry into a 59."""
    _, profile = provision_profile(wallet)
    card = applet(profile, luks=[{**luk, "max_uses": 100} for luk in profile["luks"]])
    first = tap(card, 1250, None).outcome.authorization_data.hex().upper()
    body = {"emv": first, "amount": 1250, "currency": "EUR"}
    dying.crash(app, lambda: host.post(body, "key-1"))
    for _ in range(40):
        tap(card, 100, host)
    _lease_over(app)
    answer = host.post(body, "key-1").get_json()
    assert (answer["approved"], answer["responseCode"]) == (True, "00"), answer


def test_nobody_retries_then_reconcile_releases_the_hold(
    app: Flask, wallet: Wallet, host: FlaskHost, dying: DiesAfterTheIssuer
) -> None:
    """A pending row past the deadline is taken over by the reconciliation and reversed at the issuer."""
    body, _ = _tap_body(wallet)
    dying.crash(app, lambda: host.post(body, "key-1"))
    reconciler = app.extensions["hcekit_payments"].reconciler
    assert reconciler.reconcile().to_json()["abandoned"] == 0  # still inside the request's deadline
    reconciler.deadline_s = 0.0
    report = reconciler.reconcile().to_json()
    assert report == {"checked": 1, "reversed": 1, "declined": 0, "stillInDoubt": 0, "abandoned": 1}
    (row,) = _rows(app)
    assert (row.status, row.approved) == ("reversed", False)
    assert row.issuer_ref is not None
    voided = _issuer_state(app, row.issuer_ref)
    assert voided is not None and (voided.code, voided.approved) == ("VD", False)
    late = host.post(body, "key-1")
    assert late.headers.get("Idempotent-Replayed") == "true"  # the reconciliation stored the answer
    assert (late.get_json()["approved"], late.get_json()["transactionId"]) == (False, row.public_id)


def test_a_late_request_cannot_settle_a_row_the_reconciliation_took(
    app: Flask, wallet: Wallet, host: FlaskHost
) -> None:
    """A request outlives its deadline: reconcile reverses first, the request answers "not approved"."""
    body, _ = _tap_body(wallet)
    networks = app.extensions["hcekit"].networks
    real = networks.switches["visa"]
    reconciler = app.extensions["hcekit_payments"].reconciler
    reconciler.deadline_s = 0.0

    class SlowThenReconciled:
        def authorize(self, request: IssuerRequest, timeout_s: float) -> IssuerDecision:
            decision = real.authorize(request, timeout_s)
            assert reconciler.reconcile().reversed == 1
            return decision  # type: ignore[no-any-return]

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    networks.switches["visa"] = SlowThenReconciled()
    answer = host.post(body, "key-1").get_json()
    (row,) = _rows(app)
    assert (answer["approved"], answer["transactionId"], row.status) == (False, row.public_id, "reversed")
    assert not _issuer_state(app, row.issuer_ref or "").approved  # type: ignore[union-attr]


def test_in_app_retry_after_a_crash_is_not_held_for_a_minute(
    app: Flask, wallet: Wallet, dying: DiesAfterTheIssuer
) -> None:
    """The in-app route uses the same intent and lease: the retry after the deadline is answered."""
    card_id, profile = provision_profile(wallet)
    request = in_app_request(card_id, 1999, in_app_emv(applet(profile), 1999), "M-42")
    dying.crash(app, lambda: wallet.post("/api/payments/in-app", request, key="pay-1"))
    assert wallet.post("/api/payments/in-app", request, key="pay-1").status_code == 409
    _lease_over(app)
    answer = wallet.post("/api/payments/in-app", request, key="pay-1").get_json()
    assert (answer["approved"], answer["authCode"]) == (True, dying.decisions[0].auth_code)
    with app.extensions["hcekit"].sessions_factory() as session:
        states = session.scalars(
            select(IdempotencyKey.state).where(IdempotencyKey.route == "POST /api/payments/in-app")
        ).all()
    assert states == ["DONE"]


def test_a_value_the_database_refuses_moves_no_money(app: Flask, wallet: Wallet, host: FlaskHost) -> None:
    """A NUL in the merchant name never reaches the issuer: no hold, no row, no 200."""
    body, _ = _tap_body(wallet)
    asked: list[IssuerRequest] = []
    networks = app.extensions["hcekit"].networks
    real = networks.switches["visa"]

    class Recording:
        def authorize(self, request: IssuerRequest, timeout_s: float) -> IssuerDecision:
            asked.append(request)
            return real.authorize(request, timeout_s)  # type: ignore[no-any-return]

    networks.switches["visa"] = Recording()
    response = host.post({**body, "merchant": {"id": "M-1", "name": "Shop\u0000"}}, str(uuid.uuid4()))
    assert response.status_code == 400, response.get_data(as_text=True)
    assert asked == [] and [r for r in _rows(app) if r.status != "declined"] == []


# ---------------------------------------------------------------------------- cross-user writes


def _a_and_b(client: FlaskClient, wallet: Wallet) -> tuple[int, dict[str, Any], Wallet, int]:
    """A (``wallet``) with a Visa card, and B, another account with a Mastercard of its own.

    Returns A's card id and profile, B's wallet and B's card id.
    """
    a_card, a_profile = provision_profile(wallet)
    other = make_wallet(client)
    b_card, _ = provision_profile(other, "5555555555554444")
    return a_card, a_profile, other, b_card


def _pay_in_app(payer: Wallet, card_id: int, emv: str, **fields: Any) -> dict[str, Any]:
    """``payer`` pays 1.00 EUR in-app with ``card_id``, sending ``emv``; the answer's document."""
    request = in_app_request(card_id, 100, emv, **fields)
    return payer.post("/api/payments/in-app", request, key=str(uuid.uuid4())).get_json()  # type: ignore[no-any-return]


def test_in_app_with_someone_elses_token_pan_writes_nothing_of_theirs(
    app: Flask, client: FlaskClient, wallet: Wallet
) -> None:
    """B pays with B's card and A's token PAN: answered as a PAN nobody has; A sees nothing."""
    a_card, a_profile, other, b_card = _a_and_b(client, wallet)
    answers = []
    for pan in (a_profile["pan"], "4895370000000007"):
        doc = _pay_in_app(other, b_card, "5A08" + pan, merchantName="CALL +1-555-0100 YOUR CARD IS BLOCKED")
        answers.append({k: doc[k] for k in ("approved", "responseCode", "reason", "network")})
    assert answers[0] == answers[1] and answers[0]["network"] == "mastercard"
    assert wallet.get(f"/api/transactions?cardId={a_card}").get_json()["items"] == []
    assert {row.card_id for row in _rows(app)} <= {b_card, None}


def test_in_app_with_someone_elses_genuine_cryptogram_is_14_on_the_payers_card(
    app: Flask, client: FlaskClient, wallet: Wallet
) -> None:
    """Even a verifying cryptogram of A's card, sent by B under B's card, lands only in B's history."""
    a_card, a_profile, other, b_card = _a_and_b(client, wallet)
    doc = _pay_in_app(other, b_card, in_app_emv(applet(a_profile), 100))
    assert (doc["approved"], doc["responseCode"]) == (False, "14")
    assert wallet.get(f"/api/transactions?cardId={a_card}").get_json()["items"] == []
    assert [row.card_id for row in _rows(app)] == [b_card]


def test_terminal_with_someone_elses_token_pan_learns_and_writes_nothing(
    app: Flask, wallet: Wallet, host: FlaskHost
) -> None:
    """Through /api/authorize, a bare token PAN or a forged cryptogram: the same answer as no token."""
    card_id, profile = provision_profile(wallet)
    result = tap(applet(profile), 1250, None).outcome.authorization_data.hex().upper()
    forged = result.replace(result[result.index("9F2608") + 6 : result.index("9F2608") + 22], "00" * 8)
    unknown = forged.replace(profile["pan"], "4895370000000007")
    answers = []
    for emv in ("5A08" + profile["pan"], "5A08" + "4895370000000007", forged, unknown):
        doc = host.post({"emv": emv, "amount": 1250, "currency": "EUR"}, str(uuid.uuid4())).get_json()
        answers.append((doc["approved"], doc["responseCode"], doc["reason"], doc["network"]))
    assert answers[0] == answers[1] and answers[2] == answers[3]
    assert wallet.get(f"/api/transactions?cardId={card_id}").get_json()["items"] == []
    assert {row.card_id for row in _rows(app)} == {None}
