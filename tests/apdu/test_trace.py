"""JSON Lines traces: records, reading, writing, tracers and masking (docs/architecture.md "Contracts")."""

from __future__ import annotations

import contextlib
import io
import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu import tlv
from apdu.errors import TraceError
from apdu.trace import (
    JsonlWriter,
    TraceRecord,
    TraceRecorder,
    dumps,
    mask_apdu,
    mask_record,
    mask_value,
    masking,
    read_trace,
)

TRACES = Path(__file__).resolve().parent.parent / "data" / "traces"
TEST_PANS = ("4761739001010010", "5413330089010434")


def luhn_digit(body: str) -> str:
    """The Luhn check digit (ISO/IEC 7812-1 Annex B) that completes ``body``."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return str((10 - total % 10) % 10)


# --- records ------------------------------------------------------------------------------

# source: the record layout of docs/architecture.md "Contracts"; APDUs from EMV 4.4 Book 1 §11.3 (SELECT PPSE)
@pytest.mark.parametrize(
    ("line",                                                          "dir", "hex"),
    [
        ('{"t": 0.0, "dir": "C", "hex": "00B2031400"}',                      "C",   "00B2031400"),
        ('{"t": 0.0131, "dir": "R", "hex": "6A82", "sw": "6A82", "ms": 12.4}', "R",   "6A82"),
        ('{"dir": "R", "hex": "9000"}',                                          "R",   "9000"),
        ('{"dir": "C", "hex": "00 b2 01 0c 00"}',                                "C",   "00B2010C00"),
    ],
)
def test_reads_contract_lines(line: str, dir: str, hex: str) -> None:
    """Each contract line reads into a record with its direction and bytes."""
    (record,) = read_trace([line])
    assert (record.dir, record.hex) == (dir, hex)


def test_to_json_keeps_contract_key_order() -> None:
    """A response's JSON has t, dir, hex, sw, ms in that order."""
    record = TraceRecord("R", bytes.fromhex("9000"), t=0.5, ms=3.25)
    assert list(record.to_json()) == ["t", "dir", "hex", "sw", "ms"]


def test_command_has_no_sw() -> None:
    """A command has no status word and none is written."""
    record = TraceRecord("C", bytes.fromhex("00B2010C00"), t=0.0)
    assert record.sw is None
    assert "sw" not in record.to_json()


@pytest.mark.parametrize(
    ("line",                                              "message"),
    [
        ("not json",                                      "not JSON"),
        ("[1, 2]",                                        "JSON object"),
        ('{"dir": "X", "hex": "9000"}',                   'dir must be "C" or "R"'),
        ('{"hex": "9000"}',                               'dir must be "C" or "R"'),
        ('{"dir": "R"}',                                  '"hex" must be a string'),
        ('{"dir": "R", "hex": "900"}',                    "even number of hex digits"),
        ('{"dir": "R", "hex": "90"}',                     "ends with SW1 SW2"),
        ('{"dir": "C", "hex": "00A4"}',                   "at least 4 bytes"),
        ('{"dir": "R", "hex": "9000", "sw": "6A82"}',     "does not match"),
        ('{"dir": "R", "hex": "9000", "t": "soon"}',      "finite number"),
        ('{"dir": "R", "hex": "9000", "ms": NaN}',        "finite number"),
        ('{"dir": "R", "hex": "9000", "t": true}',        "finite number"),
    ],
)
def test_bad_line_is_trace_error_with_line_number(line: str, message: str) -> None:
    """A bad line raises TraceError naming its line number."""
    with pytest.raises(TraceError) as info:
        read_trace(['{"dir": "C", "hex": "00B2010C00"}', "", line])
    assert info.value.line == 3
    assert message in str(info.value)
    assert str(info.value).startswith("line 3: ")


def test_round_trip_through_dumps() -> None:
    """dumps then read_trace gives the same records (unmasked)."""
    records = [
        TraceRecord("C", bytes.fromhex("80CA9F3600"), t=0.0),
        TraceRecord("R", bytes.fromhex("9F3602002A9000"), t=0.004, ms=3.5),
    ]
    assert read_trace(dumps(records, masked=False).splitlines()) == records


