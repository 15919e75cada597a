"""A token service that authorizes through ``hcekit network-sim`` over real HTTP, for tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.tsp_backend.tsp_helpers import Wallet, dispose, make_config, make_wallet
from tests.tsp_backend.tsp_pay_helpers import FlaskHost, applet, provision_profile, tap, terminal_key
from tsp_backend.app import create_app
from tsp_backend.services.issuers import IssuerSimulator
from tsp_backend.services.netsim import Latency, make_simulators
from tsp_backend.services.networks import NETWORKS
from tsp_backend.simulators.netsim import NetworkSimServer, running_network_sim


@contextmanager
def visa_down() -> Iterator[NetworkSimServer]:
    """``hcekit network-sim`` on a free loopback port, every network, Visa down."""
    simulators = make_simulators(tuple(NETWORKS), IssuerSimulator(), down=frozenset({"visa"}))
    with running_network_sim(simulators) as server:
        yield server


def network_app(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, url: str, **extra: object
) -> Flask:
    """The service with every network at ``url``: 200 ms time-outs, breakers open after 2 failures."""
    config = make_config(
        backend,
        tmp_path,
        request,
        breaker_fail_max=2,
        breaker_reset_s=60,
        extra={"network_urls": {name: url for name in NETWORKS}, "network_timeout_s": 0.2, **extra},
    )
    application = create_app(config)
    application.testing = True
    return application


@contextmanager
def paying(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, url: str, **extra: object
) -> Iterator[tuple[Flask, FlaskClient, Wallet, FlaskHost]]:
    """:func:`network_app` with a signed-in wallet and a terminal key; disposed afterwards."""
    app = network_app(backend, tmp_path, request, url, **extra)
    try:
        client = app.test_client()
        wallet = make_wallet(client)
        yield app, client, wallet, FlaskHost(client, terminal_key(wallet))
    finally:
        dispose(app)


def tap_timed_out(sim: NetworkSimServer, wallet: Wallet, host: FlaskHost) -> dict[str, Any]:
    """Slow Mastercard's network past the service's time-out, then tap a new Mastercard token for
    30.00: the terminal hears 91 and the transaction is left in doubt. The token's profile."""
    sim.simulators["mastercard"].latency = Latency(600, 600)
    _, profile = provision_profile(wallet, "5454545454545454")
    answer = tap(applet(profile), 3000, host).outcome.host
    assert answer is not None and answer.response_code == "91"
    return profile
