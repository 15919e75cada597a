"""Offline data authentication end to end: the hce card signs, the kernel checks, in memory.

The card holds an ICC key certified by the test issuer under the hcekit test CA (index E1);
the terminal trusts that CA through its CA key table. Each failure is made by changing the
card's answer on the way, as a relay attack or a corrupted card would, and must fail with its
own reason and TVR bit (EMV 4.4 Book 3 §10.3, Annex C5).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from apdu.tlv import TLV, decode, encode
from cryptogram.cvn import profile as cvn_profile
from terminal.config import TerminalConfig
from terminal.oda import TSI_ODA_PERFORMED, TVR_CDA_FAILED, TVR_DDA_FAILED, TVR_NOT_PERFORMED
from terminal.outcome import Outcome
from terminal.testing import CardTerminalPair

applet = pytest.importorskip("hce.applet")
testcard = pytest.importorskip("hce.testcard")

NOW = 1_750_000_000
Rewrite = Callable[[bytes, bytes], bytes]


def _card(kernel: str, *, device_cvm: bool = False, oda: bool = True) -> applet.CardApplet:
    return applet.CardApplet(testcard.builtin_profile(kernel, now=NOW, device_cvm=device_cvm, oda=oda))


def pair(kernel: str, rewrite: Rewrite | None = None, *, config: TerminalConfig | None = None,
         date: str = "250101", device_cvm: bool = False) -> CardTerminalPair:
    card = _card(kernel, device_cvm=device_cvm)

    def process(command: bytes) -> bytes:
        response = card.process(command)
        return rewrite(command, response) if rewrite else response

    return CardTerminalPair(process, config=config, date=date)


def _replace(response: bytes, tag: int, change: Callable[[bytes], bytes]) -> bytes:
    """The response with the value of ``tag`` (inside its template) changed."""
    nodes = decode(response[:-2])

    def swap(node: TLV) -> TLV:
        if node.children:
            return TLV(node.tag, encode(swap(c) for c in node.children),
                       tuple(swap(c) for c in node.children))
        return TLV(node.tag, change(node.value)) if node.tag == tag else node

    return encode(swap(n) for n in nodes) + response[-2:]


def _flip(value: bytes) -> bytes:
    return bytes([value[0] ^ 0x01]) + value[1:]


def on(ins: int, p1p2: bytes | None, tag: int, change: Callable[[bytes], bytes]) -> Rewrite:
    """Change ``tag`` in the answer to the commands with INS ``ins`` (and P1 P2 if given)."""
    def rewrite(command: bytes, response: bytes) -> bytes:
        if command[1] == ins and (p1p2 is None or command[2:4] == p1p2) and response[-2:] == b"\x90\x00":
            return _replace(response, tag, change)
        return response
    return rewrite


# -- success ----------------------------------------------------------------------------------


def test_visa_fdda_passes_and_is_recorded() -> None:
    """Visa: the GPO response's 9F4B verifies over UN, amount, currency and 9F69; TSI says performed."""
    out = pair("visa").tap(1250).outcome
    assert out.outcome is Outcome.ONLINE_REQUEST
    assert out.oda is not None and (out.oda.method, out.oda.status) == ("fdda", "passed")
    assert out.oda.ca_index == 0xE1 and not out.oda.weak_keys
    assert out.data[0x9B][0] & TSI_ODA_PERFORMED
    steps = [s.name for s in out.oda.steps]
    assert steps[:2] == ["CA public key", "issuer certificate (90)"]
    assert "signed dynamic data (9F4B)" in steps


def test_mastercard_cda_recovers_the_arqc_the_issuer_verifies() -> None:
    """Mastercard: CDA is requested (P1 bit 5), the ARQC comes out of 9F4B and is the right MAC."""
    result = pair("mastercard").tap(1250)
    out = result.outcome
    assert out.outcome is Outcome.ONLINE_REQUEST and out.cryptogram == "ARQC"
    assert out.oda is not None and (out.oda.method, out.oda.status) == ("cda", "passed")
    gen_ac = next(a for a in result.timing.apdus if a.phase == "generate_ac")
    assert gen_ac.command[2] & 0x10
    card = testcard.builtin_profile("mastercard", now=NOW, oda=True)
    cvn = cvn_profile(card.cvn)
    values = dict(out.data)
    key = next(k for k in card.luks if k.index == cvn.parse_iad(values[0x9F10]).luk_index).key
    assert cvn.generate(key, values).cryptogram == out.data[0x9F26]
    assert out.data[0x95][0] & (TVR_CDA_FAILED | TVR_NOT_PERFORMED) == 0
    assert {n.tag: n.value for n in decode(out.authorization_data)}[0x9F26] == out.data[0x9F26]


def test_card_without_a_chain_is_not_authenticated_and_tvr_says_so() -> None:
    """A card with no ODA in its AIP: TVR byte 1 bit 8 'ODA not performed' goes into CDOL1 data."""
    card = _card("mastercard", oda=False)
    result = CardTerminalPair(card.process).tap(1250)
    out = result.outcome
    assert out.oda is not None and out.oda.status == "not_performed"
    assert out.data[0x95][0] & TVR_NOT_PERFORMED
    assert not out.data[0x9B][0] & TSI_ODA_PERFORMED


