"""Replays of real cards' published exchanges (tests/data/traces/README.md names each source)."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminal.capk import CaKeyTable
from terminal.config import Limits, TerminalConfig, Transaction
from terminal.outcome import Outcome
from terminal.tap import run_tap
from terminal.transports.replay import ReplayTransport
from tests.terminal.terminal_cards import drive

TRACES = Path(__file__).resolve().parents[1] / "data" / "traces"


@pytest.mark.parametrize(
    ("trace",                    "outcome",                 "kernel",     "last"),
    [
        # MichaelsPlayground/TalkToYourCreditCardPart7: a Lloyds Visa debit card, qVSDC
        ("visa_qvsdc.jsonl",       Outcome.ONLINE_REQUEST,    "visa",       "READ RECORD"),
        # same source: a Mastercard credit card, M/Chip; the session never reached GENERATE AC
        ("mastercard_mchip.jsonl", Outcome.END_APPLICATION,   "mastercard", "GENERATE AC"),
    ],
)
def test_real_card_replay(trace: str, outcome: Outcome, kernel: str, last: str) -> None:
    """The kernel walks a real card's recorded answers to the outcome the recording allows."""
    path = TRACES / trace
    if not path.exists():
        pytest.skip(f"{path} is not there")
    result = run_tap(ReplayTransport.from_file(path), Transaction(amount=1250))
    assert (result.outcome.outcome, result.outcome.kernel) == (outcome, kernel)
    assert result.timing.apdus[-1].name == last


def test_real_visa_cryptogram_reaches_field_55() -> None:
    """The real Visa card's ARQC, CID, ATC and IAD land in the authorization block."""
    path = TRACES / "visa_qvsdc.jsonl"
    if not path.exists():
        pytest.skip(f"{path} is not there")
    out = run_tap(ReplayTransport.from_file(path), Transaction(amount=1250)).outcome
    assert out.data[0x9F27] == b"\x80"
    assert out.data[0x9F36] == bytes.fromhex("03A4")
    assert out.data[0x9F10] == bytes.fromhex("06040A03A02000")
    assert out.authorization_data.startswith(b"\x9f\x26\x08")


# -- offline data authentication of a real card -----------------------------------------------

CDA_TRACE = Path(__file__).resolve().parent.parent / "data" / "traces" / "mastercard_cda_emvtools.jsonl"


def _exchanges(change: dict[int, tuple[str, str]] | None = None) -> list[tuple[bytes, bytes]]:
    """The CDA session's (command, response) pairs; ``change`` maps an index to (old, new) hex."""
    from apdu.trace import read_trace
    from terminal.transports.replay import pairs

    out = []
    for i, (c, r) in enumerate(pairs(read_trace(CDA_TRACE.read_text().splitlines()))):
        command, response = c.raw.hex().upper(), r.raw.hex().upper()
        if change and i in change:
            old, new = change[i]
            command, response = command.replace(old, new, 1), response.replace(old, new, 1)
        out.append((bytes.fromhex(command), bytes.fromhex(response)))
    return out


def test_real_mastercard_cda_session_recovers_its_cryptogram() -> None:
    """The published Mastercard card (emv-tools test data): chain under production CA 05, CDA passes,
    the TC comes out of 9F4B; the date is the session's own 9A (140925)."""
    from terminal.capk import CaKeyTable
    from terminal.oda_session import verify_session

    check = verify_session(_exchanges(), CaKeyTable.builtin())
    result = check.result
    assert (result.method, result.status, result.ca_index) == ("cda", "passed", 0x05)
    assert result.cryptogram.hex().upper() == "16AFBA13C52FB173"
    assert not result.weak_keys


