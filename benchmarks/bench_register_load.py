"""Benchmark (not a test): authorization latency while registrations hash passwords.

Each registration costs one Argon2id hash (64 MiB, three passes: the service's defaults). The
token service runs in process on a loopback port (SQLite, as ``hcekit demo``); one thread taps
a provisioned wallet card again and again and records the authorization round trip, first
alone, then while ``--threads`` threads register ``--registrations`` accounts. The run is
repeated for each ``--concurrency`` (password hashes at once per process: ``1`` is the
default on two CPUs; ``64`` stands for no bound, the behaviour before the hashing slots).

Usage::

    python benchmarks/bench_register_load.py [--registrations 48] [--threads 8] [--concurrency 1 64]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx

from terminal.config import Transaction
from terminal.host import AuthorizationClient
from terminal.tap import run_tap, today
from terminal.timing import percentile
from terminal.transports.local import LocalTransport


def start(root: Path, concurrency: int) -> tuple[Any, Any, int, str]:
    """The service on loopback with real Argon2id costs, a wallet card and a terminal key."""
    from hce.tspclient import TSPClient, login_with_device, request_card, store_card
    from hce.wallet import Wallet
    from tsp_backend.testing import LoopbackTSP

    tsp = LoopbackTSP(
        root / "tsp",
        argon2_time_cost=3,
        argon2_memory_kib=65536,
        argon2_concurrency=concurrency,
        luk_batch_size=40,
        luk_max_uses=100,
    )
    wallet = Wallet.open(root / "wallet")
    password = "benchmark passphrase"
    with TSPClient(tsp.url) as client:
        client.post("/api/auth/register", {"email": "bench@example.com", "password": password})
        login_with_device(client, wallet, "bench@example.com", password, device_name="bench-phone")
        answer = request_card(client, wallet, "4111111111111111", "12/30", "123")
        card = store_card(wallet, answer["card"], answer["profile"]).id
        api_key = str(client.post("/api/terminals", {"name": "bench terminal"})["apiKey"])
    return tsp, wallet, card, api_key


def authorize_until(wallet: Any, card: int, client: AuthorizationClient, stop: threading.Event,
                    at_least: int) -> list[float]:
    """Tap and authorize until ``stop`` is set and ``at_least`` taps are done; authorization ms."""
    applet = wallet.applet(card)
    transport = LocalTransport(applet.process)
    times: list[float] = []
    while not stop.is_set() or len(times) < at_least:
        result = run_tap(transport, Transaction(amount=1250, date=today()), host=client)
        assert result.outcome.outcome.value == "approved", result.outcome.reason
        assert result.timing.authorization_ms is not None
        times.append(result.timing.authorization_ms)
    return times


def register_burst(url: str, registrations: int, threads: int) -> dict[str, int]:
    """``registrations`` accounts from ``threads`` threads; the count of each answer status."""
    statuses: dict[str, int] = {}
    lock = threading.Lock()

    def work(count: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            for _ in range(count):
                body = {"email": f"{uuid.uuid4().hex[:12]}@example.com", "password": "benchmark passphrase"}
                status = str(http.post("/api/auth/register", json=body).status_code)
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1

    workers = [threading.Thread(target=work, args=(registrations // threads,)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return statuses


def main() -> None:
    """Print the median and p99 authorization time, alone and under a registration burst."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registrations", type=int, default=48)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    args = parser.parse_args()
    for concurrency in args.concurrency:
        with tempfile.TemporaryDirectory(prefix="hcekit-bench-register-") as root:
            tsp, wallet, card, api_key = start(Path(root), concurrency)
            with tsp, AuthorizationClient(tsp.url, api_key) as client:
                done = threading.Event()
                done.set()
                alone = authorize_until(wallet, card, client, done, 40)[10:]
                stop = threading.Event()
                loaded: list[float] = []
                tapper = threading.Thread(
                    target=lambda out, args: out.extend(authorize_until(*args)),
                    args=(loaded, (wallet, card, client, stop, 10)),
                )
                tapper.start()
                statuses = register_burst(tsp.url, args.registrations, args.threads)
                stop.set()
                tapper.join()
            print(
                f"hash slots {concurrency:>3}: authorize alone p50 {percentile(alone, 50):7.1f} ms "
                f"p99 {percentile(alone, 99):7.1f} ms | during registrations p50 "
                f"{percentile(loaded, 50):7.1f} ms p99 {percentile(loaded, 99):7.1f} ms "
                f"({len(loaded)} taps) | registrations {statuses}"
            )


if __name__ == "__main__":
    main()
