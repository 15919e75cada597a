"""Benchmark of the embedded default's tail: authorizations on SQLite, 1 client against 16.

The token service runs as ``hcekit serve`` runs it with one worker — the Flask application on
Werkzeug's threaded WSGI server, the default SQLite file and the in-process store — in its own
process. ``--devices`` devices are registered and each is provisioned once with one green Visa
card (a provisioning that answers without a card profile stops the run with its status and
body). Every tap is made in advance with the hce card and the terminal kernel, in each card's ATC
order, so the clients do no cryptography.

Then, in each of ``--rounds`` paired rounds, one client sends authorizations alone
(``POST /api/authorize``, keep-alive HTTP/1.1, a fresh Idempotency-Key each, closed loop), and
then ``--clients`` clients (threads, each with its own connection and its own cards) send them
together. The figures of both phases are pooled over the rounds and printed: p50, p90 and p99
of each, answers other than HTTP 200, the server's "database is locked" log lines, the ratio
p99(16 clients) / p50(1 client) against the target of 8x, p99 / p50 within the 16-client
phase (the tail's distance from the median under one load), and the server's CPU time per
authorization and the authorizations per second in each phase. Not a test::

    python benchmarks/bench_sqlite_tail.py            # 5 rounds
    python benchmarks/bench_sqlite_tail.py --quick    # a short run
    python benchmarks/bench_sqlite_tail.py --json     # the summary as one JSON line
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, deque
from pathlib import Path
from typing import Any

from _servers import ROOT, random_visa, start_http, stop_http

sys.path.insert(0, str(ROOT))

from terminal.timing import percentile

OVERRIDES: dict[str, Any] = {"luk_max_uses": 1_000_000, "ratelimit_enabled": False}
"""Configuration of the benchmarked service: keys that last the whole run, no rate limit."""

TARGET_RATIO = 8.0
"""p99 with 16 concurrent clients within this multiple of the 1-client p50 (same run)."""


def serve(port: int, log: str) -> None:
    """The service as ``hcekit serve`` runs it with one worker: threaded Werkzeug, default SQLite.

    Its standard error goes to ``log``, which is searched for lock errors afterwards.
    """
    from werkzeug.serving import make_server

    from tsp_backend.app import create_app
    from tsp_backend.config import Config

    with open(log, "ab") as sink:
        os.dup2(sink.fileno(), 2)
    app = create_app(Config.from_env(**OVERRIDES))
    make_server("127.0.0.1", port, app, threaded=True).serve_forever()


def expect(response: Any, what: str, field: str) -> Any:
    """``field`` of a JSON answer, or the end of the run with the answer's status and body.

    Provisioning stops giving a card profile when a limit is reached (the live tokens of one
    device, the rate limit); the benchmark then stops and says so rather than tap without cards.
    """
    body = response.json() if response.headers.get("content-type", "").endswith("json") else {}
    if response.status_code >= 400 or field not in body:
        raise SystemExit(f"{what}: HTTP {response.status_code} without {field!r}: {response.text[:300]}")
    return body[field]


def provision(base: str, devices: int) -> tuple[str, list[dict[str, Any]]]:
    """A terminal API key and the opened profiles of one green Visa card per device."""
    import httpx
    from cryptography.hazmat.primitives.asymmetric import ec

    from cryptogram.sealing import open_sealed, point_bytes

    http = httpx.Client(base_url=base, timeout=60)
    creds = {"email": "bench@example.com", "password": "benchmark-pass"}
    http.post("/api/auth/register", json=creds)
    token = expect(http.post("/api/auth/login", json=creds), "login", "token")
    http.cookies.clear()
    auth = {"Authorization": f"Bearer {token}"}
    api_key = expect(http.post("/api/terminals", json={"name": "bench"}, headers=auth), "terminal", "apiKey")
    profiles = []
    for i in range(devices):
        device_key = ec.generate_private_key(ec.SECP256R1())
        public = base64.b64encode(point_bytes(device_key.public_key())).decode()
        device = http.post("/api/devices", json={"name": f"d{i}", "publicKey": public}, headers=auth)
        device_id = expect(device, f"device {i}", "id")
        body = {"pan": random_visa(), "expiry": "12/30", "cvv": "123", "deviceId": device_id}
        headers = {**auth, "Idempotency-Key": str(uuid.uuid4())}
        sealed = expect(http.post("/api/cards", json=body, headers=headers), f"card of device {i}", "profile")
        profiles.append(open_sealed(device_key, sealed))
    http.close()
    return api_key, profiles


def make_taps(profiles: list[dict[str, Any]], per_card: int) -> list[deque[bytes]]:
    """``per_card`` authorization bodies (JSON) per card, each card's in ATC order."""
    from hce.applet import CardApplet
    from hce.profile import CardProfile
    from terminal.outcome import authorization_request
    from terminal.testing import CardTerminalPair

    out = []
    date = time.strftime("%y%m%d")
    for profile in profiles:
        pair = CardTerminalPair(
            CardApplet(CardProfile.from_dict(profile), clock=time.time).process, date=date
        )
        bodies: deque[bytes] = deque()
        for i in range(per_card):
            outcome = pair.tap(1000 + i % 3000).outcome
            bodies.append(json.dumps(authorization_request(outcome, terminal_id="T-bench")).encode())
        out.append(bodies)
    return out


