"""`hcekit tap --reader pcsc` against the hce card plugged into a real pcscd through vpcd."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from click.testing import CliRunner

from terminal.config import Transaction
from terminal.errors import CardRemoved, TransportError
from terminal.outcome import Outcome
from terminal.tap import run_tap
from terminal.transports.pcsc import PcscTransport, list_readers

vpcd = pytest.importorskip("hce.transports.vpcd", reason="the hce vpcd transport is not there")
from hce.applet import CardApplet  # noqa: E402
from hce.testcard import builtin_profile  # noqa: E402

pytestmark = pytest.mark.integration


@contextmanager
def _in_vpcd(card: CardApplet, pcscd) -> Iterator[tuple[str, object]]:  # type: ignore[no-untyped-def]
    """Plug `card` into pcscd's vpcd reader; yields the reader name and the virtual card, unplugs after."""
    virtual = vpcd.VpcdCard(card, pcscd.vpcd_host, pcscd.vpcd_port)
    thread = threading.Thread(target=virtual.serve, kwargs={"reconnect": False}, daemon=True)
    thread.start()
    assert virtual.connected.wait(10), "the virtual card could not connect to vpcd"
    deadline = time.monotonic() + 15
    name = ""
    while time.monotonic() < deadline and not name:
        name = next((n for n in sorted(list_readers()) if n.startswith(pcscd.reader_prefix)), "")
        time.sleep(0.1)
    assert name, "pcscd shows no vpcd reader"
    try:
        yield name, virtual
    finally:
        virtual.stop()
        thread.join(10)


@pytest.fixture(params=["visa", "mastercard"])
def plugged(request: pytest.FixtureRequest, pcscd) -> Iterator[tuple[str, object]]:  # type: ignore[no-untyped-def]
    """A test card of each kernel in the vpcd reader; yields the reader name and the virtual card."""
    card = CardApplet(builtin_profile(request.param, now=int(time.time())), clock=time.time)
    with _in_vpcd(card, pcscd) as plugged_card:
        yield plugged_card


def test_kernel_taps_through_pcscd(plugged: tuple[str, object]) -> None:
    """The terminal's PC/SC transport runs a whole tap through pcscd and gets an ARQC."""
    name, _ = plugged
    with PcscTransport(name, wait=15, timeout=5) as transport:
        result = run_tap(transport, Transaction(amount=1250))
    assert result.outcome.outcome is Outcome.ONLINE_REQUEST
    assert result.outcome.cryptogram == "ARQC"


def test_cli_tap_pcsc(plugged: tuple[str, object]) -> None:
    """`hcekit tap --reader pcsc:NAME --json` through a real pcscd."""
    from cli.main import cli

    name, _ = plugged
    result = CliRunner().invoke(cli, ["tap", "--reader", f"pcsc:{name}", "--json", "--wait", "15"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["outcome"] == "online_request"
    assert doc["reader"].startswith("pcsc:")


def test_card_removed_mid_tap_is_an_error(plugged: tuple[str, object]) -> None:
    """The card leaving vpcd mid-tap is a TransportError (CardRemoved), never a hang."""
    name, virtual = plugged
    with PcscTransport(name, wait=15, timeout=5) as transport:
        transport.transmit(bytes.fromhex("00A404000E325041592E5359532E444446303100"))
        virtual.stop()  # type: ignore[attr-defined]
        time.sleep(0.5)
        with pytest.raises(TransportError) as info:
            run_tap(transport, Transaction(amount=1250))
    assert isinstance(info.value, (CardRemoved, TransportError))


@pytest.fixture(params=["visa", "mastercard"])
def plugged_oda(request: pytest.FixtureRequest, pcscd) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """A test card with a certificate chain in the vpcd reader; yields the reader name and kernel."""
    card = CardApplet(builtin_profile(request.param, now=int(time.time()), oda=True), clock=time.time)
    with _in_vpcd(card, pcscd) as (name, _):
        yield name, request.param


def test_offline_data_authentication_through_pcscd(plugged_oda: tuple[str, str]) -> None:
    """fDDA (Visa) and CDA (Mastercard) verify over a real pcscd, the signatures crossing vpcd."""
    name, kernel = plugged_oda
    with PcscTransport(name, wait=15, timeout=5) as transport:
        result = run_tap(transport, Transaction(amount=1250))
    oda = result.outcome.oda
    assert oda is not None and oda.status == "passed", oda
    assert oda.method == ("fdda" if kernel == "visa" else "cda")
    assert result.outcome.outcome is Outcome.ONLINE_REQUEST
