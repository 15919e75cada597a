"""`hcekit tap` and `hcekit readers` through the real command line."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from cli.main import cli, main

pytest.importorskip("hce.applet")


def run(*args: str) -> Any:
    result = CliRunner().invoke(cli, ["tap", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("kernel", ["visa", "mastercard"])
def test_tap_sim_json(kernel: str) -> None:
    """--json gives the outcome, timing with phases and APDUs, and the decoded authorization data."""
    doc = json.loads(run("--reader", "sim", "--kernel", kernel, "--amount", "12.50", "--json").output)
    assert doc["outcome"] == "online_request"
    assert (doc["amount"], doc["currency"], doc["kernel"]) == (1250, "EUR", kernel)
    timing = doc["timing"]
    assert timing["total_ms"] > 0 and timing["budget_ms"] == 500
    assert {p["name"] for p in timing["phases"]} >= {"select_ppse", "select_aid", "gpo", "terminal"}
    assert timing["apdus"][0]["command"] == "00A404000E325041592E5359532E444446303100"
    tags = {row["tag"]: row for row in doc["authorization"]["tags"]}
    assert "9F26" in tags and "*" in tags["57"]["value"]
    assert doc["authorization"]["emv"] is None
    assert "*" in doc["pan"]


def test_tap_unmasked_gives_the_block() -> None:
    """--unmasked shows the field-55 block and the PAN."""
    doc = json.loads(run("--json", "--unmasked").output)
    assert doc["pan"] == "4761739001010010"
    assert doc["authorization"]["emv"].startswith("9F2608")


def test_tap_text_output() -> None:
    """Without --json the outcome, the authorization data and the waterfall are printed."""
    output = run("--amount", "3", "--apdus").output
    assert "online_request" in output and "budget" in output and "GET PROCESSING OPTIONS" in output


def test_trace_then_replay(tmp_path: Path) -> None:
    """A tap's --trace file replays to the same outcome with replay:FILE; the trace is masked."""
    trace = tmp_path / "tap.jsonl"
    run("--kernel", "mastercard", "--trace", str(trace), "--json")
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    assert lines[0] == {**lines[0], "dir": "C", "hex": "00A404000E325041592E5359532E444446303100"}
    assert "5413330089010012" not in trace.read_text()
    doc = json.loads(run("--reader", f"replay:{trace}", "--json").output)
    assert doc["outcome"] == "online_request"
    assert doc["reader"] == "replay:tap.jsonl"


@pytest.mark.parametrize(
    ("args",                                                  "code"),
    [
        (["--amount", "12.505"],                              2),   # more decimals than EUR has
        (["--currency", "XXX"],                               2),
        (["--offline", "--host", "http://127.0.0.1:9"],       2),
        (["--host", "http://127.0.0.1:9"],                    2),   # no API key
        (["--reader", "usb"],                                 1),
        (["--reader", "replay:/nonexistent/trace.jsonl"],     1),
    ],
)
def test_tap_errors(args: list[str], code: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad options exit 2, unusable readers exit 1, each with one line on stderr."""
    monkeypatch.delenv("HCEKIT_TERMINAL_KEY", raising=False)
    assert main(["tap", *args]) == code


def test_amount_over_the_contactless_limit() -> None:
    """An amount at the contactless transaction limit is Try Another Interface with no APDU."""
    doc = json.loads(run("--amount", "1000", "--json").output)
    assert doc["outcome"] == "try_another_interface"
    assert doc["timing"]["apdus"] == []


@pytest.fixture
def tsp() -> Iterator[str]:
    app = Flask(__name__)

    @app.post("/api/authorize")
    def authorize() -> Any:
        assert request.headers["Authorization"] == "Bearer k"
        return jsonify({"approved": True, "responseCode": "00", "authCode": "X1", "arpc": "AABB",
                        "transactionId": "t", "network": "visa", "reason": ""})

    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def test_tap_with_host(tsp: str) -> None:
    """--host sends the online request and the answer finishes the outcome; timing includes it."""
    doc = json.loads(run("--host", tsp, "--api-key", "k", "--json").output)
    assert doc["outcome"] == "approved"
    assert doc["host"]["authCode"] == "X1"
    assert doc["timing"]["authorization_ms"] > 0
    assert any(p["name"] == "authorization" for p in doc["timing"]["phases"])


def test_readers_json() -> None:
    """`hcekit readers --json` lists PC/SC readers and nfcpy devices, or says why it cannot."""
    result = CliRunner().invoke(cli, ["readers", "--json"])
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert set(doc) == {"pcsc", "nfc", "errors"}
