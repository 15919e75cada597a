"""The contactless kernel against scripted cards that behave as real ones do."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apdu.command import CommandAPDU, GenerateAC
from apdu.dol import dol_length, parse_dol, split_dol_data
from apdu.response import ResponseAPDU
from apdu.tlv import decode, to_dict
from terminal.config import Limits, TerminalConfig, Transaction
from terminal.errors import KernelError
from terminal.kernel import TRANSITIONS, Event, Kernel, State, waiting_on
from terminal.outcome import SEE_PHONE, Outcome
from terminal.reading import parse_afl
from terminal.tap import TapResult
from terminal.testing import CardTerminalPair, ScriptedTransport
from tests.terminal.terminal_cards import (
    MAESTRO_AID,
    MC_AID,
    MC_CDOL1,
    SELECT_PPSE,
    VISA_AID,
    mc_card,
    mc_gen_ac,
    ok,
    ppse,
    select_aid,
    t,
    visa_card,
)

UN = "0A0B0C0D"


def tap(
    script: list[tuple[str | None, str]], amount: int = 1250, **config: object
) -> tuple[ScriptedTransport, TapResult]:
    card = ScriptedTransport(script)
    pair = CardTerminalPair(card.as_card(), config=TerminalConfig(**config))  # type: ignore[arg-type]
    return card, pair.tap(amount)


def test_visa_qvsdc_takes_the_cryptogram_from_gpo() -> None:
    """A Visa card's ARQC in the GPO response is an online request after the records are read."""
    card, result = tap(visa_card())
    assert card.done
    out = result.outcome
    assert out.outcome is Outcome.ONLINE_REQUEST
    assert (out.kernel, out.cryptogram, out.label) == ("visa", "ARQC", "VISA CREDIT")
    assert out.data[0x9F26] == bytes.fromhex("1D2E3F4A5B6C7D8E")
    assert [a.phase for a in result.timing.apdus] == ["select_ppse", "select_aid", "gpo", "read_record"]


def test_visa_pdol_data_carries_terminal_data() -> None:
    """GPO data is the PDOL filled with TTQ, amount, country, TVR, currency, date, type and UN.

    12.50 EUR is above the default reader floor limit of 0, so the TVR carries "transaction
    exceeds floor limit" (byte 4 bit 8: 0000008000), as TTQ byte 2 carries "online cryptogram
    required" (80)."""
    card, _ = tap(visa_card())
    gpo = CommandAPDU.from_bytes(card.sent[2])
    expected = (
        "36804000" "000000001250" "000000000000" "0276" "0000008000" "0978" "250101" "00" + UN
    )
    assert gpo.data.hex().upper() == "8321" + expected


@pytest.mark.parametrize(
    ("amount", "ttq_byte2"),
    [
        (0,      0x80),   # zero amount: online cryptogram required (Book A §3.1.1)
        (1250,   0x80),   # above the floor limit of 0
        (5000,   0xC0),   # at the CVM-required limit: CVM required too
        (99_999, 0xC0),   # just under the transaction limit
    ],
)
def test_pre_processing_sets_ttq_bits(amount: int, ttq_byte2: int) -> None:
    """The amount against floor and CVM limits sets TTQ byte 2 (Book A §3.1.1, Book C-3 Table A-1)."""
    k = Kernel(TerminalConfig(), Transaction(amount=amount), unpredictable=bytes)
    k.start()
    assert k.terminal[0x9F66][1] == ttq_byte2


def test_amount_under_floor_limit_asks_no_online_cryptogram() -> None:
    """Under a non-zero floor limit the TTQ does not ask for an online cryptogram."""
    k = Kernel(TerminalConfig(limits=Limits(floor=2000)), Transaction(amount=1000), unpredictable=bytes)
    k.start()
    assert k.terminal[0x9F66][1] == 0x00


def test_transaction_limit_means_another_interface_and_no_apdu() -> None:
    """At the contactless transaction limit no APDU is sent: Try Another Interface."""
    card, result = tap([], amount=100_000)
    assert card.sent == []
    assert result.outcome.outcome is Outcome.TRY_ANOTHER_INTERFACE


