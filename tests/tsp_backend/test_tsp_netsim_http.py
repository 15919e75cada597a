"""The HTTP face of ``hcekit network-sim`` (tsp_backend/simulators/netsim.py), through a test client."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tsp_backend.services.issuers import IssuerSimulator
from tsp_backend.services.netsim import make_simulators
from tsp_backend.services.networks import NETWORKS
from tsp_backend.simulators.netsim import create_network_sim_app

PAYMENT = {"reference": "ref-1", "pan": "4111111111111111", "amount": 1250, "currency": "EUR", "mcc": "5411"}


@pytest.fixture
def sim() -> FlaskClient:
    """Every network, Visa down, no latency."""
    simulators = make_simulators(tuple(NETWORKS), IssuerSimulator(), down=frozenset({"visa"}))
    return create_network_sim_app(simulators).test_client()


def test_a_network_that_is_down_answers_503_on_every_route(sim: FlaskClient) -> None:
    for response in (
        sim.post("/visa/authorize", json=PAYMENT),
        sim.get("/visa/transactions/ref-1"),
        sim.post("/visa/transactions/ref-1/reverse"),
    ):
        assert (response.status_code, response.get_json()) == (503, {"error": "visa is down"})


def test_authorize_status_reverse(sim: FlaskClient) -> None:
    assert sim.get("/mastercard/transactions/ref-1").status_code == 404
    decision = sim.post("/mastercard/authorize", json=PAYMENT).get_json()
    assert decision["code"] == "00" and len(decision["authCode"]) == 6
    assert sim.get("/mastercard/transactions/ref-1").get_json() == decision
    assert sim.post("/mastercard/transactions/ref-1/reverse").get_json() == {"prior": decision}


def test_failing_network_answers_503_and_admin_changes_it(sim: FlaskClient) -> None:
    settings = sim.post("/admin/mastercard", json={"errorRate": 1.0}).get_json()
    assert settings == {"down": False, "errorRate": 1.0, "latencyMs": settings["latencyMs"]}
    response = sim.post("/mastercard/authorize", json=PAYMENT)
    assert (response.status_code, response.get_json()) == (503, {"error": "mastercard failed"})
    sim.post("/admin/mastercard", json={"errorRate": 0.0, "down": True})
    assert sim.get("/healthz").get_json()["mastercard"]["down"] is True


def test_unknown_network_is_404(sim: FlaskClient) -> None:
    assert sim.post("/diners/authorize", json=PAYMENT).status_code == 404
