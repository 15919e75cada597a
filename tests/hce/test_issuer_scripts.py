"""Issuer scripts with secure messaging, made by the issuer's side (cryptogram.scripts) and applied
or refused by the hce card after a tap."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from cryptogram.cvn import profile as cvn_profile
from cryptogram.scripts import script_command, session_keys
from hce.applet import CardApplet
from hce.errors import CounterStoreError
from hce.keys import FileCounterStore, MemoryCounterStore
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


def test_script_after_the_tap_ended_is_applied_once() -> None:
    """Delivered by the wallet after the phone left the field (state IDLE), a script is applied;
    the same script again is refused (6985), and so is one bound to the card's previous ATC (6988)."""
    card, atc, arqc, key = _tapped("visa")
    mac_key, _ = session_keys(key, atc)
    block = script_command(0x84, 0x1E, 0x00, 0x00, mac_key=mac_key, atc=atc, cryptogram=arqc)
    card.reset()
    assert card.process(block) == b"\x90\x00" and card.blocked
    assert card.process(block) == b"\x69\x85"
    unblock = script_command(0x84, 0x18, 0x00, 0x00, mac_key=mac_key, atc=atc, cryptogram=arqc)
    assert card.process(unblock) == b"\x90\x00" and not card.blocked
    CardTerminalPair(card.process).tap(1250)
    stale = script_command(0x84, 0x1E, 0x00, 0x00, mac_key=mac_key, atc=atc, cryptogram=arqc)
    card.reset()
    assert card.process(stale) == b"\x69\x88" and not card.blocked


def test_script_during_a_tap_is_refused() -> None:
    """A tap under way (an application selected) is not the time for the issuer's answer: 6985."""
    card, atc, arqc, key = _tapped("mastercard")
    mac_key, _ = session_keys(key, atc)
    assert card.process(bytes.fromhex(SELECT_AID["mastercard"]))[-2:] == b"\x90\x00"
    block = script_command(0x84, 0x1E, 0x00, 0x00, mac_key=mac_key, atc=atc, cryptogram=arqc)
    assert card.process(block) == b"\x69\x85" and not card.blocked


def _independent_iad(kernel: str, key: bytes, atc: bytes, arqc: bytes) -> bytes:
    """The issuer authentication data (tag 91) by pyemv, not by hcekit: Mastercard CVN 16 is ARPC
    method 1 under the card key with ARC "00"; Visa CVN 18 method 2 under the EMV session key."""
    from pyemv import ac, kd

    from tests.cryptogram.test_against_pyemv import oracle

    if kernel == "mastercard":
        return oracle(ac.generate_arpc_1, key, arqc, b"00") + b"00"
    session = oracle(kd.derive_common_sk, key, atc + bytes(6))
    return oracle(ac.generate_arpc_2, session, arqc, bytes(4)) + bytes(4)


@pytest.mark.parametrize("kernel", ["visa", "mastercard"])
def test_external_authenticate_confirms_the_last_online_atc(kernel: str) -> None:
    """EXTERNAL AUTHENTICATE with the genuine ARPC (computed independently) answers 9000 and
    marks the ATC confirmed; a second one for the same cryptogram is 6985."""
    card, atc, arqc, key = _tapped(kernel)
    card.reset()
    data = _independent_iad(kernel, key, atc, arqc)
    command = bytes((0x00, 0x82, 0x00, 0x00, len(data))) + data
    assert card.process(command) == b"\x90\x00"
    assert card.confirmed_atc == int.from_bytes(atc, "big")
    assert card.process(command) == b"\x69\x85"


@pytest.mark.parametrize("kernel", ["visa", "mastercard"])
def test_wrong_arpc_is_refused_with_6300(kernel: str) -> None:
    """An ARPC one bit off fails issuer authentication (6300) and confirms nothing."""
    card, atc, arqc, key = _tapped(kernel)
    data = bytearray(_independent_iad(kernel, key, atc, arqc))
    data[0] ^= 0x01
    assert card.process(bytes((0x00, 0x82, 0x00, 0x00, len(data))) + data) == b"\x63\x00"
    assert card.confirmed_atc is None
    assert card.process(bytes((0x00, 0x82, 0x00, 0x00, 3)) + bytes(3)) == b"\x69\x85"


def test_external_authenticate_before_any_cryptogram_is_refused() -> None:
    """No online cryptogram: nothing for the issuer to authenticate (6985)."""
    card = CardApplet(builtin_profile("visa", now=NOW))
    assert card.process(bytes.fromhex("0082000008") + bytes(8)) == b"\x69\x85"


def test_issuer_state_survives_a_new_applet(tmp_path: Path) -> None:
    """The wallet makes a new applet over the same counter file for each use: a script delivered
    after the tap still finds its online cryptogram, and the block it applies stays."""
    profile = builtin_profile("visa", now=NOW)
    path = tmp_path / "counters.json"
    tapped = CardApplet(profile, counters=FileCounterStore(path))
    out = CardTerminalPair(tapped.process).tap(1250).outcome
    index = cvn_profile(profile.cvn).parse_iad(out.data[0x9F10]).luk_index
    key = next(k.key for k in profile.luks if k.index == index)
    atc, arqc = out.data[0x9F36], out.data[0x9F26]
    mac_key, _ = session_keys(key, atc)
    block = script_command(0x84, 0x1E, 0x00, 0x00, mac_key=mac_key, atc=atc, cryptogram=arqc)
    later = CardApplet(profile, counters=FileCounterStore(path))
    assert later.process(block) == b"\x90\x00"
    again = CardApplet(profile, counters=FileCounterStore(path))
    assert again.blocked and again.process(block) == b"\x69\x85"
    assert again.process(bytes.fromhex(SELECT_AID["visa"]))[-2:] == b"\x62\x83"
    assert key.hex() not in path.read_text() and key.hex().upper() not in path.read_text()


class _FullDisk(MemoryCounterStore):
    """A store whose issuer state cannot be written once the card has made its cryptogram."""

    full = False

    def save_issuer_state(self, state: Mapping[str, Any]) -> None:
        if self.full:
            raise CounterStoreError("disk full")
        super().save_issuer_state(state)


def test_a_script_that_cannot_be_made_durable_is_6581() -> None:
    """No 9000 for a script whose effect the card could not keep: 6581, and the card is unchanged."""
    store = _FullDisk()
    profile = builtin_profile("mastercard", now=NOW)
    card = CardApplet(profile, counters=store)
    out = CardTerminalPair(card.process).tap(1250).outcome
    assert out.outcome is Outcome.ONLINE_REQUEST
    last = card.last_online
    assert last is not None
    mac_key, _ = session_keys(last.key, last.atc)
    block = script_command(0x84, 0x1E, 0x00, 0x00, mac_key=mac_key, atc=last.atc, cryptogram=last.arqc)
    store.full = True
    assert card.process(block) == b"\x65\x81" and not card.blocked
    store.full = False
    assert card.process(block) == b"\x90\x00" and card.blocked