def test_mastercard_reads_records_then_generates_ac() -> None:
    """M/Chip: GPO format 1, READ RECORD per AFL, then GENERATE AC ARQC with CDOL1 data."""
    card, result = tap(mc_card())
    assert card.done
    out = result.outcome
    assert (out.outcome, out.kernel, out.cryptogram) == (Outcome.ONLINE_REQUEST, "mastercard", "ARQC")
    gen_ac = CommandAPDU.from_bytes(card.sent[-1])
    assert gen_ac.p1 == 0x80
    assert len(gen_ac.data) == 6 + 6 + 2 + 5 + 2 + 3 + 1 + 4 + 1 + 2 + 8 + 3
    assert gen_ac.data[:6] == bytes.fromhex("000000001250")
    assert out.data[0x9F34] == bytes.fromhex("1F0302")


def test_a_card_that_declines() -> None:
    """A GENERATE AC that returns an AAC is a decline, with no host needed."""
    _, result = tap(mc_card(gen_ac=mc_gen_ac("00")))
    assert result.outcome.outcome is Outcome.DECLINED
    assert result.outcome.cryptogram == "AAC"


def test_a_card_that_approves_offline() -> None:
    """A TC from GENERATE AC is an offline approval."""
    _, result = tap(mc_card(gen_ac=mc_gen_ac("40")))
    assert result.outcome.outcome is Outcome.APPROVED


def test_gen_ac_format_1() -> None:
    """GENERATE AC format 1 (80: CID, ATC, AC, IAD) is split into its tags (EMV Book 3 §6.5.5.4)."""
    _, result = tap(mc_card(gen_ac="8011" + "80" + "0007" + "1122334455667788" + "06010A03A000" + "9000"))
    data = result.outcome.data
    assert (data[0x9F27], data[0x9F36]) == (b"\x80", b"\x00\x07")
    assert data[0x9F26] == bytes.fromhex("1122334455667788")
    assert data[0x9F10] == bytes.fromhex("06010A03A000")


def test_no_ppse_is_try_another_interface() -> None:
    """6A82 to SELECT PPSE: the card is not contactless here (python-emv#15)."""
    card, result = tap([(SELECT_PPSE, "6A82")])
    assert card.done
    assert result.outcome.outcome is Outcome.TRY_ANOTHER_INTERFACE


def test_no_supported_application_is_try_another_interface() -> None:
    """A PPSE listing only unknown AIDs leaves an empty candidate list."""
    _, result = tap([(SELECT_PPSE, ppse(("A0000009999999", "PRIVATE", 1, None)))])
    assert result.outcome.outcome is Outcome.TRY_ANOTHER_INTERFACE


def test_candidates_are_selected_by_priority() -> None:
    """The application with priority 1 is selected before priority 2, whatever the PPSE order."""
    script = [
        (SELECT_PPSE, ppse((MAESTRO_AID, "MAESTRO", 2, "02"), (VISA_AID, "VISA DEBIT", 1, "03"))),
        *visa_card()[1:],
    ]
    card, result = tap(script)
    assert card.done
    assert result.outcome.label == "VISA DEBIT"


@pytest.mark.parametrize("sw", ["6A82", "6A81"])
def test_not_found_application_moves_to_the_next_candidate(sw: str) -> None:
    """6A81/6A82 to SELECT AID: the next candidate is selected (Book B §3.3.3)."""
    script = [
        (SELECT_PPSE, ppse((MC_AID, "MASTERCARD", 1, "02"), (VISA_AID, "VISA", 2, "03"))),
        ("00A4040007" + MC_AID, sw),
        *visa_card()[1:],
    ]
    card, result = tap(script)
    assert card.done
    assert result.outcome.outcome is Outcome.ONLINE_REQUEST
    assert result.outcome.kernel == "visa"


def test_every_candidate_missing_ends_the_application() -> None:
    """When no candidate can be selected the tap ends."""
    script = [(SELECT_PPSE, ppse((VISA_AID, "VISA", 1, "03"))), ("00A4040007" + VISA_AID, "6A82")]
    _, result = tap(script)
    assert result.outcome.outcome is Outcome.END_APPLICATION


def test_get_response_after_61xx() -> None:
    """A T=0 card answering 61XX is asked GET RESPONSE and the data is joined (ISO 7816-4 §7.6.1)."""
    full = visa_card()
    ppse_resp = full[0][1]
    body = ppse_resp[:-4]
    script = [
        (SELECT_PPSE, f"61{len(body) // 2:02X}"),
        ("00C00000", ppse_resp),
        *full[1:],
    ]
    card, result = tap(script)
    assert card.done
    assert result.outcome.outcome is Outcome.ONLINE_REQUEST
    assert [a.name for a in result.timing.apdus][:2] == ["SELECT", "GET RESPONSE"]


