"""Importers of pcsc-spy and Proxmark3 trace output."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.errors import TraceError
from apdu.importers import parse, parse_pcsc_spy
from apdu.proxmark import crc_a, parse_pm3
from apdu.trace import mask_record, read_trace

TRACES = Path(__file__).resolve().parent.parent / "data" / "traces"


# --- CRC_A --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("frame",                   "crc",   "source"),
    [
        ("0000",                    "A01E",  "ISO/IEC 14443-3 Annex B example 1"),
        ("1234",                    "26CF",  "ISO/IEC 14443-3 Annex B example 2"),
        ("5000",                    "57CD",  "HLTA in Proxmark/proxmark3#567 trace"),
        ("E021",                    "B2C7",  "RATS in nfcgate/nfcgate#118"),
        ("0A0100A40000021002",      "5668",  "I-block with CID in nfcgate/nfcgate#118"),
    ],
)
def test_crc_a_vectors(frame: str, crc: str, source: str) -> None:
    """CRC_A matches published frames."""
    assert crc_a(bytes.fromhex(frame)).hex().upper() == crc, source


# --- pcsc-spy -----------------------------------------------------------------------------

def test_pcsc_spy_sample_matches_the_jsonl_sample() -> None:
    """The pcsc-spy rendering of the Visa exchange imports to the shipped trace."""
    records = parse_pcsc_spy((TRACES / "visa_qvsdc.pcsc-spy.txt").read_text().splitlines())
    expected = read_trace((TRACES / "visa_qvsdc.jsonl").read_text().splitlines())
    assert [mask_record(r).raw for r in records] == [r.raw for r in expected]
    assert [r.dir for r in records] == [r.dir for r in expected]


def test_pcsc_spy_timing_from_durations() -> None:
    """t accumulates SCardTransmit durations; ms is the call's duration."""
    records = parse_pcsc_spy((TRACES / "visa_qvsdc.pcsc-spy.txt").read_text().splitlines())
    assert records[0].t == 0.0
    assert records[1].ms == pytest.approx(13.021)
    assert records[2].t == pytest.approx(0.013021)
    assert records[5].ms == pytest.approx(96.412)


def test_pcsc_spy_skips_failed_transmits() -> None:
    """A transmit that returned an error adds no records (7 exchanges, not 8)."""
    records = parse_pcsc_spy((TRACES / "visa_qvsdc.pcsc-spy.txt").read_text().splitlines())
    assert len(records) == 14
    assert all(r.hex != "80CA9F3600" for r in records)


OLD_FORMAT = """\
SCardTransmit
 i hCard: 0x00010001
 i bSendLength 0x00000005
 i bSendBuffer 80 CA 9F 36 00
 o bRecvLength 0x00000007
 o bRecvBuffer 9F 36 02 00 2A 90 00
 => Command successful. (0x00000000) [0.000000120]
"""


def test_pcsc_spy_old_inline_format() -> None:
    """Early pcsc-spy printed buffers inline on the bSendBuffer line."""
    records = parse_pcsc_spy(OLD_FORMAT.splitlines())
    assert [(r.dir, r.hex) for r in records] == [("C", "80CA9F3600"), ("R", "9F3602002A9000")]


THREADED = """\
\x1b[34mSCardTransmit\x1b[0m
    SCardTransmit
\x1b[32m i hCard: 0x1\x1b[0m
     i hCard: 0x2
 i bSendBuffer
     i bSendBuffer
 i  0000 00 B2 01 0C 00                                  .....
     i  0000 80 CA 9F 17 00                                  .....
     o bRecvBuffer
     o  0000 9F 17 01 03 90 00                               ......
 o bRecvBuffer
 o  0000 6A 83                                           j.
     => Command successful. (SCARD_S_SUCCESS [0x00000000])  [0.001000]
 => Command successful. (SCARD_S_SUCCESS [0x00000000])  [0.002000]
"""


