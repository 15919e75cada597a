"""Whole taps against the hce applet, in memory: both card kernels, limits, see phone."""

from __future__ import annotations

import pytest

from terminal.config import TerminalConfig
from terminal.outcome import SEE_PHONE, Outcome
from terminal.testing import CardTerminalPair

applet = pytest.importorskip("hce.applet")
testcard = pytest.importorskip("hce.testcard")

NOW = 1_750_000_000


def card(kernel: str, *, device_cvm: bool = False) -> CardTerminalPair:
    profile = testcard.builtin_profile(kernel, now=NOW, device_cvm=device_cvm)
    return CardTerminalPair(applet.CardApplet(profile).process)


@pytest.mark.parametrize(("kernel", "aid", "apdus"), [
    ("visa",       "A0000000031010", {"select_ppse", "select_aid", "gpo"}),
    ("mastercard", "A0000000041010", {"select_ppse", "select_aid", "gpo", "read_record", "generate_ac"}),
])
def test_online_request_from_the_hce_card(kernel: str, aid: str, apdus: set[str]) -> None:
    """Each card kernel ends in an online request with an ARQC and a field-55 block."""
    result = card(kernel).tap(1250)
    out = result.outcome
    assert (out.outcome, out.kernel, out.cryptogram) == (Outcome.ONLINE_REQUEST, kernel, "ARQC")
    assert out.aid is not None and out.aid.hex().upper() == aid
    assert apdus <= {a.phase for a in result.timing.apdus}
    assert out.authorization_data.startswith(b"\x9f\x26\x08")
    for tag in (0x9F26, 0x9F27, 0x9F10, 0x9F36, 0x82, 0x9F37, 0x9F02):
        assert tag in out.data


def test_atc_increases_each_tap() -> None:
    """Two taps on one card carry consecutive ATCs (9F36)."""
    pair = card("visa")
    first = int.from_bytes(pair.tap(100).outcome.data[0x9F36], "big")
    second = int.from_bytes(pair.tap(100).outcome.data[0x9F36], "big")
    assert second == first + 1


@pytest.mark.parametrize("kernel", ["visa", "mastercard"])
def test_cvm_required_without_device_cvm(kernel: str) -> None:
    """Above the CVM limit a phone whose holder has not verified says "see phone": Visa by SW 6986 to
    GPO (Book C-3 §5.2.2), Mastercard by an AAC whose DF4B asks for it (Book C-2 S910)."""
    out = card(kernel).tap(6000).outcome
    assert (out.outcome, out.message, out.cryptogram) == (Outcome.TRY_AGAIN, SEE_PHONE, None)


@pytest.mark.parametrize("kernel", ["visa", "mastercard"])
def test_cvm_required_with_device_cvm(kernel: str) -> None:
    """With on-device verification done the same amount goes online."""
    out = card(kernel, device_cvm=True).tap(6000).outcome
    assert out.outcome is Outcome.ONLINE_REQUEST


def test_forced_mastercard_path_on_visa_card_ends_the_application() -> None:
    """Forced onto the M/Chip path, a Visa card's AIP (2000: EMV mode not flagged in byte 2 bit 8)
    means mag-stripe mode (Book C-2 §5.3), for which the card has no data: End Application."""
    profile = testcard.builtin_profile("visa", now=NOW)
    pair = CardTerminalPair(applet.CardApplet(profile).process, config=TerminalConfig(kernel="mastercard"))
    out = pair.tap(1250).outcome
    assert (out.outcome, out.kernel) == (Outcome.END_APPLICATION, "mastercard")
    assert out.reason == "mag-stripe: no Track 2 data or bad PUNATC"
