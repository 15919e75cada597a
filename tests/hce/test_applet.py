"""The sans-I/O applet: every command, every state, both kernels, counters, CVM, fuzz."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apdu.command import PPSE, PSE, GenerateAC, GetData, GetProcessingOptions, ReadRecord, Select
from apdu.sw import SW
from apdu.tlv import decode, find
from cryptogram.cvn import profile as cvn_profile
from cryptogram.luk import derive_luk
from hce.applet import INSTRUCTIONS, CardApplet
from hce.errors import CounterStoreError
from hce.keys import FileCounterStore, MemoryCounterStore
from hce.states import State
from hce.testcard import TEST_IMK, builtin_profile

NOW = 1_750_000_000
# PDOL data for the default Visa PDOL: TTQ, amount 12.50, other 0, country 0250, TVR, EUR, date, type, UN.
VISA_PDOL = bytes.fromhex(
    "36000000" "000000001250" "000000000000" "0250" "0000000000" "0978" "250101" "00" "CAFEBABE")
VISA_PDOL_BIG = VISA_PDOL[:4] + bytes.fromhex("000000009999") + VISA_PDOL[10:]


def cdol1(amount: str = "000000001250") -> bytes:
    """CDOL1 data for the default Mastercard CDOL1 (43 bytes)."""
    return bytes.fromhex(amount + "000000000000" "0250" "0000000000" "0978" "250101" "00" "CAFEBABE"
                         "22" "0000" "0000000000000000" "1F0302")


def card(kernel: str, **kw: object) -> CardApplet:
    """A built-in test card of ``kernel`` whose keys are valid at NOW."""
    device_cvm = bool(kw.pop("device_cvm", False))
    return CardApplet(builtin_profile(kernel, now=NOW, device_cvm=device_cvm), clock=lambda: NOW, **kw)  # type: ignore[arg-type]


def sw(response: bytes) -> str:
    """The status word of a response as hex."""
    return response[-2:].hex().upper()


def run(applet: CardApplet, *commands: bytes) -> list[bytes]:
    """Send commands in order, return the responses."""
    return [applet.process(c) for c in commands]


def tags(response: bytes) -> dict[int, bytes]:
    """The primitive data objects of a response's template."""
    nodes = decode(response[:-2])
    out = {}
    for tag in (0x82, 0x94, 0x57, 0x5F34, 0x9F10, 0x9F26, 0x9F27, 0x9F36, 0x9F6C, 0x9F6E, 0xDF4B):
        node = find(nodes, tag)
        if node is not None:
            out[tag] = node.value
    return out


def issuer_verifies(applet: CardApplet, terminal: dict[int, bytes], response_tags: dict[int, bytes]) -> bool:
    """Verify the cryptogram as the issuer would: re-derive the LUK from the test IMK."""
    profile = applet.profile
    cvn = cvn_profile(profile.cvn)
    iad = cvn.parse_iad(response_tags[0x9F10])
    assert iad.luk_index is not None
    luk = derive_luk(cvn.derive_icc_mk(TEST_IMK, profile.pan, profile.psn), iad.luk_index)
    values = dict(terminal)
    values.update({0x82: profile.aip, 0x9F36: response_tags[0x9F36], 0x9F10: response_tags[0x9F10]})
    return cvn.verify(luk, values, response_tags[0x9F26])


def visa_terminal(pdol: bytes = VISA_PDOL) -> dict[int, bytes]:
    """The PDOL values as a tag map."""
    return {0x9F02: pdol[4:10], 0x9F03: pdol[10:16], 0x9F1A: pdol[16:18], 0x95: pdol[18:23],
            0x5F2A: pdol[23:25], 0x9A: pdol[25:28], 0x9C: pdol[28:29], 0x9F37: pdol[29:33]}


def mc_terminal(data: bytes) -> dict[int, bytes]:
    """The CDOL1 values that enter the cryptogram."""
    return {0x9F02: data[0:6], 0x9F03: data[6:12], 0x9F1A: data[12:14], 0x95: data[14:19],
            0x5F2A: data[19:21], 0x9A: data[21:24], 0x9C: data[24:25], 0x9F37: data[25:29]}