def test_pcsc_spy_follows_threads_and_strips_colour() -> None:
    """Interleaved calls of two threads (indented by 4) are kept apart; ANSI codes ignored."""
    records = parse_pcsc_spy(THREADED.splitlines())
    assert [(r.dir, r.hex) for r in records] == [
        ("C", "80CA9F1700"), ("R", "9F170103" + "9000"),
        ("C", "00B2010C00"), ("R", "6A83"),
    ]


def test_pcsc_spy_length_mismatch_is_trace_error() -> None:
    """A buffer that contradicts its length field names its line."""
    text = OLD_FORMAT.replace("bSendLength 0x00000005", "bSendLength 0x00000006")
    with pytest.raises(TraceError) as info:
        parse_pcsc_spy(text.splitlines())
    assert info.value.line == 1


def test_pcsc_spy_nothing_in_other_text() -> None:
    """Text that is not pcsc-spy output yields no records."""
    assert parse_pcsc_spy(["hello", "SCardConnect", " i szReader x"]) == []


# --- Proxmark3 ----------------------------------------------------------------------------

def test_pm3_sample_matches_the_jsonl_sample() -> None:
    """The Proxmark3 rendering of the Mastercard exchange imports to the shipped trace."""
    records = parse_pm3((TRACES / "mastercard_mchip.pm3.txt").read_text().splitlines())
    expected = read_trace((TRACES / "mastercard_mchip.jsonl").read_text().splitlines())
    assert [mask_record(r).raw for r in records] == [r.raw for r in expected]


def test_pm3_timing_in_carrier_periods() -> None:
    """t is the first frame's start over 13.56 MHz; ms runs from command end to response end."""
    records = parse_pm3((TRACES / "mastercard_mchip.pm3.txt").read_text().splitlines())
    assert records[0].t == pytest.approx(47744 / 13.56e6)
    assert records[1].ms == pytest.approx((123860 - 74240) / 13560)
    assert all(r.ms is None for r in records if r.dir == "C")


def test_pm3_wtx_and_chaining() -> None:
    """A WTX before the GPO answer and chained record answers are joined into whole APDUs."""
    records = parse_pm3((TRACES / "mastercard_mchip.pm3.txt").read_text().splitlines())
    gpo = records[5]
    assert gpo.hex == "7716820219809410080101001001010118010200200102009000"
    assert len(records[7].raw) == 0x75 + 2 + 2


ROWS_WITH_CID = [
    "      0 |    992 | Rdr |26(7)                              |     | REQA",
    "   2228 |   4596 | Tag |04  00                             |     |",
    "   7040 |   9504 | Rdr |93  20                             |     | ANTICOLL",
    "  10676 |  16500 | Tag |02  80  a8  00  00                 |     |",
    "  20000 |  25000 | Rdr |e0  21  b2  c7                     |  ok | RATS",
    "  26000 |  30000 | Tag |05  78  80  70  02  a5  46          |  ok |",
    "  40000 |  52000 | Rdr |0a  01  00  a4  00  00  02  10  02  56  68 |     | I-Block",
    "  60000 |  62000 | Tag |0a  01  6a  82  fd  39              | !crc |",
    "  63000 |  64000 | Rdr |ba  01  6d  9b                     |     | R-NAK",
    "  65000 |  67000 | Tag |0a  01  6a  82  1b  92              |     |",
]


def test_pm3_cid_crc_check_nak_and_activation() -> None:
    """CID is removed, CRC_A is checked when the column is empty, bad frames and activation skipped."""
    rows = list(ROWS_WITH_CID)
    rows[-1] = rows[-1].replace("1b  92", " ".join(f"{b:02x} " for b in crc_a(bytes.fromhex("0A016A82"))))
    records = parse_pm3(rows)
    assert [(r.dir, r.hex) for r in records] == [("C", "00A40000021002"), ("R", "6A82")]


def test_pm3_lowercase_uppercase_and_parity_marks() -> None:
    """Bytes with parity marks (!) and either case are read."""
    frame = bytes.fromhex("0280CA9F3600")
    cells = "  ".join(f"{b:02X}" for b in frame + crc_a(frame))
    answer = bytes.fromhex("029F3602002A9000")
    cells2 = "  ".join(f"{b:02x}" for b in answer + crc_a(answer)).replace("2a", "2a!")
    rows = [f" 100 | 200 | Rdr |{cells} |  ok |", f" 300 | 400 | Tag |{cells2} |  ok |"]
    assert [r.hex for r in parse_pm3(rows)] == ["80CA9F3600", "9F3602002A9000"]


