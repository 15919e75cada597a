"""The SQLite tail benchmark: it stops when provisioning stops, run_all reads it, and a short run works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_sqlite_tail  # noqa: E402
import run_all  # noqa: E402


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (409, {"type": "https://hcekit.dev/problems/conflict", "status": 409, "detail": "device is full"}),
        (201, {"status": "verify", "cardId": 7}),
        (503, {"status": 503, "detail": "the database is unavailable"}),
    ],
)
def test_a_provisioning_answer_without_a_profile_stops_the_run(status: int, body: dict[str, object]) -> None:
    """An answer without the field asked for (an error, or a card left to verify) ends the run, naming it."""
    response = httpx.Response(status, json=body)
    with pytest.raises(SystemExit, match=rf"card of device 3: HTTP {status} without 'profile'"):
        bench_sqlite_tail.expect(response, "card of device 3", "profile")


def test_a_provisioning_answer_with_a_profile_gives_it() -> None:
    """The field of a successful JSON answer is returned."""
    response = httpx.Response(201, json={"profile": {"sealed": "x"}, "cardId": 1})
    assert bench_sqlite_tail.expect(response, "card", "profile") == {"sealed": "x"}


def _summary(p50_one: float, p99_many: float) -> dict[str, object]:
    ratio = p99_many / p50_one
    return {
        "clients": 16,
        "one": {"requests": 80, "p50_ms": p50_one, "p90_ms": p50_one, "p99_ms": p50_one, "cpu_ms": 1.0},
        "many": {"requests": 256, "p50_ms": p99_many, "p90_ms": p99_many, "p99_ms": p99_many, "cpu_ms": 1.0},
        "ratio_p99_many_p50_one": round(ratio, 2),
        "met": ratio <= 8,
        "database_locked": 0,
    }


@pytest.mark.parametrize(("p99_many", "status"), [(70.0, "met"), (90.0, "NOT met")])
def test_run_all_reads_the_summary_and_judges_the_8x_target(p99_many: float, status: str) -> None:
    """run_all.py turns the summary line into two rows and the SQLite target's status."""
    out = "   1 client: ...\nsqlite_tail " + json.dumps(_summary(10.0, p99_many)) + "\n"
    rows = run_all._sqlite_tail(out)
    assert [r.hcekit for r in rows] == ["10.00 / 10.00", f"{p99_many:.2f} / {p99_many:.2f}"]
    target = next(t for t in run_all._service_targets() if t.target.startswith("SQLite default"))
    assert target.status == status
    assert target.ratio == f"{p99_many / 10:.2f}x of 8"


@pytest.mark.integration
def test_a_short_run_on_the_embedded_default_authorizes_every_tap(tmp_path: Path) -> None:
    """A tiny run serves, provisions, taps and answers every authorization 00, with no lock error."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    args = ["--devices", "2", "--clients", "2", "--rounds", "1", "--single", "3", "--each", "2"]
    args += ["--warmup", "2"]
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_sqlite_tail.py"), *args, "--json"],
        capture_output=True, text=True, timeout=600, check=False, env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["answers"] == {"00": 3 + 2 * 2}
    assert summary["database_locked"] == 0
    assert summary["one"]["requests"] == 3 and summary["many"]["requests"] == 4