class Client:
    """One terminal: a keep-alive connection and the cards it taps, in turn."""

    def __init__(self, port: int, api_key: str, cards: list[deque[bytes]]) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.api_key = api_key
        self.cards = cards
        self.turn = 0

    def authorize(self) -> tuple[float, str]:
        """One authorization: its latency in seconds and its answer (response code or HTTP status)."""
        body = self.cards[self.turn % len(self.cards)].popleft()
        self.turn += 1
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "Idempotency-Key": str(uuid.uuid4()),
            "Content-Type": "application/json",
        }
        started = time.perf_counter()
        self.conn.request("POST", "/api/authorize", body, headers)
        response = self.conn.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            return elapsed, f"HTTP {response.status}"
        return elapsed, str(json.loads(payload).get("responseCode", "??"))

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def phase(clients: list[Client], requests: int) -> tuple[list[float], Counter[str]]:
    """Each client sends ``requests`` authorizations, all clients at once; latencies and answers."""
    latencies: list[float] = []
    answers: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(len(clients))

    def run(client: Client) -> None:
        start.wait()
        for _ in range(requests):
            latency, answer = client.authorize()
            with lock:
                latencies.append(latency)
                answers[answer] += 1

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, answers


def figures(latencies: list[float]) -> dict[str, float]:
    """p50, p90, p99 in milliseconds."""
    return {f"p{q}_ms": round(percentile(latencies, q) * 1000, 2) for q in (50, 90, 99)}


