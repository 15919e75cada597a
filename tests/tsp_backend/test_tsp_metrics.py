"""``GET /metrics``: decisions by code and network, phase histograms, idempotency, breakers, in doubt.

The metrics of one process are shared by every app a test session builds, so each test reads
the exposition before and after and compares the differences.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.tsp_backend.tsp_helpers import dispose, make_config, make_wallet
from tests.tsp_backend.tsp_netsim_helpers import paying, tap_timed_out
from tests.tsp_backend.tsp_pay_helpers import FlaskHost, applet, provision_profile, tap, terminal_key
from tsp_backend.app import create_app
from tsp_backend.services.netsim import Latency
from tsp_backend.services.networks import NETWORKS
from tsp_backend.simulators.netsim import NetworkSimServer

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: FlaskClient) -> Samples:
    """Every sample of ``/metrics``, parsed by prometheus-client's own parser."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.data[:300]
    assert response.headers["Content-Type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much a sample grew between two scrapes."""
    return value(after, name, **labels) - value(before, name, **labels)


def test_authorizations_counted_by_code_and_network_with_phase_histograms(client: FlaskClient) -> None:
    """Three taps (00, 00, 51) count by code and network; each phase observes three durations."""
    wallet = make_wallet(client)
    host = FlaskHost(client, terminal_key(wallet))
    _, profile = provision_profile(wallet, "5454545454545454")
    card = applet(profile)
    before = scrape(client)
    codes = [tap(card, 4000, host).outcome.host.response_code for _ in range(3)]  # type: ignore[union-attr]
    after = scrape(client)
    assert codes == ["00", "00", "51"]
    total = "hcekit_authorizations_total"
    assert delta(before, after, total, code="00", network="mastercard") == 2
    assert delta(before, after, total, code="51", network="mastercard") == 1
    assert delta(before, after, total, code="00", network="visa") == 0
    for phase in ("check", "intent", "issuer", "settle"):
        count = delta(before, after, "hcekit_authorization_seconds_count", phase=phase)
        assert count == 3, phase
        assert delta(before, after, "hcekit_authorization_seconds_bucket", phase=phase, le="+Inf") == 3
        buckets = sorted(
            (float(dict(labels)["le"]), sample)
            for (name, labels), sample in after.items()
            if name == "hcekit_authorization_seconds_bucket" and dict(labels)["phase"] == phase
        )
        assert len(buckets) >= 10
        assert [b[1] for b in buckets] == sorted(b[1] for b in buckets), "buckets are cumulative"
        assert delta(before, after, "hcekit_authorization_seconds_sum", phase=phase) > 0
    assert value(after, "hcekit_transactions_in_doubt") == 0
    assert value(after, "hcekit_breaker_state", network="mastercard") == 0


def test_replays_and_conflicts_are_counted(client: FlaskClient) -> None:
    """The same key and body replays the stored answer; the same key with another body is a conflict."""
    wallet = make_wallet(client)
    host = FlaskHost(client, terminal_key(wallet))
    _, profile = provision_profile(wallet, "5454545454545454")
    tap(applet(profile), 1000, host)
    body = host.requests[-1]
    key = str(uuid.uuid4())
    before = scrape(client)
    first = host.post(body, key)
    replay = host.post(body, key)
    reused = host.post({**body, "amount": body["amount"] + 1}, key)
    after = scrape(client)
    assert first.status_code == 200 and replay.status_code == 200
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert reused.status_code == 422
    assert reused.get_json()["type"].endswith("idempotency-key-reused")
    assert delta(before, after, "hcekit_idempotency_replays_total") == 1
    assert delta(before, after, "hcekit_idempotency_conflicts_total", reason="reused") == 1
    decisions = sum(
        sample - value(before, name, **dict(labels))
        for (name, labels), sample in after.items()
        if name == "hcekit_authorizations_total"
    )
    assert decisions == 1, "a replay is not a second decision"


def test_breaker_gauge_opens_when_a_network_is_down(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, sim: NetworkSimServer
) -> None:
    """Visa down: its breaker gauge goes from 0 to 2 (open); Mastercard's stays 0."""
    with paying(backend, tmp_path, request, sim.url) as (_app, client, wallet, host):
        _, visa = provision_profile(wallet, "4111111111111111")
        assert value(scrape(client), "hcekit_breaker_state", network="visa") == 0
        card = applet(visa)
        for _ in range(3):
            tap(card, 100, host)
        after = scrape(client)
        assert value(after, "hcekit_breaker_state", network="visa") == 2
        assert value(after, "hcekit_breaker_state", network="mastercard") == 0
        assert {dict(labels)["network"] for (name, labels) in after if name == "hcekit_breaker_state"} == set(
            NETWORKS
        )


def test_in_doubt_gauge_counts_a_timed_out_authorization(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, sim: NetworkSimServer
) -> None:
    """A time-out leaves one transaction in doubt: the gauge reads 1, then 0 once reconciled."""
    with paying(backend, tmp_path, request, sim.url) as (_app, client, wallet, host):
        assert value(scrape(client), "hcekit_transactions_in_doubt") == 0
        tap_timed_out(sim, wallet, host)
        assert value(scrape(client), "hcekit_transactions_in_doubt") == 1
        sim.simulators["mastercard"].latency = Latency()
        report = wallet.post("/api/admin/reconcile").get_json()
        assert report["stillInDoubt"] == 0
        assert value(scrape(client), "hcekit_transactions_in_doubt") == 0


def test_metrics_need_no_session_and_name_no_user(client: FlaskClient) -> None:
    """An anonymous scrape answers; it carries no PAN, token PAN or e-mail address."""
    wallet = make_wallet(client)
    host = FlaskHost(client, terminal_key(wallet))
    _, profile = provision_profile(wallet, "5454545454545454")
    tap(applet(profile), 1000, host)
    anonymous = client.application.test_client()
    text = anonymous.get("/metrics").get_data(as_text=True)
    assert "hcekit_authorizations_total" in text
    assert "5454545454545454" not in text
    assert str(profile.get("pan", "no-token-pan")) not in text
    assert "@" not in text


def test_metrics_switched_off(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``HCEKIT_METRICS=0`` leaves no ``/metrics`` route (404)."""
    monkeypatch.setenv("HCEKIT_METRICS", "0")
    app = create_app(make_config(backend, tmp_path, request))
    try:
        assert app.test_client().get("/metrics").status_code == 404
    finally:
        dispose(app)


def test_scrape_answers_when_the_database_does_not(app: Flask) -> None:
    """Database unreachable: counters and breakers are still exposed, the in-doubt gauge left out."""
    from dataclasses import replace

    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    from tsp_backend.metrics import render

    services = app.extensions["hcekit"]
    broken = create_engine("sqlite:////nonexistent-directory/hcekit.db")
    text = render(replace(services, sessions_factory=sessionmaker(broken))).decode()
    broken.dispose()
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"hcekit_breaker_state", "hcekit_authorizations", "hcekit_authorization_seconds"} <= names
    assert "hcekit_transactions_in_doubt" not in names


def test_a_key_in_flight_is_counted_as_a_conflict(client: FlaskClient) -> None:
    """A request whose key another request holds gets 409 and counts one in-flight conflict."""
    wallet = make_wallet(client)
    svc = client.application.extensions["hcekit"]
    body = {"pan": "4111111111111111", "expiry": "12/30", "cvv": "123", "deviceId": wallet.device_id}
    key = str(uuid.uuid4())
    fingerprint = svc.idempotency.fingerprint({"body": body, "args": {}})
    held = svc.idempotency.begin(f"user:{wallet.user_id}", "POST /api/cards", key, fingerprint)
    before = scrape(client)
    answer = wallet.post("/api/cards", body, key=key)
    after = scrape(client)
    assert answer.status_code == 409, answer.get_json()
    assert answer.get_json()["type"].endswith("idempotency-request-in-flight")
    assert delta(before, after, "hcekit_idempotency_conflicts_total", reason="in-flight") == 1
    assert delta(before, after, "hcekit_idempotency_conflicts_total", reason="reused") == 0
    svc.idempotency.release(held)
