"""Authorization against the HTTP network simulator: breakers, time-outs, reconciliation, two instances."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from flask import Flask

from tests.tsp_backend.tsp_helpers import dispose, make_wallet
from tests.tsp_backend.tsp_netsim_helpers import network_app, paying, tap_timed_out
from tests.tsp_backend.tsp_pay_helpers import FlaskHost, applet, provision_profile, tap, terminal_key
from tsp_backend.app import create_app
from tsp_backend.services.issuers import IssuerAccount, IssuerRequest, IssuerSimulator, MemoryLedger
from tsp_backend.services.netsim import Latency, SwitchDown, SwitchSimulator, SwitchTimeout
from tsp_backend.services.networks import BREAKER_REFRESH_S
from tsp_backend.simulators.netsim import NetworkSimServer


def test_one_network_down_fails_fast_others_approve(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, sim: NetworkSimServer
) -> None:
    """With Visa's simulator down, Visa taps get 91 and then fail fast; Mastercard taps are approved."""
    with paying(backend, tmp_path, request, sim.url) as (app, _client, wallet, host):
        _, visa = provision_profile(wallet, "4111111111111111")
        _, mastercard = provision_profile(wallet, "5555555555554444")
        visa_card, mc_card = applet(visa), applet(mastercard)
        answers = [tap(visa_card, 100, host).outcome.host for _ in range(4)]
        assert all(a is not None and a.response_code == "91" and not a.approved for a in answers)
        assert "circuit is open" in answers[-1].reason  # type: ignore[union-attr]
        assert app.extensions["hcekit"].networks.breaker_states()["visa"] == "open"
        for _ in range(3):
            answer = tap(mc_card, 100, host).outcome.host
            assert answer is not None and answer.approved
        assert app.extensions["hcekit"].networks.breaker_states()["mastercard"] == "closed"
        statuses = {item["status"] for item in wallet.get("/api/transactions?limit=100").get_json()["items"]}
        assert statuses == {"approved", "declined"}


def test_issuer_declines_never_trip_the_breaker(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, sim: NetworkSimServer
) -> None:
    """Many 51s in a row leave the breaker closed."""
    with paying(backend, tmp_path, request, sim.url) as (app, _client, wallet, host):
        _, profile = provision_profile(wallet, "5454545454545454")
        card = applet(profile)
        codes = [tap(card, 4000, host).outcome.host.response_code for _ in range(5)]  # type: ignore[union-attr]
        assert codes == ["00", "00", "51", "51", "51"]
        assert app.extensions["hcekit"].networks.breaker_states()["mastercard"] == "closed"


def test_timeout_leaves_in_doubt_then_reversed(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, sim: NetworkSimServer
) -> None:
    """A slow network times out (91, in_doubt); reconciliation reverses the issuer's late approval."""
    with paying(backend, tmp_path, request, sim.url) as (app, _client, wallet, host):
        profile = tap_timed_out(sim, wallet, host)
        item = wallet.get("/api/transactions").get_json()["items"][0]
        assert item["status"] == "in_doubt"
        time.sleep(0.6)
        issuer = sim.simulators["mastercard"].issuer
        assert issuer.status(_reference(app, item["id"])).approved  # type: ignore[union-attr]
        report = wallet.post("/api/admin/reconcile").get_json()
        assert report == {"checked": 1, "reversed": 1, "declined": 0, "stillInDoubt": 0, "abandoned": 0}
        assert wallet.get(f"/api/transactions/{item['id']}").get_json()["status"] == "reversed"
        sim.simulators["mastercard"].latency = Latency()
        codes = [tap(applet(profile, atc=10 + i), 3000, host).outcome.host.response_code for i in range(4)]  # type: ignore[union-attr]
        assert codes == ["00", "00", "00", "51"]  # the reversed 3,000 was released: 10,000 holds three


def _reference(app: Flask, public_id: str) -> str:
    from sqlalchemy import select

    from tsp_backend.models import Transaction

    with app.extensions["hcekit"].sessions_factory() as session:
        return str(session.scalar(select(Transaction.issuer_ref).where(Transaction.public_id == public_id)))