@pytest.mark.parametrize(("change", "reason", "bit"), [
    ({4: ("8F0105", "8F0104")}, "length", 0x04),
    ({6: ("9F4B70", "9F4B70FF")}, "icc_data_missing", 0x24),
    ({6: ("9F4B701C", "9F4B701D")}, "trailer", 0x04),
    ({3: ("5F2503140501", "5F2503140502")}, "hash", 0x04),
    ({6: ("12345779", "12345778")}, "hash", 0x04),
    ({6: ("9F10120010", "9F10120011")}, "transaction_hash", 0x04),
], ids=["wrong-ca-index", "signature-length", "broken-signature", "static-data", "unpredictable-number",
        "response-data"])
def test_real_session_tampered(change: dict[int, tuple[str, str]], reason: str, bit: int) -> None:
    """Each change to the real session fails with its own reason; the TVR gets 'CDA failed'."""
    from terminal.capk import CaKeyTable
    from terminal.oda import tvr
    from terminal.oda_session import verify_session

    result = verify_session(_exchanges(change), CaKeyTable.builtin()).result
    assert (result.status, result.reason) == ("failed", reason)
    assert tvr(bytes(5), result)[0] & bit == bit


def test_real_session_expired_on_a_later_date() -> None:
    """Checked on a date after the ICC certificate's month (06/15), the session fails 'expired'."""
    from terminal.capk import CaKeyTable
    from terminal.oda_session import verify_session

    result = verify_session(_exchanges(), CaKeyTable.builtin(), today="150701").result
    assert (result.status, result.reason) == ("failed", "expired")


def test_real_visa_fdda_signature_verifies() -> None:
    """The published Visa card's fDDA signature verifies: format 95, over UN, amount, currency and 9F69.

    The chain is read with the production CA key A000000003 09; the issuer certificate's hash holds.
    The published copy's PAN was replaced (README), so the ICC certificate's PAN and hash checks
    cannot hold and its key is read without them; the signature itself, over the session's own
    terminal data, verifies, and its ICC dynamic number is the ATC of the GPO response.
    """
    import json

    from apdu.dol import split_dol_data
    from apdu.tlv import decode, to_dict
    from cryptogram import oda as book2
    from cryptogram.errors import OdaError
    from cryptogram.oda_recover import recover_dynamic_data, recover_issuer_key
    from cryptogram.rsa import RsaPublicKey
    from terminal.capk import CaKeyTable
    from terminal.oda import fdda_terminal_data

    records = [json.loads(line) for line in (TRACES / "visa_qvsdc.jsonl").read_text().splitlines()]
    card: dict[int, bytes] = {}
    terminal: dict[int, bytes] = {}
    for command_rec, response_rec in zip(records[::2], records[1::2], strict=True):
        command, response = bytes.fromhex(command_rec["hex"]), bytes.fromhex(response_rec["hex"])[:-2]
        card = {**to_dict(decode(response)), **card}
        if command[1] == 0xA8:
            terminal = split_dol_data(card[0x9F38], command[7:5 + command[4]])
    ca = CaKeyTable.builtin().get(bytes.fromhex("A000000003"), card[0x8F][0])
    assert ca is not None and ca.kind == "production"
    issuer = recover_issuer_key(ca.public, card[0x90], card.get(0x92, b""), card[0x9F32],
                                pan="492182", today="230301")
    block = issuer.key.recover(card[0x9F46])
    length = block[19]
    modulus = block[21:21 + min(length, issuer.key.length - 42)] + card.get(0x9F48, b"")
    icc = RsaPublicKey(modulus, card[0x9F47])
    signed = fdda_terminal_data(card, terminal)
    assert signed == terminal[0x9F37] + terminal[0x9F02] + terminal[0x5F2A] + card[0x9F69]
    got = recover_dynamic_data(icc, card[0x9F4B], signed, fmt=book2.FORMAT_FDDA)
    assert got.icc_dynamic_number == card[0x9F36]
    with pytest.raises(OdaError):
        recover_dynamic_data(icc, card[0x9F4B], signed[:-1] + b"\x01", fmt=book2.FORMAT_FDDA)


# -- an American Express card with CDA (binaryfoo/emv-bertlv, tests/data/traces/README.md) -------

