"""The authorization client against a real HTTP server on loopback (Flask served by werkzeug)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from terminal.errors import HostError, HostRejected
from terminal.host import AuthorizationClient, parse_answer
from terminal.outcome import Outcome
from terminal.testing import CardTerminalPair, ScriptedTransport
from tests.terminal.terminal_cards import visa_card

API_KEY = "term_test_key"


def make_app(seen: list[dict[str, Any]]) -> Flask:
    app = Flask(__name__)

    @app.post("/api/authorize")
    def authorize() -> Any:
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            problem = {"type": "https://hcekit.dev/problems/unauthorized", "title": "Unauthorized",
                       "status": 401, "detail": "bad terminal key"}
            return jsonify(problem), 401, {"Content-Type": "application/problem+json"}
        body = request.get_json()
        seen.append({"body": body, "idempotency": request.headers.get("Idempotency-Key")})
        approved = body["amount"] < 10_000
        return jsonify({
            "approved": approved, "responseCode": "00" if approved else "51", "authCode": "A1B2C3",
            "arpc": "0011223344556677", "transactionId": "tx-1", "network": "visa",
            "reason": "" if approved else "insufficient funds",
        })

    @app.post("/slow/api/authorize")
    def broken() -> Any:
        return "not json", 200

    return app


@pytest.fixture
def host() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    server = make_server("127.0.0.1", 0, make_app(seen))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        thread.join()


def test_online_request_is_approved_by_the_host(host: tuple[str, list[dict[str, Any]]]) -> None:
    """The host's approval turns the online request into Approved, with ARPC and auth code."""
    url, seen = host
    pair = CardTerminalPair(ScriptedTransport(visa_card()).as_card())
    with AuthorizationClient(url, API_KEY) as client:
        result = pair.tap(1250, host=client)
    out = result.outcome
    assert out.outcome is Outcome.APPROVED
    assert out.host is not None and out.host.auth_code == "A1B2C3"
    assert out.host.arpc == bytes.fromhex("0011223344556677")
    body = seen[0]["body"]
    assert body["emv"] == out.authorization_data.hex().upper()
    assert (body["amount"], body["currency"], body["channel"]) == (1250, "EUR", "contactless")
    assert body["merchant"] == {"id": "M-1", "name": "Corner Café", "mcc": "5814"}
    assert body["terminal"] == {"id": "T-1"}
    assert len(seen[0]["idempotency"]) == 36
    assert result.timing.authorization_ms is not None


def test_host_decline(host: tuple[str, list[dict[str, Any]]]) -> None:
    """The host's decline turns the online request into Declined with its reason."""
    url, _ = host
    pair = CardTerminalPair(ScriptedTransport(visa_card()).as_card())
    with AuthorizationClient(url, API_KEY) as client:
        out = pair.tap(50_000, host=client).outcome
    assert (out.outcome, out.reason) == (Outcome.DECLINED, "insufficient funds")


def test_problem_document_is_host_rejected(host: tuple[str, list[dict[str, Any]]]) -> None:
    """An RFC 9457 answer is HostRejected carrying its type and status."""
    url, _ = host
    with AuthorizationClient(url, "wrong") as client, pytest.raises(HostRejected) as info:
        client.authorize({"emv": "", "amount": 1})
    assert info.value.type == "https://hcekit.dev/problems/unauthorized"
    assert info.value.status == 401


def test_answer_that_is_not_json(host: tuple[str, list[dict[str, Any]]]) -> None:
    """A 200 answer that is not JSON is a HostError."""
    url, _ = host
    with AuthorizationClient(url + "/slow", API_KEY) as client, pytest.raises(HostError):
        client.authorize({})


def test_unreachable_host() -> None:
    """A host nobody listens on is a HostError, quickly."""
    with AuthorizationClient("http://127.0.0.1:9", API_KEY, timeout=0.5) as client, pytest.raises(HostError):
        client.authorize({})


@pytest.mark.parametrize("doc", [None, [], {}, {"approved": "yes"}, {"approved": True, "arpc": "XYZ"}])
def test_malformed_answers(doc: Any) -> None:
    """An answer without a boolean 'approved' or with a non-hex ARPC is a HostError."""
    with pytest.raises(HostError):
        parse_answer(doc)