def test_visa_tap_returns_a_verifiable_arqc_in_the_gpo_response() -> None:
    """A Visa tap: PPSE, AID, GPO → 77 with ARQC that the issuer verifies from the test IMK."""
    applet = card("visa")
    ppse, select, gpo = run(applet, Select(PPSE).to_bytes(), Select(applet.profile.aid).to_bytes(),
                            GetProcessingOptions(VISA_PDOL).to_bytes())
    assert (sw(ppse), sw(select), sw(gpo)) == ("9000", "9000", "9000")
    found = tags(gpo)
    assert set(found) >= {0x82, 0x94, 0x57, 0x5F34, 0x9F10, 0x9F26, 0x9F27, 0x9F36, 0x9F6C, 0x9F6E}
    assert found[0x9F27] == b"\x80" and found[0x9F36] == b"\x00\x01"
    assert issuer_verifies(applet, visa_terminal(), found)
    assert applet.state is State.COMPLETED


def test_mastercard_tap_gpo_then_records_then_generate_ac() -> None:
    """A Mastercard tap: GPO gives AIP/AFL, records give CDOL1, GENERATE AC gives a verifiable ARQC."""
    applet = card("mastercard")
    _, _, gpo, r1, r2 = run(applet, Select(PPSE).to_bytes(), Select(applet.profile.aid).to_bytes(),
                            GetProcessingOptions().to_bytes(), ReadRecord(1, 1).to_bytes(),
                            ReadRecord(1, 2).to_bytes())
    assert tags(gpo) == {0x82: applet.profile.aip, 0x94: applet.profile.afl}
    assert find(decode(r2[:-2]), 0x8C).value == applet.profile.cdol1  # type: ignore[union-attr]
    assert find(decode(r1[:-2]), 0x57) is not None
    data = cdol1()
    ac = applet.process(GenerateAC("ARQC", data).to_bytes())
    found = tags(ac)
    assert found[0x9F27] == b"\x80"
    assert issuer_verifies(applet, mc_terminal(data), found)


@pytest.mark.parametrize(
    ("requested", "cid"),
    [
        ("ARQC", b"\x80"),  # EMV 4.4 Book 3 §6.5.5.2: ARQC asked, ARQC given
        ("TC",   b"\x80"),  # online-only card: never a TC when it can go online
        ("AAC",  b"\x00"),  # AAC asked, AAC given
    ],
)
def test_generate_ac_reference_control(requested: str, cid: bytes) -> None:
    """GENERATE AC P1 decides the cryptogram type; a TC request is answered with an ARQC."""
    applet = card("mastercard")
    run(applet, Select(applet.profile.aid).to_bytes(), GetProcessingOptions().to_bytes())
    assert tags(applet.process(GenerateAC(requested, cdol1()).to_bytes()))[0x9F27] == cid


