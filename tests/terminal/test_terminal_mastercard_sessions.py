"""Recorded Mastercard contactless sessions of binaryfoo/emv-bertlv, replayed and re-checked.

Source: binaryfoo/emv-bertlv, commit dda526e6b9d6e45a5d8b5c74217540a478f1154b (the files are
unchanged since acf6ad34ed7c387dcc53da612e41a10316a7b77a),
``src/test/resources/cases/contactless-mastercard-in.txt`` (stored verbatim as
``tests/data/traces/mastercard_cda_emvbertlv.jsonl``) and ``contactless-msd-in.txt``
(``mastercard_magstripe_emvbertlv.jsonl``). The values the tests compare against are those the
same project's own decoder prints for them, ``contactless-mastercard-out.txt`` and
``contactless-msd-out.txt``: an implementation independent of this one. The CA key is the
Mastercard test key A000000004 EF, which that project's ``src/main/resources/ca-public-keys.txt``
lists with the checksum the built-in table verifies at load.

Neither recording starts with SELECT PPSE: the recording terminal selected the application
directly, as a contact terminal would. A contactless kernel starts at the PPSE (Book B §3.3.2),
so the kernel replays below are given a PPSE answer naming the recorded application
(:func:`_with_ppse`); every byte from SELECT AID on is the recording's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from apdu.trace import TraceRecord, read_trace
from cryptogram.oda import cda_transaction_hash
from cryptogram.oda_recover import recover_icc_key, recover_issuer_key
from terminal.capk import CaKeyTable, checksum
from terminal.config import Limits, TerminalConfig, Transaction
from terminal.kernel import Kernel
from terminal.oda import static_data
from terminal.oda_session import verify_session
from terminal.outcome import Outcome
from terminal.transports.replay import ReplayTransport, pairs
from tests.terminal.terminal_cards import SELECT_PPSE, drive, ppse

TRACES = Path(__file__).resolve().parents[1] / "data" / "traces"
CDA = TRACES / "mastercard_cda_emvbertlv.jsonl"
MAGSTRIPE = TRACES / "mastercard_magstripe_emvbertlv.jsonl"
MC_AID = "A0000000041010"

#: What binaryfoo/emv-bertlv's decoder recovers from the CDA session (contactless-mastercard-out.txt).
ISSUER_KEY = (
    "A028E99BECB507C507243C2E8DF4FE56A0297CD0AE72E2CFA992A98C80788422DBE00A1395B1545B09D66CFAB9ECEAF4"
    "13E3DFF8227BC80BF6DA7F142B32673C527BB79129B5965C0F5DC4C3732BE6FA284F2469CDC545CD8AF915D2DD4AF2E1"
    "71F5D36D502C8F9498797B9DE111BF5EB97EF1820BA654E4867F09D6BB41BCB1E4FB3E9D287ABD670319181347312707"
)
ICC_KEY_IN_CERTIFICATE = ISSUER_KEY[:ISSUER_KEY.index("8F9498797B")]
TC, ICC_DYNAMIC_NUMBER = "D58B731AF5885C06", "36DF6D9E2104092E"
TRANSACTION_HASH = "7BE29D015DD4C9454026810F0879E219B8A7DCD0"


def _exchanges(path: Path) -> list[tuple[bytes, bytes]]:
    return [(c.raw, r.raw) for c, r in pairs(read_trace(path.read_text().splitlines()))]


def _card(exchanges: list[tuple[bytes, bytes]]) -> dict[int, bytes]:
    """The card's primitive data objects over the whole session; the first answer with a tag wins."""
    from apdu.tlv import decode, to_dict

    card: dict[int, bytes] = {}
    for _, response in exchanges:
        card = {**to_dict(decode(response[:-2])), **card}
    return card


def _with_ppse(path: Path, label: str, extra: Sequence[tuple[str, str]] = ()) -> ReplayTransport:
    """The recorded card behind a PPSE answer naming its application (kernel id 02), plus ``extra``."""
    added = [(SELECT_PPSE + "00", ppse((MC_AID, label, 1, "02"))), *extra]
    records = [TraceRecord(d, bytes.fromhex(h)) for c, r in added for d, h in (("C", c), ("R", r))]
    return ReplayTransport(records + read_trace(path.read_text().splitlines()))


# -- EMV mode with CDA: the PayPass test card "ETEC/PAYPASS" ----------------------------------