@pytest.mark.integration
def test_two_instances_answer_as_one(
    tmp_path: Path, request: pytest.FixtureRequest, sim: NetworkSimServer
) -> None:
    """Two apps on one PostgreSQL + Redis: replays are caught across them; a trip reaches the other
    within the breaker's refresh interval."""
    first = network_app("postgres", tmp_path / "a", request, sim.url)
    second = create_app(first.extensions["hcekit"].config)
    try:
        wallet = make_wallet(first.test_client())
        key = terminal_key(wallet)
        host_a, host_b = FlaskHost(first.test_client(), key), FlaskHost(second.test_client(), key)
        _, profile = provision_profile(wallet, "5555555555554444")
        card = applet(profile)
        assert tap(card, 100, host_a).outcome.host.approved  # type: ignore[union-attr]
        assert tap(card, 100, host_b).outcome.host.approved  # type: ignore[union-attr]
        replay = host_b.post(host_a.requests[-1], str(uuid.uuid4())).get_json()
        assert replay["responseCode"] == "59"
        body = host_a.requests[0]
        same_key = [h.post(body, "shared-key").get_json()["responseCode"] for h in (host_a, host_b)]
        assert same_key[0] == same_key[1] == "59"
        _, visa = provision_profile(wallet, "4111111111111111")
        visa_card = applet(visa)
        for _ in range(2):
            tap(visa_card, 100, host_a)
        time.sleep(BREAKER_REFRESH_S)  # the other instance trusts its copy of the state this long
        assert second.extensions["hcekit"].networks.breaker_states()["visa"] == "open"
        answer = tap(visa_card, 100, host_b).outcome.host
        assert answer is not None and "circuit is open" in answer.reason
    finally:
        dispose(first)
        dispose(second)


def test_switch_simulator_timeout_is_processed_and_idempotent() -> None:
    """In process, a call slower than the time-out is still decided; a retry gets that decision."""
    issuer = IssuerSimulator(MemoryLedger(), {"4111111111111111": IssuerAccount(balance=150)})
    switch = SwitchSimulator("visa", issuer, latency=Latency(50, 50), sleep=lambda s: None)
    request = IssuerRequest("ref-1", "4111111111111111", 100, "EUR")
    with pytest.raises(SwitchTimeout):
        switch.authorize(request, 0.01)
    assert switch.authorize(request, 1.0).approved
    assert switch.authorize(IssuerRequest("ref-2", "4111111111111111", 100, "EUR"), 1.0).code == "51"
    assert issuer.reverse("ref-1") is not None and issuer.reverse("ref-1") is None
    assert switch.authorize(IssuerRequest("ref-3", "4111111111111111", 100, "EUR"), 1.0).approved
    switch.down = True
    with pytest.raises(SwitchDown):
        switch.authorize(IssuerRequest("ref-4", "4111111111111111", 1, "EUR"), 1.0)


def test_void_before_arrival_refuses_the_late_request() -> None:
    """A reference voided before the issuer saw it is never approved later."""
    issuer = IssuerSimulator()
    assert issuer.reverse("late") is None
    assert issuer.decide(IssuerRequest("late", "4111111111111111", 100, "EUR")).code == "VD"


@pytest.mark.integration
def test_redis_ledger_matches_memory(servers) -> None:  # type: ignore[no-untyped-def]
    """The Redis ledger decides, replays, reverses and voids like the in-process one."""
    import redis

    from tsp_backend.services.issuers import RedisLedger

    servers.redis.flushdb()
    client = redis.Redis.from_url(servers.redis_url)
    rules = {"4111111111111111": IssuerAccount(balance=150, velocity_limit=3)}
    for ledger in (MemoryLedger(), RedisLedger(client)):
        issuer = IssuerSimulator(ledger, rules)
        decide = issuer.decide
        pan = "4111111111111111"
        assert decide(IssuerRequest("a", pan, 100, "EUR")).approved
        assert decide(IssuerRequest("a", pan, 100, "EUR")).approved
        assert decide(IssuerRequest("b", pan, 100, "EUR")).code == "51"
        assert issuer.reverse("a") is not None
        assert decide(IssuerRequest("c", pan, 100, "EUR")).approved
        assert decide(IssuerRequest("d", pan, 1, "EUR")).code == "65"
        assert issuer.reverse("never") is None and decide(IssuerRequest("never", pan, 1, "EUR")).code == "VD"
    client.close()