def measure(
    args: argparse.Namespace, port: int, api_key: str, taps: list[deque[bytes]], server_pid: int
) -> dict[str, Any]:
    """The paired rounds: 1 client, then ``args.clients`` clients; the pooled summary.

    Besides latencies, the server process's CPU time per authorization in each phase (user +
    system, from the kernel's accounting): a figure the other work on a shared machine disturbs
    far less than the wall clock.
    """
    import psutil

    server = psutil.Process(server_pid)
    alone = Client(port, api_key, taps)
    crowd = [Client(port, api_key, taps[i :: args.clients]) for i in range(args.clients)]
    one: list[float] = []
    many: list[float] = []
    cpu = {"one": 0.0, "many": 0.0}
    wall = {"one": 0.0, "many": 0.0}
    answers: Counter[str] = Counter()
    try:
        phase([alone], args.warmup)
        phase(crowd, max(1, args.warmup // args.clients))
        for _ in range(args.rounds):
            for key, clients, requests, pooled in (
                ("one", [alone], args.single, one),
                ("many", crowd, args.each, many),
            ):
                before, started = sum(server.cpu_times()[:2]), time.perf_counter()
                latencies, seen = phase(clients, requests)
                cpu[key] += sum(server.cpu_times()[:2]) - before
                wall[key] += time.perf_counter() - started
                pooled.extend(latencies)
                answers.update(seen)
    finally:
        for client in [alone, *crowd]:
            client.close()
    ratio = percentile(many, 99) / percentile(one, 50)
    spread = percentile(many, 99) / percentile(many, 50)
    return {
        "clients": args.clients,
        "devices": args.devices,
        "rounds": args.rounds,
        "one": {
            "requests": len(one),
            **figures(one),
            "cpu_ms": round(cpu["one"] * 1000 / len(one), 2),
            "per_s": round(len(one) / wall["one"], 1),
        },
        "many": {
            "requests": len(many),
            **figures(many),
            "cpu_ms": round(cpu["many"] * 1000 / len(many), 2),
            "per_s": round(len(many) / wall["many"], 1),
        },
        "ratio_p99_many_p50_one": round(ratio, 2),
        "spread_p99_p50_many": round(spread, 2),
        "target": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO,
        "answers": dict(answers),
    }


def report(summary: dict[str, Any], locked: int) -> None:
    """Print the summary for people, then as one JSON line (``run_all.py`` reads it)."""
    for key, label in (("one", "1 client"), ("many", f"{summary['clients']} clients")):
        row = summary[key]
        print(
            f"{label:>11}: {row['requests']:5d} authorizations  p50 {row['p50_ms']:8.2f} ms  "
            f"p90 {row['p90_ms']:8.2f} ms  p99 {row['p99_ms']:8.2f} ms  "
            f"server CPU {row['cpu_ms']:6.2f} ms  {row['per_s']:6.1f}/s"
        )
    ratio = summary["ratio_p99_many_p50_one"]
    print(
        f"p99({summary['clients']} clients) / p50(1 client) = {ratio:.2f}x  "
        f"(target <= {TARGET_RATIO:g}x: {'met' if summary['met'] else 'NOT met'})"
    )
    print(
        f"p99 / p50 within the {summary['clients']}-client phase = {summary['spread_p99_p50_many']:.2f}x "
        "(how far the tail stands from the median under the same load)"
    )
    others = {k: v for k, v in summary["answers"].items() if k.startswith("HTTP")}
    print(
        f"answers: {summary['answers']}; not HTTP 200: {sum(others.values())}; "
        f"server log lines 'database is locked': {locked}"
    )
    print("sqlite_tail " + json.dumps({**summary, "database_locked": locked}))


def main() -> None:
    """Start the service, provision, tap in advance, run the paired rounds, report."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--devices", type=int, default=32, help="devices, one card each (>= --clients)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients of the second phase")
    parser.add_argument("--rounds", type=int, default=5, help="paired rounds (1 client, then many)")
    parser.add_argument(
        "--single", type=int, default=80, help="authorizations of the 1-client phase per round"
    )
    parser.add_argument(
        "--each", type=int, default=20, help="authorizations per client of the many-client phase"
    )
    parser.add_argument("--warmup", type=int, default=32, help="unmeasured authorizations first")
    parser.add_argument("--quick", action="store_true", help="a short run (2 rounds, fewer requests)")
    parser.add_argument("--json", action="store_true", help="only the JSON summary line")
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--log", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.log)
        return
    if args.quick:
        args.rounds, args.single, args.each, args.warmup = 2, 40, 8, 16
    if args.devices < args.clients:
        parser.error("--devices must be at least --clients: each client taps its own cards")
    instance = Path(tempfile.mkdtemp(prefix="hcekit-sqlite-tail-"))
    log = instance / "server.log"
    env = {**os.environ, "HCEKIT_INSTANCE": str(instance), "HCEKIT_DEV": "1", "HCEKIT_RATELIMIT": "0"}
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)

    def command(port: int) -> list[str]:
        return [sys.executable, __file__, "--serve", str(port), "--log", str(log)]

    server, base = start_http(command, env)
    try:
        api_key, profiles = provision(base, args.devices)
        total = args.warmup * 2 + args.rounds * (args.single + args.each * args.clients)
        taps = make_taps(profiles, -(-total // args.devices) + args.clients)
        summary = measure(args, int(base.rsplit(":", 1)[1]), api_key, taps, server.pid)
    finally:
        stop_http(server)
    locked = log.read_text(errors="replace").count("database is locked")
    shutil.rmtree(instance, ignore_errors=True)
    if args.json:
        print(json.dumps({**summary, "database_locked": locked}))
    else:
        report(summary, locked)


if __name__ == "__main__":
    main()
