"""The two-terminal PC/SC journey through a real pcscd, as a person runs it.

Terminal 1: ``hcekit emulate --via vpcd --wallet DIR`` -- the wallet's default card plugs into
pcscd as a virtual card. Terminal 2: ``hcekit tap --reader pcsc --host URL --api-key KEY`` --
the terminal kernel reads it through pyscard and the real pcscd and sends the online request to
a token service on loopback, which verifies the cryptogram made with the wallet's keys.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.main import main
from hce.tspclient import TSPClient
from hce.wallet import Wallet
from tsp_backend.testing import LoopbackTSP

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def hcekit(*args: str) -> list[str]:
    """The command line of ``hcekit ARGS`` in a fresh interpreter."""
    return [sys.executable, "-m", "cli.main", *args]


@pytest.fixture
def provisioned(tmp_path: Path) -> Iterator[tuple[LoopbackTSP, Path, str]]:
    """A loopback token service, a wallet with a Visa and a Mastercard card, and a terminal key."""
    wallet = tmp_path / "wallet"
    with LoopbackTSP() as tsp:
        common = ["--wallet", str(wallet), "--host", tsp.url]
        assert main(["register", "--email", "pcsc@example.com", "--password", "password-123", *common]) == 0
        for pan in ("4111111111111111", "5555555555554444"):  # tsp_backend.services.risk: green
            assert main(["provision", "--pan", pan, "--expiry", "12/30", "--cvv", "123", *common]) == 0
        session = Wallet.open(wallet).session
        assert session is not None
        with TSPClient(tsp.url, session.token) as client:
            key = str(client.post("/api/terminals", {"name": "counter 1"})["apiKey"])
        yield tsp, wallet, key


def _reader(prefix: str) -> str:
    from smartcard.System import readers

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        names = sorted(str(r) for r in readers())
        found = next((n for n in names if n.startswith(prefix)), "")
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("pcscd shows no vpcd reader")


@pytest.mark.parametrize(("card_index", "kernel"), [(0, "visa"), (1, "mastercard")])
def test_emulate_in_one_terminal_tap_in_the_other(
    pcscd: object, provisioned: tuple[LoopbackTSP, Path, str], card_index: int, kernel: str
) -> None:
    """emulate --via vpcd with the wallet's card + tap --reader pcsc --host: approved, twice."""
    tsp, wallet, key = provisioned
    card = Wallet.open(wallet).cards[card_index]
    via = f"vpcd:{pcscd.vpcd_host}:{pcscd.vpcd_port}"  # type: ignore[attr-defined]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    emulator = subprocess.Popen(
        hcekit("emulate", "--via", via, "--wallet", str(wallet), "--card", str(card.id)),
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        first_line = emulator.stdout.readline() if emulator.stdout else ""
        assert "emulating" in first_line and f"wallet card {card.id}" in first_line, first_line
        name = _reader(pcscd.reader_prefix)  # type: ignore[attr-defined]
        outcomes = []
        for _ in range(2):
            tapped = subprocess.run(
                hcekit("tap", "--reader", f"pcsc:{name}", "--host", tsp.url, "--api-key", key,
                       "--amount", "7.80", "--json", "--wait", "15"),
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
            )
            assert tapped.returncode == 0, tapped.stderr
            doc = json.loads(tapped.stdout)
            outcomes.append((doc["outcome"], doc["kernel"], doc["reader"].startswith("pcsc:")))
            assert doc["pan"].endswith(card.token_last4)
        assert outcomes == [("approved", kernel, True)] * 2
    finally:
        emulator.send_signal(signal.SIGINT)
        try:
            emulator.wait(timeout=15)
        except subprocess.TimeoutExpired:
            emulator.kill()
            emulator.wait()
        if emulator.stdout:
            emulator.stdout.close()
    assert Wallet.open(wallet).counters(card.id).last_atc == 2
