"""Issuer scripts with secure messaging, made by the issuer's side (cryptogram.scripts) and applied
or refused by the hce card after a tap."""

from __future__ import annotations

import pytest

from cryptogram.cvn import profile as cvn_profile
from cryptogram.scripts import script_command, session_keys
from hce.applet import CardApplet
from hce.testcard import builtin_profile
from terminal.outcome import Outcome
from terminal.testing import CardTerminalPair

NOW = 1_750_000_000
SELECT_AID = {"visa": "00A4040007A000000003101000", "mastercard": "00A4040007A000000004101000"}


def _tapped(kernel: str) -> tuple[CardApplet, bytes, bytes, bytes]:
    """A card after an online tap; the issuer's view: ATC, ARQC and the limited-use key that made it."""
    profile = builtin_profile(kernel, now=NOW)
    card = CardApplet(profile)
    out = CardTerminalPair(card.process).tap(1250).outcome
    assert out.outcome is Outcome.ONLINE_REQUEST
    cvn = cvn_profile(profile.cvn)
    index = cvn.parse_iad(out.data[0x9F10]).luk_index
    key = next(k.key for k in profile.luks if k.index == index)
    return card, out.data[0x9F36], out.data[0x9F26], key


@pytest.mark.parametrize("kernel", ["visa", "mastercard"])
def test_application_block_then_select_fails(kernel: str) -> None:
    """A genuine APPLICATION BLOCK is applied: the next SELECT of the application answers 6283."""
    card, atc, arqc, key = _tapped(kernel)
    mac_key, _ = session_keys(key, atc)
    block = script_command(0x84, 0x1E, 0x00, 0x00, mac_key=mac_key, atc=atc, cryptogram=arqc)
    assert card.process(block) == b"\x90\x00"
    assert card.process(bytes.fromhex(SELECT_AID[kernel]))[-2:] == b"\x62\x83"


def test_wrong_mac_is_refused() -> None:
    """A script MACed for another transaction (another ARQC) is refused with 6988, nothing applied."""
    card, atc, _arqc, key = _tapped("mastercard")
    mac_key, _ = session_keys(key, atc)
    forged = script_command(0x84, 0x1E, 0x00, 0x00, mac_key=mac_key, atc=atc, cryptogram=bytes(8))
    assert card.process(forged) == b"\x69\x88"
    assert not card.blocked


def test_enciphered_put_data_changes_the_cvm_limit() -> None:
    """PUT DATA 9F6B with enciphered data sets a new CVM limit; the next high-value tap needs no CVM."""
    card, atc, arqc, key = _tapped("visa")
    mac_key, enc_key = session_keys(key, atc)
    command = script_command(0x84, 0xDA, 0x9F, 0x6B, bytes.fromhex("000000020000"), mac_key=mac_key,
                             enc_key=enc_key, atc=atc, cryptogram=arqc, scheme="visa")
    assert bytes.fromhex("000000020000") not in command
    assert card.process(command) == b"\x90\x00"
    assert card.cvm_limit == 20000
    assert CardTerminalPair(card.process).tap(6000).outcome.outcome is Outcome.ONLINE_REQUEST


def test_scripts_before_any_cryptogram_are_refused() -> None:
    """No online cryptogram yet in this session: a script is out of order (6985)."""
    card = CardApplet(builtin_profile("mastercard", now=NOW))
    command = script_command(0x84, 0x1E, 0, 0, mac_key=bytes(16), atc=bytes(2), cryptogram=bytes(8))
    assert card.process(command) == b"\x69\x85"
