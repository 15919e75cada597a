"""``hcekit network-sim``: the card networks' switches and issuers served over HTTP.

The simulators themselves — latency, errors, outages, the issuer's ledger — are
:class:`~tsp_backend.services.netsim.SwitchSimulator` and
:class:`~tsp_backend.services.issuers.IssuerSimulator`; this module is only their HTTP face, and
:class:`~tsp_backend.services.netsim.HttpSwitch` is the token service's client of it.

HTTP interface of ``hcekit network-sim``
----------------------------------------

==========================================  ==================================================
``POST /<network>/authorize``               ``{"reference", "pan", "amount", "currency",
                                            "merchantId", "mcc"}`` → 200 ``{"code",
                                            "authCode", "reason"}``; 503 when down or failing
``GET /<network>/transactions/<ref>``       the recorded decision, or 404
``POST /<network>/transactions/<ref>/reverse``  reverse or void; ``{"prior": decision|null}``
``POST /admin/<network>``                   ``{"down": bool, "errorRate": float,
                                            "latencyMs": "p50,p99"}`` changes a simulator
``GET /healthz``                            every network's settings
==========================================  ==================================================

An outage answers at once (503); a failure answers 503 after the latency; otherwise the
simulator waits half its latency, the issuer decides, and the other half passes before the
answer (:meth:`~tsp_backend.services.netsim.SwitchSimulator.authorize`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, Flask, abort, jsonify, make_response, request

from tsp_backend.services.issuers import IssuerRequest
from tsp_backend.services.netsim import Latency, SwitchDown, SwitchSimulator


def blueprint(simulators: Mapping[str, SwitchSimulator]) -> Blueprint:
    """The routes of the module table over ``simulators``."""
    bp = Blueprint("network_sim", __name__)

    def simulator(network: str) -> SwitchSimulator:
        sim = simulators.get(network)
        if sim is None:
            abort(404)
        return sim

    def live(network: str) -> SwitchSimulator:
        """The simulator of ``network``: 503 when it is down."""
        sim = simulator(network)
        if sim.down:
            abort(make_response(jsonify({"error": f"{network} is down"}), 503))
        return sim

    @bp.post("/<network>/authorize")
    def authorize(network: str) -> Any:
        sim = live(network)
        doc = request.get_json(force=True)
        issuer_request = IssuerRequest(
            reference=str(doc["reference"]),
            pan=str(doc["pan"]),
            amount=int(doc["amount"]),
            currency=str(doc.get("currency") or ""),
            merchant_id=str(doc.get("merchantId") or ""),
            mcc=str(doc.get("mcc") or ""),
        )
        try:
            decision = sim.authorize(issuer_request, math.inf)
        except SwitchDown:
            return jsonify({"error": f"{network} failed"}), 503
        return jsonify(decision.to_json())

    @bp.get("/<network>/transactions/<reference>")
    def status(network: str, reference: str) -> Any:
        decision = live(network).issuer.status(reference)
        if decision is None:
            abort(404)
        return jsonify(decision.to_json())

    @bp.post("/<network>/transactions/<reference>/reverse")
    def reverse(network: str, reference: str) -> Any:
        prior = live(network).issuer.reverse(reference)
        return jsonify({"prior": None if prior is None else prior.to_json()})

    @bp.post("/admin/<network>")
    def admin(network: str) -> Any:
        sim = simulator(network)
        doc = request.get_json(force=True) or {}
        if "down" in doc:
            sim.down = bool(doc["down"])
        if "errorRate" in doc:
            sim.error_rate = float(doc["errorRate"])
        if "latencyMs" in doc:
            sim.latency = Latency.parse(str(doc["latencyMs"]))
        return jsonify(sim.settings())

    @bp.get("/healthz")
    def healthz() -> Any:
        return jsonify({name: sim.settings() for name, sim in simulators.items()})

    return bp


def create_network_sim_app(simulators: Mapping[str, SwitchSimulator]) -> Flask:
    """The WSGI application of ``hcekit network-sim`` (module table) over ``simulators``."""
    app = Flask("hcekit_network_sim")
    app.register_blueprint(blueprint(simulators))
    return app


class NetworkSimServer:
    """``hcekit network-sim`` in a thread: a real HTTP server on ``host:port`` (0: any free port)."""

    def __init__(
        self, simulators: Mapping[str, SwitchSimulator], host: str = "127.0.0.1", port: int = 0
    ) -> None:
        from werkzeug.serving import make_server

        self.simulators = simulators
        self._server = make_server(host, port, create_network_sim_app(simulators), threaded=True)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread: threading.Thread | None = None

    def start(self) -> NetworkSimServer:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="network-sim", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted."""
        self._server.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


@contextmanager
def running_network_sim(simulators: Mapping[str, SwitchSimulator]) -> Iterator[NetworkSimServer]:
    """A :class:`NetworkSimServer` for the duration of a ``with`` block."""
    server = NetworkSimServer(simulators).start()
    try:
        yield server
    finally:
        server.stop()