def test_get_response_in_pieces() -> None:
    """Data delivered over several 61XX answers is joined in order."""
    full = visa_card()
    body = full[0][1][:-4]
    half = len(body) // 2
    script = [
        (SELECT_PPSE, "6110"),
        ("00C00000", body[:half] + f"61{(len(body) - half) // 2:02X}"),
        ("00C00000", body[half:] + "9000"),
        *full[1:],
    ]
    card, result = tap(script)
    assert card.done
    assert result.outcome.outcome is Outcome.ONLINE_REQUEST


def test_wrong_le_is_resent_with_6cxx() -> None:
    """6CXX: the same command is resent with Le = XX (ISO 7816-4 §5.6)."""
    script = visa_card()
    record = script[3]
    script[3] = ("00B2011C00", f"6C{len(record[1]) // 2 - 2:02X}")
    script.append(("00B2011C" + f"{len(record[1]) // 2 - 2:02X}", record[1]))
    card, result = tap(script)
    assert card.done
    assert result.outcome.outcome is Outcome.ONLINE_REQUEST


def test_see_phone() -> None:
    """6986 to GPO: the phone wants its holder to verify: Try Again, "see phone" (Book C-3 §5.2.2)."""
    script = [*visa_card()[:2], ("80A80000", "6986")]
    _, result = tap(script, amount=6000)
    assert result.outcome.outcome is Outcome.TRY_AGAIN
    assert result.outcome.message == SEE_PHONE


@pytest.mark.parametrize("sw", ["6984", "6985"])
def test_gpo_conditions_not_satisfied(sw: str) -> None:
    """6984/6985 to GPO: Try Another Interface (Book C-3 §5.2.2)."""
    _, result = tap([*visa_card()[:2], ("80A80000", sw)])
    assert result.outcome.outcome is Outcome.TRY_ANOTHER_INTERFACE


def test_mastercard_see_phone_from_cardholder_interaction_information() -> None:
    """An AAC with DF4B asking for on-device CVM is Try Again with "see phone" (Book C-2)."""
    gen_ac = ok(t(0x77, [t(0x9F27, "00"), t(0x9F36, "0002"), t(0x9F26, "00" * 8), t(0xDF4B, "000300")]))
    _, result = tap(mc_card(gen_ac=gen_ac), amount=6000)
    assert (result.outcome.outcome, result.outcome.message) == (Outcome.TRY_AGAIN, SEE_PHONE)


def test_record_error_ends_the_application() -> None:
    """A READ RECORD that fails ends the application."""
    script = visa_card()
    script[3] = (script[3][0], "6A83")
    _, result = tap(script)
    assert result.outcome.outcome is Outcome.END_APPLICATION


def test_malformed_afl_ends_the_application() -> None:
    """An AFL naming SFI 0 is malformed (EMV Book 3 §10.2)."""
    gpo = ok(t(0x77, [t(0x82, "2000"), t(0x94, "00010100"), t(0x9F26, "00" * 8), t(0x9F27, "80")]))
    _, result = tap(visa_card(gpo=gpo)[:3])
    assert result.outcome.outcome is Outcome.END_APPLICATION


def test_visa_path_without_cryptogram_ends() -> None:
    """qVSDC: a GPO response without 9F26 cannot complete."""
    gpo = ok(t(0x77, [t(0x82, "2000"), t(0x94, "18010100")]))
    _, result = tap(visa_card(gpo=gpo))
    assert result.outcome.outcome is Outcome.END_APPLICATION


def test_forced_kernel_overrides_the_kernel_id() -> None:
    """--kernel mastercard on a Visa AID takes the M/Chip path (GENERATE AC from CDOL1)."""
    gpo = ok(t(0x77, [t(0x82, "1880"), t(0x94, "18010100")]))
    record = ok(t(0x70, [t(0x8C, "9F02069F3704"), t(0x5A, "4761739001010010")]))
    script = [*visa_card(gpo=gpo)[:3], ("00B2011C", record), ("80AE8000", mc_gen_ac())]
    _, result = tap(script, kernel="mastercard")
    assert (result.outcome.kernel, result.outcome.outcome) == ("mastercard", Outcome.ONLINE_REQUEST)


def test_authorization_block_is_field_55() -> None:
    """The authorization data starts with the cryptogram and carries Track 2, not 5A, when 57 exists."""
    _, result = tap(visa_card())
    block = result.outcome.authorization_data.hex().upper()
    assert block.startswith("9F26081D2E3F4A5B6C7D8E9F2701809F100706010A03A00000")
    assert "5713" in block and "5A08" not in block
    assert "9F3704" + UN in block


