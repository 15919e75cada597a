"""`hcekit tap --reader nfc:udp` against the hce card listening as a Type 4A target (nfcpy UDP driver)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from terminal.config import Transaction
from terminal.outcome import Outcome
from terminal.tap import run_tap
from terminal.transports.nfc import NfcTransport

pytest.importorskip("nfc", reason="nfcpy is not installed (pip install hcekit[nfc])")
card_nfc = pytest.importorskip("hce.transports.nfc", reason="the hce nfcpy transport is not there")
from hce.applet import CardApplet  # noqa: E402
from hce.testcard import builtin_profile  # noqa: E402

pytestmark = pytest.mark.integration


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def listening() -> Iterator[int]:
    """The Visa test card listening as a Type 4A target on nfcpy's UDP driver; yields the port."""
    port = _free_udp_port()
    card = CardApplet(builtin_profile("visa", now=int(time.time())), clock=time.time)
    target = card_nfc.NfcCard(card, f"udp:127.0.0.1:{port}")
    thread = threading.Thread(target=target.serve, kwargs={"max_activations": 1}, daemon=True)
    thread.start()
    assert target.listening.wait(5), "the card did not start listening"
    yield port
    target.stop()
    thread.join(10)
    target.close()


def test_kernel_taps_over_nfcpy_udp(listening: int) -> None:
    """The terminal senses the Type 4A target over UDP and completes a tap over ISO-DEP."""
    with NfcTransport(f"udp:127.0.0.1:{listening}", wait=10, timeout=2) as transport:
        result = run_tap(transport, Transaction(amount=1250))
    assert result.outcome.outcome is Outcome.ONLINE_REQUEST
    assert result.outcome.cryptogram == "ARQC"
    assert transport.name == f"nfc:udp:127.0.0.1:{listening}"