@given(st.lists(st.text(alphabet="0123456789abcdef |!RdTag()\n", max_size=60), max_size=20))
def test_fuzz_pm3_raises_only_trace_error(lines: list[str]) -> None:
    """Random table-like text either parses or raises TraceError."""
    with contextlib.suppress(TraceError):
        parse_pm3(lines)


@given(st.lists(st.text(max_size=60), max_size=20))
def test_fuzz_pcsc_spy_raises_only_trace_error(lines: list[str]) -> None:
    """Random text either parses or raises TraceError."""
    with contextlib.suppress(TraceError):
        parse_pcsc_spy(["SCardTransmit", *lines])


def test_parse_by_name_and_unknown_format() -> None:
    """parse dispatches by format name; an unknown one is TraceError."""
    assert parse(OLD_FORMAT.splitlines(), "pcsc-spy")
    with pytest.raises(TraceError, match="unknown trace format"):
        parse([], "wireshark")


def test_pm3_partial_bit_noise_frames_are_skipped_and_counted() -> None:
    """A sniff with partial-bit noise frames (a few bits, no byte) imports the rest and counts them."""
    from apdu.proxmark import parse_pm3_report

    lines = (TRACES / "mastercard_mchip.pm3.txt").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if "80  a8  00  00" in line)
    noisy = [*lines[:at],
             "     270000 |     270100 | Rdr |02(3)     |     |",
             "     271000 |     271090 | Tag |0a(4)     |     |",
             *lines[at:]]
    records, noise = parse_pm3_report(noisy)
    assert noise == 2
    assert [r.hex for r in records] == [r.hex for r in parse_pm3(lines)]
    assert parse_pm3(noisy) == records


@pytest.mark.parametrize("mode", ["-t", "-t -d", "-d", "color", "-t color"])
def test_pcsc_spy_every_output_mode(mode: str) -> None:
    """pcsc-spy's thread (-t), diffable (-d) and colour output parse to the same APDUs as -n.

    The transformations are those of pcsc-lite's pcsc-spy: with -t every line is prefixed by
    the indent and " (tN) "; with -d times print as "[??.??]"; colour wraps lines in ANSI codes.
    """
    import re

    lines = (TRACES / "visa_qvsdc.pcsc-spy.txt").read_text().splitlines()
    plain = parse_pcsc_spy(lines)
    out = lines
    if "-d" in mode:
        out = [re.sub(r"\[\d+\.\d+\]$", "[??.??]", line) for line in out]
    if "color" in mode:
        out = [f"\x1b[32m{line}\x1b[0m" for line in out]
    if "-t" in mode:
        out = [" (t0) " + line for line in out]
    got = parse_pcsc_spy(out)
    assert [(r.dir, r.hex) for r in got] == [(r.dir, r.hex) for r in plain]
    assert len(got) > 0


def test_pcsc_spy_two_threads_interleaved() -> None:
    """Two threads' calls interleaved line by line (-t) are kept apart by their thread tags."""
    lines = (TRACES / "visa_qvsdc.pcsc-spy.txt").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line == "SCardTransmit")
    end = next(i for i, line in enumerate(lines) if i > start and line.startswith(" =>")) + 1
    call = lines[start:end]
    other = ["SCardGetStatusChange", " i hContext: 0x5C6B0F21", " i dwTimeout: 0x00000000 (0)",
             " => Command successful. (SCARD_S_SUCCESS [0x00000000])  [0.000010]"]
    mixed: list[str] = []
    for i in range(max(len(call), len(other))):
        if i < len(call):
            mixed.append(" (t0) " + call[i])
        if i < len(other):
            mixed.append("     (t1) " + other[i])
    got = parse_pcsc_spy(mixed)
    assert [(r.dir, r.hex) for r in got] == [(r.dir, r.hex) for r in parse_pcsc_spy(call)]