def test_receive_without_command_is_an_error() -> None:
    """Feeding a response before start() is a programming error."""
    k = Kernel(TerminalConfig(), Transaction(amount=1), unpredictable=bytes)
    with pytest.raises(KernelError):
        k.receive(ResponseAPDU.status(0x9000))


def test_the_state_table_covers_every_waiting_state() -> None:
    """Every state a row can lead to, except DONE, has an ERROR row, so every status word has a reaction."""
    waiting = {s for row in TRANSITIONS.values() for s in row.after} - {State.DONE}
    assert waiting | {State.SELECT_PPSE} == {s for s in State if s not in (State.START, State.DONE)}
    assert all((s, Event.ERROR) in TRANSITIONS for s in waiting)


def test_a_step_the_table_does_not_list_is_refused() -> None:
    """The rows are enforced: an action that sends a command its row does not allow is a KernelError."""
    k = Kernel(TerminalConfig(), Transaction(amount=1250), unpredictable=bytes)
    k.start()
    k.receive(bytes.fromhex(ppse((VISA_AID, "VISA", 1, "03"))))
    assert k.state is State.SELECT_AID
    with pytest.raises(KernelError, match="select_aid may not lead to generate_ac"):
        k._enter(GenerateAC("ARQC", b""), TRANSITIONS[(State.SELECT_AID, Event.OK)].after)
    assert k.state is State.SELECT_AID


@pytest.mark.parametrize(
    ("afl", "records"),
    [
        ("08010100",         [(1, 1)]),
        ("0801020010030300", [(1, 1), (1, 2), (2, 3)]),
        ("",                 []),
        ("080101",           None),   # not a multiple of 4
        ("00010100",         None),   # SFI 0
        ("08020100",         None),   # last < first
        ("08000000",         None),   # record 0
    ],
)
def test_parse_afl(afl: str, records: list[tuple[int, int]] | None) -> None:
    """AFL entries per EMV 4.4 Book 3 §10.2."""
    assert parse_afl(bytes.fromhex(afl)) == records


_CARDS = {"visa": visa_card(), "mastercard": mc_card()}


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(_CARDS)), st.data())
def test_kernel_never_raises_on_card_bytes(kernel: str, data: st.DataObject) -> None:
    """A real card's tap with one answer replaced by any bytes and status word: each answer yields the
    next command, in the state that waits on it, or an outcome with a reason; the kernel never raises."""
    responses = [bytes.fromhex(r) for _, r in _CARDS[kernel]]
    at = data.draw(st.integers(0, len(responses) - 1))
    sw = data.draw(st.sampled_from(["9000", "6A82", "6283", "6984", "6985", "6986", "6F00"]))
    responses[at] = data.draw(st.binary(max_size=80)) + bytes.fromhex(sw)
    k = Kernel(TerminalConfig(), Transaction(amount=1250), unpredictable=bytes)
    command = k.start()
    for raw in responses:
        assert command is not None
        command = k.receive(raw)
        if command is None:
            assert k.state is State.DONE and k.outcome is not None and k.outcome.reason
            break
        assert k.outcome is None
        assert k.state is waiting_on(command) and k.step == k.state.value


# A PDOL of terminal tags and random ones, each with a random length (EMV 4.4 Book 3 §5.4).
_PDOL_TAGS = ["9F66", "9F02", "9F03", "9F1A", "95", "5F2A", "9A", "9C", "9F37", "9F35", "DF70"]
_PDOL = st.lists(
    st.tuples(st.sampled_from(_PDOL_TAGS), st.integers(0, 40)), max_size=6,
).map(lambda entries: "".join(f"{tag}{length:02X}" for tag, length in entries))
_FCI = st.one_of(
    st.binary(max_size=120),
    _PDOL.map(lambda pdol: bytes.fromhex(select_aid(VISA_AID, "VISA", pdol))[:-2]),
)


@settings(max_examples=200)
@given(_FCI)
def test_kernel_survives_fuzzed_fci(fci: bytes) -> None:
    """A fuzzed SELECT AID answer is either read (GPO follows, with tag 83 around the PDOL data) or,
    with no other candidate, ends the application with a reason; it never raises."""
    k = Kernel(TerminalConfig(), Transaction(amount=1250), unpredictable=bytes)
    k.start()
    k.receive(bytes.fromhex(ppse((VISA_AID, "VISA", 1, "03"))))
    command = k.receive(fci + b"\x90\x00")
    if command is None:
        assert k.outcome is not None and k.outcome.outcome is Outcome.END_APPLICATION
        assert k.outcome.reason.startswith("card data could not be decoded")
    else:
        length = dol_length(parse_dol(to_dict(decode(fci)).get(0x9F38, b"")))
        assert k.state is State.GPO and command.ins == 0xA8
        (template,) = decode(command.data)
        assert template.tag == 0x83 and len(template.value) == length


