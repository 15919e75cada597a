"""Mastercard mag-stripe mode (Kernel 2) end to end: the hce card computes CVC3, the kernel builds the
dynamic Track 2, and the issuer-side arithmetic (cryptogram.cvc3) verifies it from the track alone."""

from __future__ import annotations

import pytest

from apdu.tlv import decode
from cryptogram.cvc3 import cvc3, ivcvc3, read_discretionary
from terminal.outcome import Outcome
from terminal.testing import CardTerminalPair

applet = pytest.importorskip("hce.applet")
testcard = pytest.importorskip("hce.testcard")
files = pytest.importorskip("hce.files")

NOW = 1_750_000_000


def _tap(rewrite=None):  # type: ignore[no-untyped-def]
    profile = testcard.builtin_profile("mastercard", now=NOW, magstripe=True)
    card = applet.CardApplet(profile)

    def process(command: bytes) -> bytes:
        response = card.process(command)
        return rewrite(command, response) if rewrite else response

    return profile, CardTerminalPair(process).tap(1250)


def _issuer_check(profile, track2: bytes) -> bool:  # type: ignore[no-untyped-def]
    """What the token service does: read UN and ATC from the track, recompute CVC3 under each LUK."""
    text = track2.hex().upper().rstrip("F")
    dd = text.partition("D")[2][7:]
    cvc3_digits, un, atc = read_discretionary(dd, pcvc3=files.PCVC3, punatc=files.PUNATC, natc=files.NATC)
    template = files.magstripe_tracks(profile)[1]
    for luk in profile.luks:
        for atc_value in range(int(atc), 65536, 10 ** len(atc)):
            value = cvc3(luk.key, ivcvc3(luk.key, template), bytes.fromhex(un.rjust(8, "0")),
                         atc_value.to_bytes(2, "big"))
            if f"{value:05d}".endswith(cvc3_digits):
                return True
            if atc_value > 200:
                break
    return False


def test_magstripe_tap_goes_online_with_a_dynamic_track_2() -> None:
    """No CDOL1 needed: COMPUTE CRYPTOGRAPHIC CHECKSUM, then Track 2 carries CVC3, UN, ATC and nUN."""
    profile, result = _tap()
    out = result.outcome
    assert (out.outcome, out.cryptogram) == (Outcome.ONLINE_REQUEST, "CVC3")
    assert "compute_cryptographic_checksum" in {a.phase for a in result.timing.apdus}
    track2 = out.data[0x9F6B]
    assert track2 != files.magstripe_tracks(profile)[1]
    assert track2.hex().upper().rstrip("F")[-1] == "6"          # nUN = 8 positions - NATC 2
    assert _issuer_check(profile, track2)
    tags = {n.tag for n in decode(out.authorization_data)}
    assert {0x9F6B, 0x9F6A, 0x9F36} <= tags and 0x9F26 not in tags


def test_a_changed_cvc3_does_not_verify() -> None:
    """A CVC3 changed on the way (relay) is written into the track and fails the issuer's check."""
    def rewrite(command: bytes, response: bytes) -> bytes:
        if command[1] == 0x2A:
            at = response.index(b"\x9f\x61\x02") + 3
            return response[:at] + bytes([response[at] ^ 0x01]) + response[at + 1:]
        return response
    profile, result = _tap(rewrite)
    assert result.outcome.outcome is Outcome.ONLINE_REQUEST
    assert not _issuer_check(profile, result.outcome.data[0x9F6B])


def test_emv_mode_card_refuses_compute_checksum() -> None:
    """A card not in mag-stripe mode answers COMPUTE CRYPTOGRAPHIC CHECKSUM with 6D00."""
    card = applet.CardApplet(testcard.builtin_profile("mastercard", now=NOW))
    assert card.process(bytes.fromhex("802A8E800400000123")) == b"\x6d\x00"
