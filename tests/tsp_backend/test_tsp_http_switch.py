"""HttpSwitch, the service's client of ``hcekit network-sim``, over real loopback sockets.

What each failure means to the service (tsp_backend/services/netsim.py): a connection that
cannot be opened is SwitchDown (nothing was sent); a failure once the request may have left —
no answer in time, a connection dropped before the answer — is SwitchTimeout (in doubt).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tsp_backend.services.issuers import IssuerRequest, IssuerSimulator
from tsp_backend.services.netsim import HttpSwitch, Latency, SwitchDown, SwitchTimeout, make_simulators
from tsp_backend.services.networks import NETWORKS
from tsp_backend.simulators.netsim import NetworkSimServer, running_network_sim

GENEROUS_S = 10.0
"""A time-out no busy machine reaches: these tests never depend on speed."""


def payment(reference: str) -> IssuerRequest:
    return IssuerRequest(reference, "4111111111111111", 1250, "978", merchant_id="M-1", mcc="5411")


@pytest.fixture
def sim() -> Iterator[NetworkSimServer]:
    """Every network served over HTTP; Visa down."""
    simulators = make_simulators(tuple(NETWORKS), IssuerSimulator(), down=frozenset({"visa"}))
    with running_network_sim(simulators) as server:
        yield server


def test_decide_look_up_and_reverse_over_http(sim: NetworkSimServer) -> None:
    switch = HttpSwitch(sim.url, "mastercard")
    try:
        assert switch.status("ref-1", GENEROUS_S) is None
        decision = switch.authorize(payment("ref-1"), GENEROUS_S)
        assert decision.approved and decision.auth_code is not None and len(decision.auth_code) == 6
        assert switch.authorize(payment("ref-1"), GENEROUS_S) == decision  # a retry: the first decision
        assert switch.status("ref-1", GENEROUS_S) == decision
        assert switch.reverse("ref-1", GENEROUS_S) == decision
        assert switch.reverse("never-seen", GENEROUS_S) is None
    finally:
        switch.close()


def test_a_network_that_is_down_or_not_served_is_down(sim: NetworkSimServer) -> None:
    with pytest.raises(SwitchDown, match="answered HTTP 503"):
        HttpSwitch(sim.url, "visa").authorize(payment("ref-2"), GENEROUS_S)
    with pytest.raises(SwitchDown, match="not served"):
        HttpSwitch(sim.url, "diners").authorize(payment("ref-2"), GENEROUS_S)


def test_a_refused_connection_is_down() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SwitchDown, match="cannot reach"):
        HttpSwitch(f"http://127.0.0.1:{port}", "visa").authorize(payment("ref-3"), GENEROUS_S)


def test_no_answer_in_time_is_in_doubt_and_the_issuer_decided_anyway() -> None:
    simulators = make_simulators(tuple(NETWORKS), IssuerSimulator(), latency=Latency(1000, 1000))
    with running_network_sim(simulators) as server:
        switch = HttpSwitch(server.url, "amex")
        with pytest.raises(SwitchTimeout):
            switch.authorize(payment("ref-4"), 0.25)
        issuer = simulators["amex"].issuer
        deadline = time.monotonic() + GENEROUS_S
        while issuer.status("ref-4") is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert issuer.status("ref-4") is not None  # processed although the caller gave up


def _length(request: bytes) -> int:
    """The Content-Length of an HTTP request's head (0 until the head is complete or without one)."""
    head = request.partition(b"\r\n\r\n")[0]
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_a_connection_dropped_before_the_answer_is_in_doubt() -> None:
    """The server read the request and closed: it may have acted on it, so never 'down'."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def read_then_drop() -> None:
        """Read the whole request (the client may send its head and body in two writes), then close."""
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            received.append(data)

    thread = threading.Thread(target=read_then_drop, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(SwitchTimeout):
            HttpSwitch(url, "visa").authorize(payment("ref-5"), GENEROUS_S)
        thread.join(GENEROUS_S)
        assert received and received[0].startswith(b"POST /visa/authorize ")
        assert b"4111111111111111" in received[0]  # the request had left
    finally:
        listener.close()