@pytest.mark.parametrize(
    ("kernel", "state_commands", "command", "expected"),
    [
        ("visa",       [],                 GetProcessingOptions(VISA_PDOL).to_bytes(), "6985"),
        ("visa",       ["ppse"],           GetProcessingOptions(VISA_PDOL).to_bytes(), "6985"),
        ("visa",       ["aid"],            ReadRecord(1, 1).to_bytes(),                "6985"),
        ("visa",       ["aid", "gpo"],     GetProcessingOptions(VISA_PDOL).to_bytes(), "6985"),
        ("visa",       ["aid", "gpo"],     GenerateAC("ARQC", cdol1()).to_bytes(),     "6985"),
        ("visa",       ["aid", "gpo"],     ReadRecord(1, 1).to_bytes(),                "9000"),
        ("visa",       ["aid", "gpo"],     ReadRecord(1, 9).to_bytes(),                "6A83"),
        ("visa",       ["aid", "gpo"],     ReadRecord(5, 1).to_bytes(),                "6A82"),
        ("visa",       ["aid"],            GetProcessingOptions(b"\x00").to_bytes(),   "6700"),
        ("visa",       ["aid"],            bytes.fromhex("80A80000028100"),            "6A80"),
        ("visa",       ["aid"],            bytes.fromhex("80A80100028300"),            "6A86"),
        ("visa",       [],                 GetData(0x9F36).to_bytes(),                 "6985"),
        ("visa",       ["aid"],            GetData(0x9F17).to_bytes(),                 "6A88"),
        ("visa",       ["aid"],            GetData(0x9F13).to_bytes(),                 "9000"),
        ("mastercard", ["aid"],            GenerateAC("ARQC", cdol1()).to_bytes(),     "6985"),
        ("mastercard", ["aid", "gpo"],     GenerateAC("ARQC", b"\x00" * 5).to_bytes(), "6700"),
        ("mastercard", ["aid", "gpo"],     bytes.fromhex("80AEC0002B") + cdol1(),      "6A86"),
        ("mastercard", ["aid", "gpo"],     bytes.fromhex("80AE8001") + b"\x2B" + cdol1(), "6A86"),
        ("mastercard", ["aid", "gpo", "ac"], GenerateAC("ARQC", cdol1()).to_bytes(),   "6985"),
        ("mastercard", ["aid", "gpo"],     ReadRecord(1, 0).to_bytes()[:2] + b"\x00\x0C\x00", "6A86"),
        ("mastercard", ["aid", "gpo"],     bytes.fromhex("00B2010800"),                "6A86"),
        ("mastercard", [],                 Select(PSE).to_bytes(),                     "6A82"),
        ("mastercard", [],                 Select(bytes.fromhex("A0000000031010")).to_bytes(), "6A82"),
        ("mastercard", [],                 bytes.fromhex("00A4040200"),                "6700"),
        ("mastercard", [],                 bytes.fromhex("00A40C0007A0000000041010"),  "6A86"),
        ("mastercard", [],                 Select(PPSE, next_occurrence=True).to_bytes(), "6A82"),
        ("mastercard", [],                 bytes.fromhex("00A4"),                      "6700"),
        ("mastercard", [],                 bytes.fromhex("00A404000E3250"),            "6700"),
        ("mastercard", [],                 bytes.fromhex("00FF000000"),                "6D00"),
        ("mastercard", [],                 bytes.fromhex("80A4040000"),                "6E00"),
        ("mastercard", [],                 bytes.fromhex("00A8000000"),                "6E00"),
        ("mastercard", [],                 bytes.fromhex("A0A4040000"),                "6E00"),
        ("mastercard", [],                 bytes.fromhex("10A4040000"),                "6884"),
        ("mastercard", [],                 bytes.fromhex("0CA4040000"),                "6882"),
        ("mastercard", [],                 bytes.fromhex("01A4040000"),                "6881"),
    ],
)
def test_status_words_by_state_and_command(kernel: str, state_commands: list[str], command: bytes,
                                           expected: str) -> None:
    """Each wrong input or wrong state gets its ISO 7816 / EMV status word (ISO/IEC 7816-4 §5.6)."""
    applet = card(kernel)
    setup = {
        "ppse": Select(PPSE).to_bytes(),
        "aid": Select(applet.profile.aid).to_bytes(),
        "gpo": GetProcessingOptions(VISA_PDOL if kernel == "visa" else b"").to_bytes(),
        "ac": GenerateAC("ARQC", cdol1()).to_bytes(),
    }
    for name in state_commands:
        assert sw(applet.process(setup[name])) == "9000", name
    assert sw(applet.process(command)) == expected


def test_atc_increments_on_every_cryptogram_and_get_data_reads_it() -> None:
    """Each tap's cryptogram uses the next ATC; GET DATA 9F36 and 9F13 report it."""
    applet = card("mastercard")
    atcs = []
    for _ in range(3):
        run(applet, Select(applet.profile.aid).to_bytes(), GetProcessingOptions().to_bytes())
        atcs.append(tags(applet.process(GenerateAC("ARQC", cdol1()).to_bytes()))[0x9F36])
    assert atcs == [b"\x00\x01", b"\x00\x02", b"\x00\x03"]
    assert applet.process(GetData(0x9F36).to_bytes()) == bytes.fromhex("9F360200039000")
    assert applet.process(GetData(0x9F13).to_bytes()) == bytes.fromhex("9F130200039000")