AMEX_TRACE = TRACES / "amex_cda_emvbertlv.jsonl"
AMEX_CA = TRACES.parent / "capk_amex_test_a1.json"


def _amex_table() -> CaKeyTable:
    """The built-in table plus the Amex test CA key A1, loaded as a terminal loads more keys."""
    return CaKeyTable.builtin().load_file(AMEX_CA)


def test_real_amex_cda_session_recovers_its_arqc() -> None:
    """The chain under the Amex test CA key A1 verifies, CDA passes over the recorded terminal
    data, and the ARQC comes out of 9F4B: the cryptogram and ICC dynamic number are those the
    independent decoder of binaryfoo/emv-bertlv recovers (its ``amex-cda-out.txt``)."""
    from apdu.trace import read_trace
    from terminal.oda_session import verify_session
    from terminal.transports.replay import pairs

    exchanges = [(c.raw, r.raw) for c, r in pairs(read_trace(AMEX_TRACE.read_text().splitlines()))]
    result = verify_session(exchanges, _amex_table()).result
    assert (result.method, result.status, result.ca_index) == ("cda", "passed", 0xA1)
    assert result.cryptogram.hex().upper() == "51F4F65DDE43732D"
    assert result.icc_dynamic_number.hex().upper() == "B1BD198460DEBA64"
    assert [s.name for s in result.steps if not s.ok] == []


def test_the_kernel_replays_the_amex_cda_session_and_recovers_its_arqc() -> None:
    """Driven by the kernel, the recorded card answers every command and the kernel's GENERATE
    AC is the recorded one byte for byte, so the CDA hash the card signed holds over the data
    this kernel built: ARQC 51F4F65DDE43732D out of 9F4B, as binaryfoo/emv-bertlv's decoder has it.

    Every input is the recording's: 120.00 AUD on 141031, UN 327273B9, terminal type EA (its
    PDOL data), country 0036; the terminal settings are those the recorded TVR 0000048000
    implies: a floor limit below the amount ("transaction exceeds floor limit") and online PIN
    among the CVMs above the CVM-required limit, so that walking the card's CVM List
    (8E ...42031E03: enciphered PIN online, if the terminal supports it) chooses online PIN
    and sets "online PIN entered". Before the kernel walked CVM lists and set the floor-limit
    bit, its TVR was 0000000000 and CDA failed on the transaction hash."""
    from apdu.trace import read_trace
    from terminal.kernel import Kernel
    from terminal.transports.replay import ReplayTransport, pairs

    recorded = pairs(read_trace(AMEX_TRACE.read_text().splitlines()))
    config = TerminalConfig(country="0036", terminal_type=0xEA, limits=Limits(floor=0, cvm=10_000),
                            cvm_capability_required=0x60)
    transaction = Transaction(amount=12_000, currency="AUD", date="141031")
    kernel = Kernel(config, transaction, unpredictable=lambda n: bytes.fromhex("327273B9"),
                    ca_keys=_amex_table())
    card = ReplayTransport.from_file(AMEX_TRACE)
    sent = drive(kernel, card)
    assert sent == [c.raw for c, _ in recorded]
    assert card.unused == 0
    assert sent[-1][5 + 14:5 + 19] == bytes.fromhex("0000048000")
    outcome = kernel.outcome
    assert outcome is not None and outcome.oda is not None
    assert (outcome.oda.method, outcome.oda.status, outcome.oda.ca_index) == ("cda", "passed", 0xA1)
    assert outcome.oda.cryptogram.hex().upper() == "51F4F65DDE43732D"
    assert outcome.oda.icc_dynamic_number.hex().upper() == "B1BD198460DEBA64"
    assert (outcome.outcome, outcome.cryptogram) == (Outcome.ONLINE_REQUEST, "ARQC")
    assert outcome.cvm == "online_pin"
    assert outcome.data[0x9F26].hex().upper() == "51F4F65DDE43732D"