@given(
    st.lists(
        st.one_of(
            st.builds(TraceRecord, st.just("C"), st.binary(min_size=4, max_size=300),
                      st.none() | st.floats(0, 1e6, allow_nan=False)),
            st.builds(TraceRecord, st.just("R"), st.binary(min_size=2, max_size=300),
                      st.none() | st.floats(0, 1e6, allow_nan=False),
                      st.none() | st.floats(0, 1e6, allow_nan=False)),
        ),
        max_size=10,
    )
)
def test_round_trip_property(records: list[TraceRecord]) -> None:
    """Any records survive dumps/read_trace with their bytes and directions."""
    back = read_trace(dumps(records, masked=False).splitlines())
    assert [(r.dir, r.raw) for r in back] == [(r.dir, r.raw) for r in records]


@given(st.lists(st.text(max_size=80), max_size=8))
def test_fuzz_reader_raises_only_trace_error(lines: list[str]) -> None:
    """Arbitrary text either reads or raises TraceError, nothing else."""
    with contextlib.suppress(TraceError):
        read_trace(lines)


# --- tracers ------------------------------------------------------------------------------

PAN_RECORD = TraceRecord("R", bytes.fromhex("700A5A0847617390010100109000"), t=0.1, ms=2.0)


def test_recorder_keeps_clear_records_and_saves_masked() -> None:
    """The recorder keeps what it got; save masks unless told not to."""
    recorder = TraceRecorder()
    recorder(PAN_RECORD)
    assert recorder.records == [PAN_RECORD]
    out = io.StringIO()
    recorder.save(out)
    assert "4761739001010010" not in out.getvalue()
    clear = io.StringIO()
    recorder.save(clear, masked=False)
    assert "4761739001010010" in clear.getvalue()


def test_jsonl_writer_writes_one_masked_line_per_record() -> None:
    """The writer emits one JSON line per record, masked by default."""
    out = io.StringIO()
    writer = JsonlWriter(out)
    writer(TraceRecord("C", bytes.fromhex("00B2010C00")))
    writer(PAN_RECORD)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[1])["hex"] == "700A5A08476173FFFFFF00109000"


def test_masking_wraps_a_chain_of_tracers() -> None:
    """masking(tracer) hands the next tracer only masked records."""
    recorder = TraceRecorder()
    masking(recorder)(PAN_RECORD)
    assert recorder.records[0].raw.hex().upper() == "700A5A08476173FFFFFF00109000"
    assert recorder.records[0].t == PAN_RECORD.t


# --- masking ------------------------------------------------------------------------------

# sources: PAN and Track 2 layout EMV 4.4 Book 3 Annex A (5A, 57) and ISO/IEC 7813; test PANs
# 4761739001010010 (Visa test card) and 5413330089010434 (Mastercard test card)
@pytest.mark.parametrize(
    ("tag",   "value",                                          "masked"),
    [
        (0x5A,    "4761739001010010",                           "476173FFFFFF0010"),
        (0x5A,    "5413330089010434",                           "541333FFFFFF0434"),
        (0x5A,    "476173900101001F",                           "476173FFFFF1001F"),
        (0x5A,    "4761739001",                                 "FFFFFFFFFF"),
        (0x57,    "4761739001010010D25122011234567890123F",     "476173FFFFFF0010D2512201FFFFFFFFFFFFFF"),
        (0x9F6B,  "5413330089010434D20022011500000000000F",     "541333FFFFFF0434D2002201FFFFFFFFFFFFFF"),
        (0x5F20,  "444F452F4A4F484E",                           "2A2A2A2A2A2A2A2A"),
        (0x56,    "42353431333333303038393031303433345E",       "2A" * 18),
        (0x9F20,  "12345678",                                   "FFFFFFFF"),
    ],
)
def test_mask_value_vectors(tag: int, value: str, masked: str) -> None:
    """Each sensitive value masks to the documented scheme, same length."""
    out = mask_value(tag, bytes.fromhex(value))
    assert out.hex().upper() == masked
    assert len(out) == len(bytes.fromhex(value))


