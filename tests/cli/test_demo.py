"""``hcekit demo`` end to end, and ``hcekit bench``."""

from __future__ import annotations

import json
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from apdu.trace import mask_apdu, read_trace
from cli.bench import percentile, summarise
from cli.main import cli, main

EXPECTED = [
    ("register a user and this device", "logged in"),
    ("provision a Visa card", "ACTIVE (APPROVED)"),
    ("provision a Mastercard card", "code verified, ACTIVE"),
    ("create a terminal key", None),
    ("tap the Visa card (qVSDC)", "approved"),
    ("tap the Mastercard card (M/Chip)", "approved"),
    ("pay in an app with the default card", "approved"),
    ("suspend the Visa card and tap it", None),
]


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private temporary directory for everything the demo creates."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def test_demo_json_every_outcome_as_expected(private_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The demo exits 0, every step has its expected outcome (both kernels and the decline), and
    the temp directory then holds its trace -- every APDU of the three taps, masked -- and nothing else."""
    threads = threading.active_count()
    code = main(["demo", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["ok"] is True
    assert [(s["name"], s["ok"]) for s in doc["steps"]] == [(name, True) for name, _ in EXPECTED]
    for step, (_, actual) in zip(doc["steps"], EXPECTED, strict=True):
        if actual is not None:
            assert step["actual"] == actual
    assert doc["steps"][-1]["actual"].startswith("declined")
    kernels = [t["kernel"] for t in doc["taps"]]
    assert kernels == ["visa", "mastercard", "visa"]
    assert all(t["timing"]["total_ms"] > 0 for t in doc["taps"])
    assert threading.active_count() == threads
    assert [p.name for p in private_tmp.iterdir()] == ["hcekit-demo-trace.jsonl"]
    assert doc["trace"] == str(private_tmp / "hcekit-demo-trace.jsonl")
    _assert_masked_taps(private_tmp / "hcekit-demo-trace.jsonl")


def _assert_masked_taps(trace: Path) -> None:
    """``trace`` holds every APDU of the demo's three taps, already masked."""
    records = read_trace(trace.read_text().splitlines())
    assert len(records) >= 2 * (4 + 5 + 4)
    for record in records:
        assert mask_apdu(record.raw, record.dir) == record.raw


def test_demo_text_output(private_tmp: Path, tmp_path: Path) -> None:
    """The text summary shows outcomes, decoded APDUs, the waterfall and the trace path; --trace FILE
    gets the masked trace, and the temp directory is left empty."""
    trace = tmp_path / "demo.jsonl"
    result = CliRunner().invoke(cli, ["demo", "--trace", str(trace)])
    assert result.exit_code == 0, result.output
    out = result.output
    for expected in ("Visa tap", "Mastercard tap", "suspended Visa tap", "GENERATE AC",
                     "Application Cryptogram", "500 ms budget", "every outcome as expected",
                     "demo.jsonl"):
        assert expected in out, expected
    _assert_masked_taps(trace)
    assert list(private_tmp.iterdir()) == []


# ---------------------------------------------------------------------------- bench


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1.0],                     50, 1.0),  # a single value is every percentile
        ([5.0, 1.0, 3.0, 2.0, 4.0], 50, 3.0),  # nearest rank: ceil(0.5 * 5) = 3rd
        ([5.0, 1.0, 3.0, 2.0, 4.0], 95, 5.0),  # ceil(0.95 * 5) = 5th
        (list(map(float, range(1, 101))), 99, 99.0),  # ceil(0.99 * 100) = 99th
    ],
)
def test_percentile_nearest_rank(values: list[float], q: float, expected: float) -> None:
    """Percentiles are nearest-rank (the definition benchmarks/ uses)."""
    assert percentile(values, q) == expected


def test_summarise_keys() -> None:
    """summarise gives p50, p95, p99, max and mean."""
    assert summarise([1.0, 2.0, 3.0]) == {"p50": 2.0, "p95": 3.0, "p99": 3.0, "max": 3.0, "mean": 2.0}


@pytest.mark.parametrize("kernel", ["visa", "mastercard"])
def test_bench_in_process_json(kernel: str, capsys: pytest.CaptureFixture[str]) -> None:
    """bench --json reports every phase of the kernel's tap and the totals."""
    assert main(["bench", "--taps", "20", "--warmup", "1", "--kernel", kernel, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["taps"] == 20
    assert doc["outcomes"] == {"online_request": 20}
    phases = set(doc["phases"])
    assert {"select_ppse", "select_aid", "gpo", "read_record", "terminal", "tap", "total"} <= phases
    assert ("generate_ac" in phases) == (kernel == "mastercard")
    for stats in doc["phases"].values():
        assert stats["p50"] <= stats["p95"] <= stats["p99"] <= stats["max"]


def test_bench_outlasts_the_test_cards_keys(capsys: pytest.CaptureFixture[str]) -> None:
    """More taps than the test card has key uses still gives ARQCs (a fresh batch per exhaustion)."""
    assert main(["bench", "--taps", "520", "--warmup", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outcomes"] == {"online_request": 520}


def test_bench_text_table() -> None:
    """The text report has the phases and the budget line."""
    result = CliRunner().invoke(cli, ["bench", "--taps", "5"])
    assert result.exit_code == 0, result.output
    assert "GET PROCESSING OPTIONS" in result.output
    assert "of the 500 ms budget" in result.output


def test_bench_with_host_against_loopback_tsp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """bench --host authorizes each tap over HTTP; the wallet's card is approved."""
    from tsp_backend.testing import LoopbackTSP

    wallet = tmp_path / "w"
    with LoopbackTSP() as tsp:
        common = ["--wallet", str(wallet), "--host", tsp.url]
        assert main(["register", "--email", "b@example.com", "--password", "password-123", *common]) == 0
        assert main(["provision", "--pan", "4111111111111111", "--expiry", "12/30", "--cvv", "123",
                     *common]) == 0
        from hce.tspclient import TSPClient
        from hce.wallet import Wallet

        session = Wallet.open(wallet).session
        assert session is not None
        with TSPClient(tsp.url, session.token) as client:
            key = client.post("/api/terminals", {"name": "bench"})["apiKey"]
        capsys.readouterr()
        code = main(["bench", "--taps", "4", "--warmup", "0", "--wallet", str(wallet), "--host", tsp.url,
                     "--api-key", key, "--json"])
        doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["outcomes"] == {"approved": 4}
    assert doc["phases"]["authorization"]["max"] > 0


def test_bench_plot_without_matplotlib(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Without matplotlib, --plot is one error line naming the extra to install."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["bench", "--taps", "2", "--plot", str(tmp_path / "p.png")]) == 1
    assert capsys.readouterr().err == "error: --plot needs matplotlib: pip install 'hcekit[plot]'\n"


def test_bench_plot_writes_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With matplotlib, --plot writes a PNG."""
    pytest.importorskip("matplotlib")
    path = tmp_path / "p.png"
    assert main(["bench", "--taps", "30", "--plot", str(path), "--json"]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(capsys.readouterr().out)["plot"] == str(path)