def test_terminal_without_cda_capability_does_not_request_it() -> None:
    """9F33 byte 3 without CDA: GENERATE AC P1 bit 5 stays 0 and the card answers 9F26 in clear."""
    config = TerminalConfig(capabilities=bytes.fromhex("E06880"))
    result = pair("mastercard", config=config).tap(1250)
    gen_ac = next(a for a in result.timing.apdus if a.phase == "generate_ac")
    assert not gen_ac.command[2] & 0x10
    assert result.outcome.outcome is Outcome.ONLINE_REQUEST


# -- failures, each with its reason and TVR bit ----------------------------------------------


@pytest.mark.parametrize(("rewrite", "reason"), [
    (on(0xB2, bytes.fromhex("011C"), 0x90, _flip), "trailer"),
    (on(0xB2, bytes.fromhex("031C"), 0x9F46, lambda v: v[:-1] + bytes([v[-1] ^ 1])), "trailer"),
    (on(0xB2, bytes.fromhex("0114"), 0x5A, lambda v: bytes.fromhex("5413330089010020")), "hash"),
    (on(0xB2, bytes.fromhex("021C"), 0x8F, lambda v: b"\x05"), "length"),
    (on(0xB2, bytes.fromhex("021C"), 0x8F, lambda v: b"\x77"), "ca_key_unknown"),
    (on(0xAE, None, 0x9F4B, _flip), "trailer"),
    (on(0xAE, None, 0x9F10, _flip), "transaction_hash"),
    (on(0xAE, None, 0x9F27, lambda v: b"\x40"), "cryptogram_type"),
], ids=["issuer-cert-tampered", "icc-cert-tampered", "static-data-changed", "wrong-ca-index",
        "unknown-ca-index", "broken-signature", "response-data-changed", "cid-changed"])
def test_mastercard_cda_failures(rewrite: Rewrite, reason: str) -> None:
    """Each tampering fails CDA with its own reason: TVR 'CDA failed', TSI performed, declined."""
    out = pair("mastercard", rewrite).tap(1250).outcome
    assert out.oda is not None
    assert (out.oda.method, out.oda.status, out.oda.reason) == ("cda", "failed", reason)
    assert out.data[0x95][0] & TVR_CDA_FAILED
    assert out.data[0x9B][0] & TSI_ODA_PERFORMED
    assert out.outcome is Outcome.DECLINED


def test_expired_issuer_certificate() -> None:
    """A transaction dated after the ICC certificate's month fails with 'expired'."""
    out = pair("mastercard", date="310101").tap(1250).outcome
    assert out.oda is not None and out.oda.reason == "expired"
    assert out.data[0x95][0] & TVR_CDA_FAILED


def test_missing_certificate_sets_icc_data_missing() -> None:
    """A card whose records lack 9F46 fails with icc_data_missing and TVR byte 1 bit 6."""
    def drop(command: bytes, response: bytes) -> bytes:
        if command[1] == 0xB2 and command[2:4] == bytes.fromhex("031C"):
            return bytes.fromhex("7000") + response[-2:]
        return response
    out = pair("mastercard", drop).tap(1250).outcome
    assert out.oda is not None and out.oda.reason == "icc_data_missing" and out.oda.missing
    assert out.data[0x95][0] & 0x20 and out.data[0x95][0] & TVR_CDA_FAILED


@pytest.mark.parametrize(("rewrite", "reason"), [
    (on(0xA8, None, 0x9F4B, _flip), "trailer"),
    (on(0xA8, None, 0x9F69, lambda v: v[:1] + bytes(4) + v[5:]), "hash"),
    (on(0xB2, bytes.fromhex("011C"), 0x90, _flip), "trailer"),
], ids=["broken-signature", "card-data-changed", "issuer-cert-tampered"])
def test_visa_fdda_failures(rewrite: Rewrite, reason: str) -> None:
    """fDDA failures are named; the ARQC still goes online (the issuer decides), TSI performed."""
    out = pair("visa", rewrite).tap(1250).outcome
    assert out.oda is not None
    assert (out.oda.method, out.oda.status, out.oda.reason) == ("fdda", "failed", reason)
    assert out.outcome is Outcome.ONLINE_REQUEST
    assert out.data[0x9B][0] & TSI_ODA_PERFORMED


def test_failed_result_sets_the_dda_bit_for_fdda() -> None:
    """terminal.oda.tvr maps an fDDA failure to 'DDA failed' (Book C-3 Annex C)."""
    from terminal.oda import OdaResult, tvr
    assert tvr(bytes(5), OdaResult("fdda", "failed", "hash"))[0] == TVR_DDA_FAILED


def test_mastercard_high_value_after_device_verification_is_cdcvm() -> None:
    """Mastercard AIP byte 1 bit 2 (on-device CVM): above the CVM limit, verified on the phone -> cdcvm."""
    card = _card("mastercard", device_cvm=True, oda=False)   # the profile's default AIP
    out = CardTerminalPair(card.process).tap(6000).outcome
    assert out.outcome is Outcome.ONLINE_REQUEST
    assert out.cvm == "cdcvm"