def test_mask_leaves_other_tags_alone() -> None:
    """Non-sensitive objects (cryptogram, ATC, expiry) are kept."""
    raw = bytes.fromhex("77159F2608569F946D585CB0139F360203A45F24032502289000")
    assert mask_apdu(raw, "R") == raw


def test_mask_reaches_nested_objects() -> None:
    """Sensitive objects inside templates are masked and the response still decodes."""
    raw = bytes.fromhex("700FA50D5F200A4A4F484E20534D495448" + "9000")
    out = mask_apdu(raw, "R")
    node = tlv.find(tlv.decode(out[:-2]), 0x5F20)
    assert node is not None and node.value == b"*" * 10


def test_mask_verify_pin_block() -> None:
    """A VERIFY command's plaintext PIN block is blanked."""
    masked = mask_apdu(bytes.fromhex("0020008008241234FFFFFFFFFF"), "C")
    assert masked.hex().upper() == "0020008008" + "FF" * 8


def test_mask_leaves_commands_without_pin_alone() -> None:
    """GPO data has no tags and is kept as sent."""
    raw = bytes.fromhex("80A8000023832127000000000000001000000000000000097800000000000978230301003839303100")
    assert mask_apdu(raw, "C") == raw


def test_mask_partial_tlv() -> None:
    """What decodes before a truncation is still masked."""
    raw = bytes.fromhex("5A08476173900101001057139000")
    assert mask_apdu(raw, "R").hex().upper().startswith("5A08476173FFFFFF0010")


@given(
    st.integers(min_value=11, max_value=18).flatmap(
        lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)
    ),
    st.booleans(),
)
def test_masked_record_never_contains_the_pan(body: str, in_template: bool) -> None:
    """For random Luhn PANs of 12-19 digits, no masked hex contains the clear PAN."""
    pan = body + luhn_digit(body)
    digits = pan + ("F" if len(pan) % 2 else "")
    track2 = pan + "D2512201" + "0123456789"
    track2 += "F" if len(track2) % 2 else ""
    pan_obj = "5A" + f"{len(digits) // 2:02X}" + digits
    track_obj = "57" + f"{len(track2) // 2:02X}" + track2
    body_hex = pan_obj + track_obj
    if in_template:
        body_hex = "70" + f"{len(body_hex) // 2:02X}" + body_hex
    record = TraceRecord("R", bytes.fromhex(body_hex + "9000"))
    masked = mask_record(record)
    assert pan not in masked.hex
    assert pan not in dumps([record])
    assert len(masked.raw) == len(record.raw)
    assert mask_record(masked) == masked
    assert tlv.decode(masked.raw[:-2])


@given(st.binary(max_size=300), st.sampled_from(["C", "R"]))
def test_fuzz_mask_never_raises(raw: bytes, direction: str) -> None:
    """mask_apdu returns same-length bytes for any input."""
    assert len(mask_apdu(raw, direction)) == len(raw)


def test_masking_is_deterministic_over_many_pans() -> None:
    """A thousand seeded PANs in Track 2 all lose their middle digits."""
    rng = random.Random(7816)
    for _ in range(1000):
        body = "".join(rng.choice("0123456789") for _ in range(15))
        pan = body + luhn_digit(body)
        out = mask_value(0x57, bytes.fromhex(pan + "D25122010000000000000F"))
        assert out.hex().upper()[:16] == pan[:6] + "FFFFFF" + pan[-4:]


# --- shipped samples ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["visa_qvsdc.jsonl", "mastercard_mchip.jsonl"])
def test_sample_traces_are_masked_and_valid(name: str) -> None:
    """The shipped sample traces read back, alternate C/R, and hold no clear test PAN."""
    text = (TRACES / name).read_text()
    records = read_trace(text.splitlines())
    assert [r.dir for r in records] == ["C", "R"] * (len(records) // 2)
    for pan in TEST_PANS:
        assert pan not in text
        assert pan.encode().hex().upper() not in text
    assert [mask_record(r) for r in records] == records