def test_select_aid_pdol_is_used() -> None:
    """The PDOL given in the FCI decides the GPO data's layout and length."""
    script = [
        (SELECT_PPSE, ppse((VISA_AID, "VISA", 1, "03"))),
        ("00A4040007" + VISA_AID, select_aid(VISA_AID, "VISA", "9F3704")),
        ("80A80000068304" + UN, "6985"),
    ]
    card, _ = tap(script)
    assert card.done


def _drive(
    script: list[tuple[str | None, str]], transaction: Transaction,
) -> tuple[Kernel, list[CommandAPDU]]:
    """Run a kernel over a script's answers; the kernel and the commands it sent."""
    kernel = Kernel(TerminalConfig(), transaction, unpredictable=lambda n: bytes.fromhex("0A0B0C0D")[:n])
    responses = iter(bytes.fromhex(r) for _, r in script)
    sent: list[CommandAPDU] = []
    command = kernel.start()
    while command is not None:
        sent.append(command)
        command = kernel.receive(next(responses))
    return kernel, sent


def test_cdol_data_carries_real_terminal_values() -> None:
    """CDOL1 asking for 9F21, 9F09, 9F1E and 9F4E gets the time, version, serial and merchant, not zeros."""
    cdol = "9F21039F09029F1E089F4E0B"
    record_2 = ok(t(0x70, [t(0x8C, cdol), t(0x5A, "5413330089010434")]))
    script = [s if s[0] != "00B20114" else ("00B20114", record_2) for s in mc_card()]
    kernel, sent = _drive(script, Transaction(amount=1250, time="134501"))
    assert kernel.outcome is not None and kernel.outcome.outcome is Outcome.ONLINE_REQUEST
    gen_ac = sent[-1]
    assert gen_ac.ins == 0xAE
    assert gen_ac.data[:13] == bytes.fromhex("134501" "0002") + b"HCEKIT01"
    assert gen_ac.data[13:] == b"Corner Caf\x00"   # format ans: padded with trailing 00 (Book 3 §4.3)


def test_mastercard_field_55_has_no_visa_ttq() -> None:
    """The Mastercard authorization block leaves out the Visa-only TTQ (9F66); Visa's keeps it."""
    from apdu.tlv import decode
    mc = tap(mc_card())[1].outcome
    visa = tap(visa_card())[1].outcome
    assert 0x9F66 not in {n.tag for n in decode(mc.authorization_data)}
    assert 0x9F66 in {n.tag for n in decode(visa.authorization_data)}


@pytest.mark.parametrize(
    ("amount", "tvr_byte4"),
    [
        (1999, 0x00),   # below the reader's floor limit
        (2000, 0x00),   # at it: the contactless books compare "greater than" (Book A §5.2.2)
        (2001, 0x80),   # above it: "transaction exceeds floor limit"
        (0,    0x00),   # a zero amount goes online (Book A §3.1.1) but exceeds no floor limit
    ],
    ids=["below", "at", "above", "zero"],
)
def test_tvr_says_when_the_amount_exceeds_the_floor_limit(amount: int, tvr_byte4: int) -> None:
    """TVR byte 4 bit 8 'transaction exceeds floor limit' (Book 3 §10.6.1, Annex C5) follows the
    reader contactless floor limit, and GENERATE AC carries it to the card in CDOL1's 95."""
    config = TerminalConfig(limits=Limits(floor=2000, cvm=5000))
    k = Kernel(config, Transaction(amount=amount), unpredictable=bytes)
    k.start()
    assert k.terminal[0x95] == bytes((0, 0, 0, tvr_byte4, 0))
    script = [(None, r) if e == "80AE8000" else (e, r) for e, r in mc_card()]
    card = ScriptedTransport(script)
    CardTerminalPair(card.as_card(), config=config).tap(amount)
    gen_ac = CommandAPDU.from_bytes(card.sent[-1])
    assert gen_ac.ins == 0xAE
    assert split_dol_data(bytes.fromhex(MC_CDOL1), gen_ac.data)[0x95][3] == tvr_byte4