def test_binaryfoo_lists_the_same_mastercard_test_key_ef() -> None:
    """The CA key the session names (8F = EF) is in the built-in table with the checksum
    binaryfoo's ca-public-keys.txt gives for it (21766EBB…427A)."""
    key = CaKeyTable.builtin().get(bytes.fromhex("A000000004"), 0xEF)
    assert key is not None and key.kind == "test"
    digest = checksum(key.rid, key.index, key.public.modulus, key.public.exponent)
    assert digest.hex().upper() == "21766EBB0EE122AFB65D7845B73DB46BAB65427A"
    assert key.public.exponent == b"\x03" and key.public.length == 248


def test_session_verifies_and_recovers_the_tc_the_independent_decoder_recovers() -> None:
    """verify_session: chain under the test CA key EF, CDA passes over the recorded GENERATE AC
    data, and the TC and ICC dynamic number out of 9F4B are binaryfoo's."""
    check = verify_session(_exchanges(CDA), CaKeyTable.builtin())
    result = check.result
    assert check.kernel == "mastercard"
    assert (result.method, result.status, result.ca_index) == ("cda", "passed", 0xEF)
    assert result.cryptogram.hex().upper() == TC
    assert result.icc_dynamic_number.hex().upper() == ICC_DYNAMIC_NUMBER
    assert [s.name for s in result.steps if not s.ok] == [] and not result.weak_keys
    assert check.notes == ()


def test_recovered_certificates_and_hash_agree_with_the_independent_decoder() -> None:
    """Issuer 54133300 and ICC PAN 5413330089600044, both expiring 12/14 with serial 000001; the
    issuer key is binaryfoo's, and the ICC key is the same key (a test card's economy): its
    certificate holds the leading bytes binaryfoo prints, 9F48 the rest. The transaction data
    hash over the recorded CDOL1 data and response objects is the one binaryfoo recovers."""
    exchanges = _exchanges(CDA)
    card = _card(exchanges)
    ca = CaKeyTable.builtin().get(bytes.fromhex("A000000004"), 0xEF)
    assert ca is not None
    issuer = recover_issuer_key(ca.public, card[0x90], card.get(0x92, b""), card[0x9F32],
                                pan="5413330089600044", today="120315")
    assert (issuer.issuer_identifier, issuer.expiry, issuer.serial.hex()) == ("54133300", "1214", "000001")
    assert issuer.key.modulus.hex().upper() == ISSUER_KEY
    record_sfi2 = next(r for c, r in exchanges if c[:4] == bytes.fromhex("00B20114"))
    signed = static_data([(2, record_sfi2[:-2])], card)
    assert signed is not None
    icc = recover_icc_key(issuer.key, card[0x9F46], card[0x9F48], card[0x9F47],
                          pan="5413330089600044", static_data=signed, today="120315")
    assert (icc.pan, icc.expiry) == ("5413330089600044", "1214")
    assert icc.key.modulus.hex().upper() == ICC_KEY_IN_CERTIFICATE + card[0x9F48].hex().upper()
    generate_ac, response = exchanges[-1]
    objects = response[3:3 + 4 + 5] + response[-2 - 21:-2]     # 9F27 and 9F36, then 9F10 (9F4B left out)
    assert objects.hex().upper().startswith("9F2701409F36020035") and objects[9:12] == bytes.fromhex("9F1012")
    digest = cda_transaction_hash(b"", generate_ac[5:5 + generate_ac[4]], objects)
    assert digest.hex().upper() == TRANSACTION_HASH


def test_oda_verify_cli_rechecks_the_session() -> None:
    """``hcekit oda verify --trace`` on the stored session: exit 0, CDA passed, the TC named."""
    from click.testing import CliRunner

    from cli.main import cli

    result = CliRunner().invoke(cli, ["oda", "verify", "--trace", str(CDA)])
    assert result.exit_code == 0, result.output
    assert "cda passed" in result.stdout and TC in result.stdout and "index EF" in result.stdout


#: The recording's terminal: 100.01 AUD on 120315, UN 000EEC85, type 22; a floor limit above the
#: amount (the recorded TVR is 0000000000 and a TC was asked for) and signature above the
#: CVM-required limit (the recorded CVM Results are 5E0300: the card's first rule, "signature,
#: if the terminal supports it").
PAYPASS_CONFIG = TerminalConfig(country="0036", limits=Limits(floor=20_000, cvm=10_000, transaction=50_000))
PAYPASS_SALE = Transaction(amount=10_001, currency="AUD", date="120315")


def _paypass_kernel() -> Kernel:
    return Kernel(PAYPASS_CONFIG, PAYPASS_SALE, unpredictable=lambda n: bytes.fromhex("000EEC85"),
                  ca_keys=CaKeyTable.builtin())