def test_atc_is_never_reused_across_a_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With a file store, a new applet (after a crash) continues after the last reserved ATC."""
    path = tmp_path / "counters.json"
    first = card("visa", counters=FileCounterStore(path))
    run(first, Select(first.profile.aid).to_bytes())
    assert tags(first.process(GetProcessingOptions(VISA_PDOL).to_bytes()))[0x9F36] == b"\x00\x01"
    second = card("visa", counters=FileCounterStore(path))
    run(second, Select(second.profile.aid).to_bytes())
    assert tags(second.process(GetProcessingOptions(VISA_PDOL).to_bytes()))[0x9F36] == b"\x00\x02"


class _BrokenStore(MemoryCounterStore):
    """A store whose disk is full: every reservation fails."""

    def reserve_next_atc(self, *, online: bool = False, luk_index: int | None = None) -> int:
        raise CounterStoreError("disk full")


class _CountingStore(MemoryCounterStore):
    """A store that counts its durable writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def _persist(self, atc: int, online: int, uses: Mapping[int, int]) -> None:
        self.writes += 1


def test_an_online_cryptogram_costs_two_durable_writes() -> None:
    """An ARQC reserves its ATC and its key's use in one write, then keeps the issuer state bound to
    it in a second, both before it leaves the card (each is an fsync on a phone's storage)."""
    store = _CountingStore()
    applet = card("visa", counters=store)
    run(applet, Select(applet.profile.aid).to_bytes())
    gpo = tags(applet.process(GetProcessingOptions(VISA_PDOL).to_bytes()))
    assert gpo[0x9F27] == b"\x80" and gpo[0x9F36] == b"\x00\x01"   # an ARQC, ATC 1
    luk = applet.last_online
    assert luk is not None and store.luk_uses(luk.luk_index) == 1 and store.last_online_atc == 1
    assert store.writes == 2


def test_no_cryptogram_leaves_without_a_durable_atc() -> None:
    """When the ATC cannot be made durable, the card answers 6581 and no cryptogram."""
    applet = card("visa", counters=_BrokenStore())
    run(applet, Select(applet.profile.aid).to_bytes())
    assert applet.process(GetProcessingOptions(VISA_PDOL).to_bytes()) == bytes.fromhex("6581")


def test_exhausted_atc_is_6985() -> None:
    """At ATC FFFF the card makes no more cryptograms."""
    applet = card("visa", counters=MemoryCounterStore(atc=0xFFFF))
    run(applet, Select(applet.profile.aid).to_bytes())
    assert sw(applet.process(GetProcessingOptions(VISA_PDOL).to_bytes())) == "6985"


def test_exhausted_keys_decline_with_aac_and_ask_for_replenishment() -> None:
    """When every LUK's budget is used up the card answers an AAC, sets the CVR bit and the flag."""
    uses = {i: 100 for i in range(1, 6)}
    applet = card("visa", counters=MemoryCounterStore(luk_uses=uses))
    assert applet.needs_replenishment
    run(applet, Select(applet.profile.aid).to_bytes())
    found = tags(applet.process(GetProcessingOptions(VISA_PDOL).to_bytes()))
    assert found[0x9F27] == b"\x00"
    assert cvn_profile("visa18").parse_iad(found[0x9F10]).cvr[2] & 0x20
    assert applet.last_cryptogram is not None and applet.last_cryptogram.reason == "replenish"


def test_expired_keys_decline_by_time() -> None:
    """A LUK past not_after is not used: the card declines at a later ``now``."""
    applet = card("mastercard")
    run(applet, Select(applet.profile.aid).to_bytes(), GetProcessingOptions().to_bytes())
    later = NOW + 31 * 24 * 3600
    found = tags(applet.process(GenerateAC("ARQC", cdol1()).to_bytes(), now=later))
    assert found[0x9F27] == b"\x00"
    assert applet.needs_replenishment_at(later) and not applet.needs_replenishment_at(NOW)


