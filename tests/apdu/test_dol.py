"""Data Object Lists: parsing, building and splitting DOL data (EMV 4.4 Book 3 §5.4)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apdu import tags
from apdu.dol import DOLEntry, build_dol_data, dol_length, fit_value, parse_dol, split_dol_data
from apdu.errors import DecodeError, EncodeError


def h(text: str) -> bytes:
    return bytes.fromhex(text)


VISA_PDOL = "9F66049F02069F03069F1A0295055F2A029A039C019F3704"  # MichaelsPlayground/NfcEmvExampleG8
MC_CDOL1 = "9F02069F03069F1A0295055F2A029A039C019F37049F35019F45029F4C089F34039F21039F7C14"  # …CardPart7
BARCLAYS_CDOL1 = "9F02069F03069F1A0295055F2A029A039C019F3704"  # russss/python-emv emv/test/fixtures.py


@pytest.mark.parametrize(("dol", "entries", "total", "source"), [
    (VISA_PDOL,      [(0x9F66, 4), (0x9F02, 6), (0x9F03, 6), (0x9F1A, 2), (0x95, 5), (0x5F2A, 2),
                      (0x9A, 3), (0x9C, 1), (0x9F37, 4)], 33,
     "MichaelsPlayground/NfcEmvExampleG8 logfile_visacard.md (Lloyds Visa PDOL)"),
    (MC_CDOL1,       [(0x9F02, 6), (0x9F03, 6), (0x9F1A, 2), (0x95, 5), (0x5F2A, 2), (0x9A, 3),
                      (0x9C, 1), (0x9F37, 4), (0x9F35, 1), (0x9F45, 2), (0x9F4C, 8), (0x9F34, 3),
                      (0x9F21, 3), (0x9F7C, 20)], 66,
     "MichaelsPlayground/TalkToYourCreditCardPart7 logfile.md (Mastercard CDOL1)"),
    ("910A8A0295059F37049F4C08", [(0x91, 10), (0x8A, 2), (0x95, 5), (0x9F37, 4), (0x9F4C, 8)], 29,
     "MichaelsPlayground/TalkToYourCreditCardPart7 logfile.md (Mastercard CDOL2)"),
    ("9F6A04",       [(0x9F6A, 4)], 4, "EMV Contactless Book C-2 (UDOL default)"),
    ("DF810C01",     [(0xDF810C, 1)], 1, "EMV Contactless Book C-2 (3-byte tag)"),
    ("9F7C8180",     [(0x9F7C, 128)], 128, "EMV 4.4 Book 3 Annex B2 (81 length form)"),
    ("",             [], 0, "an empty DOL"),
])
def test_parse_dol(dol: str, entries: list[tuple[int, int]], total: int, source: str) -> None:
    """DOLs parse to their (tag, length) entries and the total length asked."""
    parsed = parse_dol(h(dol))
    assert [(e.tag, e.length) for e in parsed] == entries
    assert dol_length(parsed) == dol_length(h(dol)) == total
    assert b"".join(e.to_bytes() for e in parsed) == h(dol)


def test_visa_gpo_command_data_splits_and_rebuilds() -> None:
    """The PDOL data of a real GPO command splits by the card's PDOL and rebuilds to the same bytes.

    Source: MichaelsPlayground/NfcEmvExampleG8 logfile_visacard.md, step 05 (``83 21`` + 33 bytes).
    """
    data = h("A00000000000000000010000000000000840000000000008400702030080173370")
    values = split_dol_data(h(VISA_PDOL), data)
    assert values == {
        0x9F66: h("A0000000"), 0x9F02: h("000000000001"), 0x9F03: h("000000000000"),
        0x9F1A: h("0840"), 0x95: h("0000000000"), 0x5F2A: h("0840"), 0x9A: h("070203"),
        0x9C: h("00"), 0x9F37: h("80173370"),
    }
    assert build_dol_data(h(VISA_PDOL), values) == data


@pytest.mark.parametrize(("values", "expected"), [
    ({0x95: h("8000000000"), 0x9A: h("010101"), 0x9C: h("00")},
     "000000000000" "000000000000" "0000" "8000000000" "0000" "010101" "00" "00000000"),
    ({0x9F02: h("123456"), 0x95: h("8000000000"), 0x9A: h("010101"), 0x9C: h("00"), 0x9F37: h("78901234")},
     "000000123456" "000000000000" "0000" "8000000000" "0000" "010101" "00" "78901234"),
])
def test_build_cdol1_as_python_emv(values: dict[int, bytes], expected: str) -> None:
    """GENERATE AC data for a Barclays CDOL1 matches russss/python-emv emv/test/test_cap.py."""
    assert build_dol_data(h(BARCLAYS_CDOL1), values).hex().upper() == expected


@pytest.mark.parametrize(("value", "length", "fmt", "expected"), [
    ("00000000001000", 6, "n",   "000000001000"),    # n longer: keep rightmost
    ("1000",           6, "n",   "000000001000"),    # n shorter: leading 00
    ("5413330089",     4, "cn",  "54133300"),        # cn longer: keep leftmost
    ("541333",         5, "cn",  "541333FFFF"),      # cn shorter: trailing FF
    ("0102030405",     4, "b",   "01020304"),        # b longer: keep leftmost
    ("0102",           4, "b",   "01020000"),        # b shorter: trailing 00
    ("56495341",       6, "an",  "564953410000"),    # an shorter: trailing 00
    ("5649534120",     2, "ans", "5649"),            # ans longer: keep leftmost
    ("0978",           2, "n",   "0978"),            # exact: unchanged
    ("",               3, "n",   "000000"),
])
def test_fit_value_rules(value: str, length: int, fmt: str, expected: str) -> None:
    """Values are cut and padded by format as EMV 4.4 Book 3 §5.4 says."""
    assert fit_value(h(value), length, fmt).hex().upper() == expected


def test_build_uses_the_data_dictionary_by_default() -> None:
    """Without format_of, formats come from apdu.tags: 9F02 is n, 5A is cn, 9F37 is b."""
    dol = h("9F0206" "5A0A" "9F3702")
    values = {0x9F02: h("1000"), 0x5A: h("5413330089010012"), 0x9F37: h("01020304")}
    data = build_dol_data(dol, values)
    assert data.hex().upper() == "000000001000" "5413330089010012FFFF" "0102"
    assert data == build_dol_data(dol, values, format_of=tags.format_of)


def test_absent_and_constructed_tags_are_zeros() -> None:
    """A missing tag and a constructed tag are sent as zeros of the asked length (§5.4)."""
    dol = h("9F4C08" "7003" "9C01")
    assert build_dol_data(dol, {0x70: h("9C0101"), 0x9C: h("09")}) == bytes(11) + h("09")


def test_build_accepts_entries_and_refuses_non_bytes() -> None:
    """build_dol_data takes parsed entries too; a value that is not bytes is an EncodeError."""
    entries = [DOLEntry(0x9C, 1), DOLEntry(0x9F37, 4)]
    assert build_dol_data(entries, {0x9C: b"\x01"}, format_of=lambda tag: "b") == h("0100000000")
    with pytest.raises(EncodeError, match="must be bytes"):
        build_dol_data(entries, {0x9C: "01"})  # type: ignore[dict-item]


def test_split_first_wins_and_checks_length() -> None:
    """split_dol_data keeps the first of a repeated tag and refuses data of the wrong length."""
    assert split_dol_data(h("9C01" "9C01"), h("0102")) == {0x9C: h("01")}
    with pytest.raises(DecodeError, match="asks for 2 bytes, got 3"):
        split_dol_data(h("9C01" "9C01"), h("010203"))
    with pytest.raises(DecodeError, match="must be bytes"):
        split_dol_data(h("9C01"), "01")  # type: ignore[arg-type]


@pytest.mark.parametrize(("dol", "message", "offset"), [
    ("9F",         "ends inside a tag",          0),
    ("9F02",       "before the length",          2),
    ("9C",         "before the length",          1),
    ("00",         "tag 00",                     0),
    ("9F0285",     "not supported",              2),
    ("9F0280",     "not supported",              2),
    ("9F0281",     "ends inside a length",       2),
    ("9F81818101", "longer than 3 bytes",        0),
    ("9C019F",     "ends inside a tag",          2),
])
def test_parse_dol_errors(dol: str, message: str, offset: int) -> None:
    """Malformed DOLs raise DecodeError with the offset and the entries parsed before."""
    with pytest.raises(DecodeError, match=message) as info:
        parse_dol(h(dol))
    assert info.value.offset == offset
    if dol.startswith("9C01"):
        assert info.value.partial == (DOLEntry(0x9C, 1),)


def test_parse_dol_refuses_non_bytes() -> None:
    """A DOL that is not bytes is a DecodeError."""
    with pytest.raises(DecodeError):
        parse_dol("9C01")  # type: ignore[arg-type]


def test_entry_constructed_flag() -> None:
    """DOLEntry.constructed reads b6 of the first tag byte."""
    assert DOLEntry(0x70, 2).constructed
    assert DOLEntry(0xBF0C, 2).constructed
    assert not DOLEntry(0x9F02, 6).constructed


entries = st.lists(
    st.builds(DOLEntry, st.sampled_from([0x9C, 0x95, 0x9F02, 0x9F37, 0x5A, 0x5F2A, 0x50, 0x70, 0xDF8101]),
              st.integers(0, 40)),
    max_size=10,
)


@settings(max_examples=200, deadline=None)
@given(entries, st.dictionaries(st.sampled_from([0x9C, 0x95, 0x9F02, 0x9F37, 0x5A, 0x50, 0x70]),
                                st.binary(max_size=50)))
def test_build_then_split(dol: list[DOLEntry], values: dict[int, bytes]) -> None:
    """Built data has the DOL's length and splits back into each value fitted to its entry."""
    data = build_dol_data(dol, values)
    assert len(data) == dol_length(dol)
    split = split_dol_data(dol, data)
    first: dict[int, DOLEntry] = {}
    for entry in dol:
        first.setdefault(entry.tag, entry)
    for tag, entry in first.items():
        value = values.get(tag)
        if value is None or entry.constructed:
            assert split[tag] == bytes(entry.length)
        else:
            assert split[tag] == fit_value(value, entry.length, tags.format_of(tag))
    assert parse_dol(b"".join(e.to_bytes() for e in dol)) == tuple(dol)
