"""The card as an ISO-DEP target on nfcpy's UDP driver, tapped by an nfcpy initiator on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from apdu.command import PPSE, GetProcessingOptions, ReadRecord, Select
from apdu.tlv import decode, find
from apdu.trace import TraceRecorder
from hce.applet import CardApplet
from hce.testcard import builtin_profile
from hce.transports.nfc import NfcCard

pytestmark = pytest.mark.integration
nfc = pytest.importorskip("nfc", reason="nfcpy is not installed (pip install hcekit[nfc])")

PDOL_DATA = bytes.fromhex(
    "36000000" "000000001250" "000000000000" "0250" "0000000000" "0978" "250101" "00" "CAFEBABE")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _SlowCard:
    """A card that takes longer than half the frame waiting time, so that it must ask for WTX."""

    def __init__(self, card: CardApplet, delay: float) -> None:
        self.card, self.delay = card, delay

    def process(self, c_apdu: bytes) -> bytes:
        time.sleep(self.delay)
        return self.card.process(c_apdu)

    def reset(self) -> None:
        self.card.reset()


@contextmanager
def _listening(card: NfcCard) -> Iterator[threading.Thread]:
    """The card serving one activation on a thread; stopped and closed however the block ends."""
    thread = threading.Thread(target=card.serve, kwargs={"max_activations": 1}, daemon=True)
    thread.start()
    try:
        assert card.listening.wait(5)
        yield thread
    finally:
        card.stop()
        thread.join(10)
        card.close()


def _tap(port: int, apdus: list[bytes]) -> list[bytes]:
    import nfc.clf
    import nfc.tag

    clf = nfc.ContactlessFrontend(f"udp:127.0.0.1:{port}")
    try:
        target = None
        deadline = time.monotonic() + 10
        while target is None and time.monotonic() < deadline:
            target = clf.sense(nfc.clf.RemoteTarget("106A"), iterations=1, interval=0.1)
        assert target is not None, "no Type A target answered"
        tag = nfc.tag.activate(clf, target)
        assert tag is not None and tag.TYPE == "Type4Tag"
        return [bytes(tag.transceive(bytearray(apdu))) for apdu in apdus]
    finally:
        clf.close()


@pytest.fixture
def udp_port() -> int:
    """A free UDP port on loopback."""
    return _free_udp_port()


def test_nfcpy_initiator_taps_the_card_over_udp(udp_port: int) -> None:
    """An nfcpy initiator activates the card (RATS/ATS) and runs a Visa tap over ISO-DEP."""
    card = CardApplet(builtin_profile("visa", now=int(time.time())), clock=time.time)
    recorder = TraceRecorder()
    target = NfcCard(card, f"udp:127.0.0.1:{udp_port}", tracers=[recorder])
    with _listening(target):
        ppse, select, gpo, record = _tap(udp_port, [
            Select(PPSE).to_bytes(), Select(card.profile.aid).to_bytes(),
            GetProcessingOptions(PDOL_DATA).to_bytes(), ReadRecord(1, 1).to_bytes(),
        ])
    assert ppse[-2:] == select[-2:] == gpo[-2:] == record[-2:] == b"\x90\x00"
    cid = find(decode(gpo[:-2]), 0x9F27)
    assert cid is not None and cid.value == b"\x80"
    assert len(recorder.records) == 8


def test_slow_card_asks_for_wtx_and_still_answers(udp_port: int) -> None:
    """A card slower than half its frame waiting time sends S(WTX) and the reader gets every answer.

    FWI 8 gives an FWT of 77 ms, long enough that thread scheduling on a busy machine does not eat
    it; the card then takes 0.2 s, which needs S(WTX) at least twice per command.
    """
    card = CardApplet(builtin_profile("mastercard", now=int(time.time())), clock=time.time)
    target = NfcCard(_SlowCard(card, delay=0.2), f"udp:127.0.0.1:{udp_port}", fwi=8)
    with _listening(target):
        answers = _tap(udp_port, [Select(card.profile.aid).to_bytes(), GetProcessingOptions().to_bytes(),
                                  ReadRecord(1, 2).to_bytes()])
    assert [a[-2:] for a in answers] == [b"\x90\x00"] * 3
    assert answers[2][:-2] == card._files.records[(1, 2)]