def test_each_cryptogram_consumes_one_use_of_the_current_key() -> None:
    """LUK use counts advance with every ARQC, and the card moves to the next key when one is used up."""
    store = MemoryCounterStore(luk_uses={1: 99})
    applet = card("visa", counters=store)
    indexes = []
    for _ in range(2):
        run(applet, Select(applet.profile.aid).to_bytes())
        found = tags(applet.process(GetProcessingOptions(VISA_PDOL).to_bytes()))
        indexes.append(cvn_profile("visa18").parse_iad(found[0x9F10]).luk_index)
    assert indexes == [1, 2] and store.luk_uses(1) == 100 and store.luk_uses(2) == 1


def test_visa_above_cvm_limit_without_device_cvm_is_see_phone() -> None:
    """Visa: an amount above the CVM limit without CDCVM gets SW 6986 (See Phone) and no cryptogram."""
    applet = card("visa")
    run(applet, Select(applet.profile.aid).to_bytes())
    assert applet.process(GetProcessingOptions(VISA_PDOL_BIG).to_bytes()) == bytes.fromhex("6986")
    assert applet.counters.last_atc == 0


def test_visa_with_device_cvm_sets_ctq_cdcvm_performed() -> None:
    """Visa with CDCVM: ARQC above the limit and CTQ byte 2 bit 8 set."""
    applet = card("visa", device_cvm=True)
    run(applet, Select(applet.profile.aid).to_bytes())
    found = tags(applet.process(GetProcessingOptions(VISA_PDOL_BIG).to_bytes()))
    assert found[0x9F27] == b"\x80" and found[0x9F6C][1] & 0x80


def test_mastercard_above_cvm_limit_without_device_cvm_is_aac_with_see_phone() -> None:
    """Mastercard: AAC with DF4B whose bits match the kernel's 00030F See Phone mask."""
    applet = card("mastercard")
    run(applet, Select(applet.profile.aid).to_bytes(), GetProcessingOptions().to_bytes())
    found = tags(applet.process(GenerateAC("ARQC", cdol1("000000009999")).to_bytes()))
    assert found[0x9F27] == b"\x00"
    assert int.from_bytes(found[0xDF4B], "big") & 0x00030F


def test_mastercard_with_device_cvm_reports_it_in_cvr_and_df4b() -> None:
    """Mastercard with CDCVM: ARQC, CVR byte 1 bits 3 and 1, DF4B 'OD-CVM successful'."""
    applet = card("mastercard", device_cvm=True)
    run(applet, Select(applet.profile.aid).to_bytes(), GetProcessingOptions().to_bytes())
    found = tags(applet.process(GenerateAC("ARQC", cdol1("000000009999")).to_bytes()))
    assert found[0x9F27] == b"\x80"
    assert cvn_profile("mc16").parse_iad(found[0x9F10]).cvr[0] & 0x05 == 0x05
    assert found[0xDF4B] == b"\x00\x10\x00"


def test_select_resets_the_transaction() -> None:
    """SELECT in any state starts over: after a Visa GPO, a new SELECT allows a new GPO."""
    applet = card("visa")
    run(applet, Select(applet.profile.aid).to_bytes(), GetProcessingOptions(VISA_PDOL).to_bytes())
    run(applet, Select(applet.profile.aid).to_bytes())
    assert sw(applet.process(GetProcessingOptions(VISA_PDOL).to_bytes())) == "9000"
    applet.reset()
    assert applet.state is State.IDLE


def test_partial_aid_selects_the_application() -> None:
    """SELECT with a prefix of the AID (at least the 5-byte RID) selects it (ISO/IEC 7816-4 §7.1.1)."""
    applet = card("visa")
    assert sw(applet.process(Select(applet.profile.aid[:5]).to_bytes())) == "9000"