def test_verbatim_replay_stops_at_a_record_the_recording_does_not_have() -> None:
    """The AFL (08010100 10010101 18010200 20010200) names SFI 1 record 1 and SFI 3 records 1-2,
    but the recording holds only SFI 2/1, SFI 3/1 and SFI 4/1-2: its terminal did not read (or
    the log does not keep) SFI 1 record 1 and SFI 3 record 2. A kernel must read every record
    the AFL names and ends the application when one cannot be read (Book 3 §10.2), so the
    verbatim replay ends at the first READ RECORD."""
    kernel = _paypass_kernel()
    sent = drive(kernel, _with_ppse(CDA, "PPC MCD 04  v20"))
    assert sent[-1] == bytes.fromhex("00B2010C00")
    assert kernel.outcome is not None and kernel.outcome.outcome is Outcome.END_APPLICATION
    assert "6A83" in kernel.outcome.reason


def test_kernel_replay_with_the_two_absent_records_empty_completes_with_cda() -> None:
    """The two records the recording lacks answered with an empty record template (70 00): they
    are not signed (AFL byte 4 is 0 for both) and an empty template adds no data object, so the
    kernel's data are the recording's. The kernel then asks for a TC with CDA (P1 50) with the
    recorded CDOL1 data byte for byte (TVR 0000000000, 9F09 0002, CVM Results 5E0300 from the
    card's CVM List), every recorded exchange is used, CDA passes and the TC comes out of 9F4B.
    Before the kernel walked the CVM List it sent 1E0300 and CDA failed on the transaction hash."""
    card = _with_ppse(CDA, "PPC MCD 04  v20", [("00B2010C00", "70009000"), ("00B2021C00", "70009000")])
    kernel = _paypass_kernel()
    sent = drive(kernel, card)
    recorded = _exchanges(CDA)
    assert sent[-1] == recorded[-1][0]
    assert sent[-1][:4] == bytes.fromhex("80AE5000")
    assert card.unused == 0
    outcome = kernel.outcome
    assert outcome is not None and outcome.oda is not None
    assert (outcome.oda.method, outcome.oda.status, outcome.oda.ca_index) == ("cda", "passed", 0xEF)
    assert (outcome.outcome, outcome.cryptogram, outcome.cvm) == (Outcome.APPROVED, "TC", "signature")
    assert outcome.data[0x9F26].hex().upper() == TC
    assert outcome.data[0x9F4C].hex().upper() == ICC_DYNAMIC_NUMBER
    assert outcome.data[0x9F34] == bytes.fromhex("5E0300")


# -- mag-stripe mode: the PayPass test card "CUST IMP MC 351" ---------------------------------

def test_magstripe_session_has_no_offline_data_authentication() -> None:
    """AIP 0000: mag-stripe mode only, no ODA method; verify_session says so."""
    check = verify_session(_exchanges(MAGSTRIPE), CaKeyTable.builtin())
    assert (check.result.status, check.result.method) == ("not_performed", None)


def test_kernel_replay_in_magstripe_mode_reads_the_cvc3() -> None:
    """The kernel takes the mag-stripe path (AIP byte 2 bit 8 clear), sends the recorded COMPUTE
    CRYPTOGRAPHIC CHECKSUM byte for byte (default UDOL 9F6A04; PUNATC(Track2) 0000 and NATC 00
    give nUN = 0, so the UN is 00000000), and reads CVC3 501 for both tracks and ATC 11, the
    values binaryfoo's decoder prints (contactless-msd-out.txt).

    The card's PCVC3(Track2) 0007 and PCVC3(Track1) 000000000007 name the last three digits of
    the discretionary data, the last of which Book C-2 gives to nUN: the kernel writes the CVC3
    (…501) and then nUN (0) over its last digit, so the tracks carry 067750500. The recording
    stops at the card's answer, so what its terminal wrote is not known."""
    card = _with_ppse(MAGSTRIPE, "ID351 v1 1")
    kernel = Kernel(TerminalConfig(), Transaction(amount=1000, currency="AUD"), unpredictable=bytes)
    sent = drive(kernel, card)
    assert sent[-1] == _exchanges(MAGSTRIPE)[-1][0] == bytes.fromhex("802A8E80040000000000")
    assert card.unused == 0
    outcome = kernel.outcome
    assert outcome is not None
    assert (outcome.outcome, outcome.cryptogram) == (Outcome.ONLINE_REQUEST, "CVC3")
    assert int.from_bytes(outcome.data[0x9F61], "big") == 501
    assert int.from_bytes(outcome.data[0x9F60], "big") == 501
    assert int.from_bytes(outcome.data[0x9F36], "big") == 11
    assert outcome.data[0x9F6B].hex().upper() == "5413330056003511D1412101067750500F"
    assert outcome.data[0x56].endswith(b"^1412101067750500")
