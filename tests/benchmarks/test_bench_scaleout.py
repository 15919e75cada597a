"""The scale-out benchmark's arithmetic and its line in ``run_all.py`` (no servers started)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_scaleout  # noqa: E402
import run_all  # noqa: E402


def _row(rps: float, p99: float) -> dict[str, Any]:
    return {
        "rps": rps,
        "p50_ms": p99 / 2,
        "p95_ms": p99 * 0.9,
        "p99_ms": p99,
        "per_instance_rps": {"A": rps, "B": 0.0},
        "cpu_ms": {"instance A": 1.0},
        "machine_ms": 1.0,
        "pg": {"commits": 2.0},
        "redis_commands": {"get": 1.0},
        "redis_bytes": {"in": 1.0, "out": 1.0},
        "http_bytes": None,
        "codes": {"00": 10},
    }


def test_ratios_are_medians_of_paired_rounds_not_ratios_of_medians() -> None:
    # Round speeds drift (a busy machine); each round's lb-2 is 0.5x its own direct.
    rounds = [
        {"direct": _row(100, 10), "lb-1": _row(90, 11), "lb-2": _row(50, 20)},
        {"direct": _row(400, 10), "lb-1": _row(360, 11), "lb-2": _row(200, 20)},
        {"direct": _row(40, 10), "lb-1": _row(36, 11), "lb-2": _row(20, 20)},
    ]
    summary = bench_scaleout.report(rounds, argparse.Namespace())
    assert summary["lb-2"]["ratio_vs_direct"]["rps"] == 0.5
    assert summary["lb-1"]["ratio_vs_direct"]["rps"] == 0.9
    assert summary["lb-2"]["ratio_vs_direct"]["p99_ms"] == 2.0
    # paired ratios 0.5, 0.95, 0.75 (median 0.75); the ratio of the medians would be 50 / 100
    rounds[1]["lb-2"] = _row(380, 20)
    rounds[2]["lb-2"] = _row(30, 20)
    summary = bench_scaleout.report(rounds, argparse.Namespace())
    assert summary["lb-2"]["ratio_vs_direct"]["rps"] == 0.75
    assert summary["lb-2"]["rps"] / summary["direct"]["rps"] == 0.5


def test_run_all_reads_the_three_set_ups_and_the_checks() -> None:
    out = "\n".join(
        [
            'scaleout_direct {"requests": 1200, "rps": 45.6, "p50_ms": 309.35, "p99_ms": 878.03, '
            '"failures": 0, "ratio_rps": 1.0}',
            'scaleout_lb_1 {"requests": 1200, "rps": 42.3, "p50_ms": 330.2, "p99_ms": 798.86, '
            '"failures": 0, "ratio_rps": 0.74}',
            'scaleout_lb_2 {"requests": 1200, "rps": 47.1, "p50_ms": 307.55, "p99_ms": 922.67, '
            '"failures": 0, "ratio_rps": 1.033}',
            "  [ok] every request answered exactly once: 3900 of 3900",
            "  [FAILED] no pending row left: 1 pending",
        ]
    )
    rows = run_all._scaleout(out)
    assert [r.measure.split(",")[0] for r in rows] == [
        "1 instance direct",
        "HAProxy + 1 instance",
        "HAProxy + 2 instances",
    ]
    assert rows[2].ratio == "1.03x" and rows[0].ratio == ""
    assert rows[2].note.endswith("checks 1/2 ok")
    assert "scaleout" in [b.name for b in run_all.BENCHES]