_VALID_SW1 = {0x90, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F}
_NO_PRECISE_DIAGNOSIS = SW.NO_PRECISE_DIAGNOSIS.encoded


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=80), min_size=1, max_size=6), st.sampled_from(["visa", "mastercard"]))
def test_fuzz_random_apdus_never_raise_and_get_a_status_word(apdus: list[bytes], kernel: str) -> None:
    """Random byte strings, in any order, get a valid status word, and none reaches the last guard."""
    applet = card(kernel)
    for apdu in apdus:
        response = applet.process(apdu)
        assert len(response) >= 2 and response[-2] in _VALID_SW1
        assert response[-2:] != _NO_PRECISE_DIAGNOSIS
    assert applet.internal_errors == 0


# Half the draws are the card's own instructions with their class, so every handler is reached in
# every state; the other half are any byte.
_CLA = st.one_of(st.sampled_from([0x00, 0x80]), st.integers(0, 255))
_INS = st.one_of(st.sampled_from(sorted(INSTRUCTIONS)), st.integers(0, 255))
_P = st.one_of(st.sampled_from([0x00, 0x04, 0x9F, 0x36, 0x13, 0x0C, 0x14, 0x8E, 0x80]), st.integers(0, 255))


@settings(max_examples=400, deadline=None)
@given(_CLA, _INS, _P, _P, st.binary(max_size=60), st.sampled_from(["visa", "mastercard"]), st.integers(0, 3),
       st.booleans())
def test_fuzz_well_formed_apdus_in_every_state(cla: int, ins: int, p1: int, p2: int, data: bytes, kernel: str,
                                               depth: int, own_class: bool) -> None:
    """Well-formed commands with random fields, sent in each state, are answered by their handler:
    never 6F00, and the applet's last guard is never reached."""
    applet = card(kernel)
    if own_class and ins in INSTRUCTIONS:
        cla = INSTRUCTIONS[ins].cla
    steps = [Select(PPSE).to_bytes(), Select(applet.profile.aid).to_bytes(),
             GetProcessingOptions(VISA_PDOL if kernel == "visa" else b"").to_bytes()][:depth]
    run(applet, *steps)
    body = (bytes((len(data),)) + data if data else b"") + b"\x00"
    response = applet.process(bytes((cla, ins, p1, p2)) + body)
    assert response[-2] in _VALID_SW1
    assert response[-2:] != _NO_PRECISE_DIAGNOSIS
    assert applet.internal_errors == 0


@pytest.mark.parametrize("tag", ["9F36", "9F13"])
def test_get_data_in_each_state_answers_from_its_handler(tag: str) -> None:
    """GET DATA of the ATC or last online ATC, in every state, is 9000 or 6985, never the last guard."""
    for kernel in ("visa", "mastercard"):
        applet = card(kernel)
        steps = [Select(PPSE).to_bytes(), Select(applet.profile.aid).to_bytes(),
                 GetProcessingOptions(VISA_PDOL if kernel == "visa" else b"").to_bytes()]
        answers = [sw(applet.process(GetData(int(tag, 16)).to_bytes()))]
        for step in steps:
            applet.process(step)
            answers.append(sw(applet.process(GetData(int(tag, 16)).to_bytes())))
        assert answers == ["6985", "6985", "9000", "9000"]
        assert applet.internal_errors == 0


class _BrokenCounters(MemoryCounterStore):
    """A counter store whose ATC cannot be read: a defect the applet must not hide."""

    @property
    def last_atc(self) -> int:
        raise RuntimeError("the store lost its ATC")


def test_last_guard_answers_6f00_counts_and_logs_without_data(caplog: pytest.LogCaptureFixture) -> None:
    """A handler that raises is answered 6F00, counted, and logged with the header only."""
    applet = CardApplet(builtin_profile("visa", now=NOW), counters=_BrokenCounters(atc=0), clock=lambda: NOW)
    run(applet, Select(applet.profile.aid).to_bytes())
    with caplog.at_level(logging.ERROR, logger="hce.applet"):
        assert sw(applet.process(GetData(0x9F36).to_bytes())) == "6F00"
    assert applet.internal_errors == 1
    assert [r.getMessage() for r in caplog.records] == ["internal error answering 80CA9F36: RuntimeError"]
