"""BER-TLV decoding and encoding (EMV 4.4 Book 3 Annex B)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyemv.tlv
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from apdu.ber import encode_length
from apdu.errors import DecodeError, EncodeError
from apdu.tlv import (
    MAX_DEPTH,
    TLV,
    decode,
    encode,
    find,
    tlv,
    to_dict,
    walk,
)

RESPONSES = json.loads(
    (Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "card_responses.json").read_text()
)["responses"]
BY_NAME = {entry["name"]: bytes.fromhex(entry["response"])[:-2] for entry in RESPONSES}
PYEMV = "knovichikhin/pyemv tests/test_tlv.py"


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def flat(nodes: list[TLV]) -> list[tuple[int, str]]:
    return [(node.tag, node.value.hex().upper()) for node in walk(nodes)]


# --- vectors ------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "tag", "value", "source"), [
    ("9C00",           0x9C,     "",   PYEMV),
    ("9C01FF",         0x9C,     "FF", PYEMV),
    ("9F0200",         0x9F02,   "",   PYEMV),
    ("9F0201FF",       0x9F02,   "FF", PYEMV),
    ("9F820100",       0x9F8201, "",   PYEMV),
    ("9F820101FF",     0x9F8201, "FF", PYEMV),
    ("9C81FF" + "EE" * 255, 0x9C, "EE" * 255, "EMV 4.4 Book 3 Annex B2 (81 form)"),
    ("9C820100" + "EE" * 256, 0x9C, "EE" * 256, "EMV 4.4 Book 3 Annex B2 (82 form)"),
])
def test_decode_primitive_vectors(data: str, tag: int, value: str, source: str) -> None:
    """Single primitive objects decode to their tag and value in both modes."""
    for strict in (False, True):
        (node,) = decode(h(data), strict=strict)
        assert (node.tag, node.value.hex().upper(), node.children) == (tag, value, ())


@pytest.mark.parametrize(("data", "value", "source"), [
    ("9C8101FF",       "FF", PYEMV),
    ("9C820001FF",     "FF", PYEMV),
    ("9C83000001FF",   "FF", PYEMV),
    ("9C8400000001FF", "FF", PYEMV),
    ("9C8100",         "",   PYEMV),
    ("9C820000",       "",   PYEMV),
])
def test_long_form_lengths_lenient_only(data: str, value: str, source: str) -> None:
    """Non-minimal lengths are read leniently and refused in strict mode (ISO/IEC 8825-1 §10.1)."""
    (node,) = decode(h(data))
    assert node.value.hex().upper() == value
    with pytest.raises(DecodeError, match="shortest form") as info:
        decode(h(data), strict=True)
    assert info.value.tag == 0x9C
    assert info.value.offset == 1


@pytest.mark.parametrize(("data", "tag", "offset", "partial", "message", "source"), [
    ("9F",                 0x9F,   0, [],       "tag truncated",        PYEMV),
    ("9FF0",               0x9FF0, 0, [],       "tag truncated",        PYEMV),
    ("9C",                 0x9C,   1, [],       "length missing",       PYEMV),
    ("9C81",               0x9C,   1, [],       "length truncated",     PYEMV),
    ("9C8200",             0x9C,   1, [],       "length truncated",     PYEMV),
    ("9C01",               0x9C,   2, [],       "runs past the end",    PYEMV),
    ("9C0200",             0x9C,   2, [],       "runs past the end",    PYEMV),
    ("E001",               0xE0,   2, [],       "runs past the end",    PYEMV),
    ("E0019F0001FF",       0x9F,   2, [],       "tag truncated",        PYEMV),
    ("E0019C01FF",         0x9C,   3, [],       "length missing",       PYEMV),
    ("E0039C8201FF",       0x9C,   3, [],       "length truncated",     PYEMV),
    ("E0039C8101C001FF",   0x9C,   5, [],       "runs past the end",    PYEMV),
    ("9C01FFAA",           0xAA,   4, ["9C"],   "length missing",       PYEMV),
    ("E0039C01FFAA",       0xAA,   6, ["E0"],   "length missing",       PYEMV),
    ("9C80",               0x9C,   1, [],       "indefinite length",    "pyemv: empty value"),
    ("9C850000000001FF",   0x9C,   1, [],       "length field of 6",    "EMV 4.4 Book 3 Annex B2"),
    ("9F828282820100",     0x9F828282, 0, [], "longer than 4 bytes",  "EMV 4.4 Book 3 Annex B1"),
    ("70079F36020042E003", 0xE0,   9, ["9F36"], "runs past the end",    "a truncated record template"),
])
def test_decode_errors(
    data: str, tag: int, offset: int, partial: list[str], message: str, source: str
) -> None:
    """Malformed input raises DecodeError with the tag, the offset and what was decoded before."""
    with pytest.raises(DecodeError, match=message) as info:
        decode(h(data))
    assert info.value.tag == tag
    assert info.value.offset == offset
    assert [node.tag_hex for node in info.value.partial] == partial
    with pytest.raises(DecodeError):
        decode(h(data), strict=True)


def test_partial_holds_outer_and_inner_siblings() -> None:
    """A failure inside a template reports the complete siblings at every level, outermost first."""
    data = h("5A01AA" + "7008" + "9F2701" + "80" + "9F3605" + "00")
    with pytest.raises(DecodeError) as info:
        decode(data)
    assert [n.tag_hex for n in info.value.partial] == ["5A", "9F27"]
    assert info.value.tag == 0x9F36
    assert "tag 9F36" in str(info.value)


@pytest.mark.parametrize("entry", RESPONSES, ids=[entry["name"] for entry in RESPONSES])
def test_real_card_responses_round_trip(entry: dict[str, Any]) -> None:
    """Real card responses decode strictly and encode back to the same bytes (source in the JSON)."""
    data = bytes.fromhex(entry["response"])[:-2]
    nodes = decode(data, strict=True)
    assert encode(nodes) == data
    assert nodes == decode(data)
    for node in walk(nodes):
        assert data[node.offset : node.offset + node.length] == node.value


@pytest.mark.parametrize(("name", "tag", "value"), [
    # MichaelsPlayground/NfcEmvExampleG8 logfile_visacard.md, decoded by hand there too
    ("visa_select_ppse",   0x4F,   "A0000000031010"),
    ("visa_select_ppse",   0x9F0A, "0001050100000000"),
    ("visa_select_aid",    0x9F38, "9F66049F02069F03069F1A0295055F2A029A039C019F3704"),
    ("visa_select_aid",    0xDF20, "80"),
    ("visa_gpo_qvsdc",     0x82,   "2000"),
    ("visa_gpo_qvsdc",     0x9F10, "06040A03A02000"),
    ("visa_gpo_qvsdc",     0x9F26, "9F98ECAEA782D073"),
    ("visa_gpo_qvsdc",     0x9F27, "80"),
    ("visa_gpo_qvsdc",     0x9F36, "033C"),
    # MichaelsPlayground/TalkToYourCreditCardPart7 logfile.md (Mastercard)
    ("mastercard_gpo",     0x94,   "080101001001010120010200"),
    ("mastercard_record_cdol1", 0x8C,
     "9F02069F03069F1A0295055F2A029A039C019F37049F35019F45029F4C089F34039F21039F7C14"),
    ("mastercard_record_cdol1", 0x8D, "910A8A0295059F37049F4C08"),
    ("mastercard_record_cdol1", 0x9F0D, "B450840000"),
    # russss/python-emv emv/test/test_cap.py: format 1 GENERATE AC response
    ("barclays_generate_ac", 0x80, "80095F0F9D3798E93F129A060A0A03A49000"),
])
def test_real_card_response_values(name: str, tag: int, value: str) -> None:
    """Known data objects are found in real responses with the values their sources show."""
    node = find(decode(BY_NAME[name]), tag)
    assert node is not None
    assert node.value.hex().upper() == value


def test_constructed_tree_shape() -> None:
    """The PPSE FCI nests 6F > A5 > BF0C > 61 > 4F (EMV 4.4 Book 1 §12.3.1)."""
    (fci,) = decode(BY_NAME["visa_select_ppse"])
    assert fci.tag == 0x6F and fci.constructed
    a5 = fci.find(0xA5)
    assert a5 is not None
    assert [child.tag for child in a5.children] == [0xBF0C]
    assert fci.find_all(0x4F)[0].tag_bytes == b"\x4f"
    assert fci.find(0x9999) is None


# --- lenient and strict -------------------------------------------------------------------

@pytest.mark.parametrize(("data", "expected", "strict_message", "source"), [
    ("009C0100000000", [(0x9C, "00")], None,              "EMV 4.4 Book 3 Annex B: 00 padding"),
    ("7005009C010000", [(0x70, "009C010000"), (0x9C, "00")], None, "EMV 4.4 Book 3 Annex B: 00 padding"),
    ("9C0100FFFFFF",   [(0x9C, "00")], "FF padding",      "ISO/IEC 7816-4 §5.2.2: FF padding"),
    ("9C0100FF00FF",   [(0x9C, "00")], "FF padding",      "ISO/IEC 7816-4 §5.2.2: FF padding"),
    ("7006" "9C0100" "FFFFFF", [(0x70, "9C0100FFFFFF"), (0x9C, "00")], "FF padding", "record filled with FF"),
    ("9F81810101AA",   [(0x9F818101, "AA")], "longer than 3", "ISO/IEC 8825-1 §8.1.2.4"),
    ("E0809C01000000", [(0xE0, "9C0100"), (0x9C, "00")], "indefinite", "ISO/IEC 8825-1 §8.1.3.6"),
    ("E080E0809C01000000000000", [(0xE0, "E0809C01000000"), (0xE0, "9C0100"), (0x9C, "00")],
     "indefinite", "ISO/IEC 8825-1 §8.1.3.6, nested"),
])
def test_lenient_accepts_strict_refuses(
    data: str, expected: list[tuple[int, str]], strict_message: str | None, source: str
) -> None:
    """Lenient mode reads what real cards send; strict mode refuses what EMV does not allow."""
    assert flat(decode(h(data))) == expected
    if strict_message is None:
        assert flat(decode(h(data), strict=True)) == expected
    else:
        with pytest.raises(DecodeError, match=strict_message):
            decode(h(data), strict=True)


def test_ff_tags_are_not_padding() -> None:
    """FF81xx tags (EMV Contactless Book C-2, e.g. FF8105 Data Record) decode as tags, not padding."""
    nodes = decode(h("FF8105069F2701809C00"))
    assert flat(nodes) == [(0xFF8105, "9F2701809C00"), (0x9F27, "80"), (0x9C, "")]
    assert nodes == decode(h("FF8105069F2701809C00"), strict=True)


@pytest.mark.parametrize(("data", "message"), [
    ("5A80",             "on a primitive tag"),
    ("E0809C0100",       "without end-of-contents"),
    ("E080",             "without end-of-contents"),
])
def test_indefinite_errors(data: str, message: str) -> None:
    """Indefinite length is only for constructed tags and must be closed by 00 00."""
    with pytest.raises(DecodeError, match=message):
        decode(h(data))


def test_nesting_depth_is_bounded() -> None:
    """Nesting up to MAX_DEPTH decodes; one level deeper is a DecodeError, never RecursionError."""
    def nest(levels: int) -> bytes:
        data = h("9C0100")
        for _ in range(levels):
            data = b"\xe0" + encode_length(len(data)) + data
        return data

    assert len(list(walk(decode(nest(MAX_DEPTH))))) == MAX_DEPTH + 1
    with pytest.raises(DecodeError, match="nesting deeper"):
        decode(nest(MAX_DEPTH + 1))
    with pytest.raises(DecodeError, match="nesting deeper"):
        decode(b"\xe0\x80" * 5000)


@pytest.mark.parametrize("data", [bytearray(h("9C0101")), memoryview(h("9C0101"))])
def test_decode_accepts_bytes_like(data: bytes) -> None:
    """bytearray and memoryview decode like bytes, and values come back as bytes."""
    (node,) = decode(data)
    assert type(node.value) is bytes


@pytest.mark.parametrize("data", ["9C0101", 5, None, [0x9C, 0x01, 0x01]])
def test_decode_refuses_non_bytes(data: object) -> None:
    """Anything but bytes-like input is a DecodeError (never a TypeError)."""
    with pytest.raises(DecodeError, match="must be bytes"):
        decode(data)  # type: ignore[arg-type]


def test_empty_and_padding_only() -> None:
    """Empty input and padding alone decode to no objects."""
    assert decode(b"") == []
    assert decode(b"\x00\x00") == []
    assert decode(b"\x00\xff\xff") == []


# --- encoding -----------------------------------------------------------------------------

@pytest.mark.parametrize(("nodes", "encoded", "source"), [
    ([],                                                        "",                   PYEMV),
    ([TLV(0x9C, b"")],                                          "9C00",               PYEMV),
    ([TLV(0x9F00, b"\xff")],                                    "9F0001FF",           PYEMV),
    ([TLV(0x9C, b"\xff" * 128)],                                "9C8180" + "FF" * 128, PYEMV),
    ([tlv(0xE0, [])],                                           "E000",               PYEMV),
    ([tlv(0xE0, [TLV(0x9F00, b"\xff")]), TLV(0x9C, b"\xff")],   "E0049F0001FF9C01FF", PYEMV),
])
def test_encode_vectors(nodes: list[TLV], encoded: str, source: str) -> None:
    """Objects encode to the bytes of the pyemv test suite."""
    assert encode(nodes).hex().upper() == encoded


def test_tlv_helper() -> None:
    """tlv() builds constructed objects from children or from bytes, and refuses mismatches."""
    built = tlv(0x77, [tlv(0x82, h("1980")), tlv(0x94, h("08010100"))])
    assert built.to_bytes() == h("770A82021980940408010100")
    assert tlv(0x77, built.value) == built
    assert bytes(built) == built.to_bytes()
    with pytest.raises(EncodeError, match="cannot have children"):
        tlv(0x9C, [TLV(0x9C, b"")])
    with pytest.raises(EncodeError, match="not BER-TLV"):
        tlv(0x70, h("9C05"))
    with pytest.raises(EncodeError, match="must be TLV"):
        tlv(0x70, [b"\x9c\x00"])  # type: ignore[list-item]


def test_tlv_constructor_checks() -> None:
    """TLV() checks the tag, turns bytes-likes into bytes and fills the value from children."""
    assert TLV(0x70, children=(TLV(0x9C, b"\x00"),)).value == h("9C0100")
    assert TLV(0x9C, bytearray(b"\x01")).value == b"\x01"  # type: ignore[arg-type]
    with pytest.raises(EncodeError):
        TLV(0x9F, b"")
    with pytest.raises(EncodeError, match="cannot have children"):
        TLV(0x9C, b"", (TLV(0x9C, b""),))
    with pytest.raises(EncodeError, match="must be bytes"):
        TLV(0x9C, "00")  # type: ignore[arg-type]


def test_offset_is_not_compared() -> None:
    """Decoded objects equal hand-built ones: offset is informative only."""
    assert decode(h("9C0100"))[0] == TLV(0x9C, b"\x00")
    assert decode(h("9C0100"))[0].offset == 2


def test_repr_masks_sensitive_values() -> None:
    """The repr of a PAN or Track 2 object does not show its value."""
    pan = TLV(0x5A, h("5413330089010012"))
    assert "5413" not in repr(pan)
    assert "8 bytes" in repr(pan)
    assert repr(TLV(0x9F27, b"\x80")) == "TLV(0x9F27, '80')"
    assert "5413" not in repr(tlv(0x70, [pan]))


def test_to_dict_and_walk() -> None:
    """to_dict keeps primitive values, first occurrence first; walk is depth first."""
    nodes = decode(h("7009" "9F2701" "80" "E003" "9C0101" "9F270140"))
    assert [n.tag for n in walk(nodes)] == [0x70, 0x9F27, 0xE0, 0x9C, 0x9F27]
    assert to_dict(nodes) == {0x9F27: b"\x80", 0x9C: b"\x01"}
    assert find(nodes, 0x9C) == TLV(0x9C, b"\x01")


# --- properties ---------------------------------------------------------------------------

_FIRST_SHORT = [b for b in range(1, 0xFF) if b & 0x1F != 0x1F]
_FIRST_LONG = [b for b in range(0x1F, 0x100, 0x20) if b != 0xFF]


@st.composite
def emv_tags(draw: st.DrawFn, constructed: bool | None = None) -> int:
    """Tags of 1 to 3 bytes, shaped by EMV 4.4 Book 3 Annex B1."""
    size = draw(st.sampled_from([1, 2, 2, 3]))
    pool = _FIRST_SHORT if size == 1 else _FIRST_LONG
    if constructed is not None:
        pool = [b for b in pool if bool(b & 0x20) == constructed]
    tag = draw(st.sampled_from(pool))
    if size == 3:
        tag = (tag << 8) | draw(st.integers(0x81, 0xFF))
    if size >= 2:
        tag = (tag << 8) | draw(st.integers(0x01, 0x7F))
    return tag


#: Values: short random bytes (content, 00 and FF inside values included), or a value whose
#: length sits on a boundary of the length field (Annex B2: 7F is the last one-byte length, 80
#: and FF the first and last ``81 XX``, 0100 the first ``82 XXXX``). The content of a long
#: value changes nothing a decoder does, so it is not drawn byte by byte; the exact encodings of
#: those lengths are pinned by the vectors above.
_LONG = bytes(range(256)) * 2
values = st.one_of(
    st.binary(max_size=24),
    st.sampled_from([0x7F, 0x80, 0xFF, 0x100, 0x12C]).map(lambda n: _LONG[:n]),
)
primitives = st.builds(TLV, emv_tags(constructed=False), values)


def _constructed(children: st.SearchStrategy[list[TLV]]) -> st.SearchStrategy[TLV]:
    return st.builds(lambda tag, kids: tlv(tag, kids), emv_tags(constructed=True), children)


def _tree_lists(unique: bool) -> st.SearchStrategy[list[TLV]]:
    """Lists of up to 5 trees of up to 12 leaves, 4 children a level (siblings' tags distinct if asked)."""
    by_tag = (lambda node: node.tag) if unique else None
    return st.lists(
        st.recursive(primitives, lambda inner: _constructed(st.lists(inner, max_size=4, unique_by=by_tag)),
                     max_leaves=12),
        max_size=5, unique_by=by_tag,
    )


trees = _tree_lists(unique=False)


#: The three properties below run the examples of the active Hypothesis profile (tests/conftest.py:
#: ``ci``, 100 derandomized examples; ``HYPOTHESIS_PROFILE=explore`` for 2000 random ones). The
#: shapes that matter are drawn on purpose, not hoped for: tags of 1, 2 and 3 bytes, values on
#: every length-form boundary, empty and nested templates; the @example cases pin the extremes.
_EDGE_TREES = [
    [],
    [tlv(0x70, [])],
    [tlv(0xBF0C, [tlv(0x9F4D, _LONG[:0x80]), tlv(0xE1, [tlv(0xDF8101, b"")])])],
    [TLV(0x9C, _LONG[:0x7F]), TLV(0x5F2A, _LONG[:0x100]), TLV(0x9F8201, b"")],
]


@example(_EDGE_TREES[0])
@example(_EDGE_TREES[1])
@example(_EDGE_TREES[2])
@example(_EDGE_TREES[3])
@given(trees)
def test_decode_encode_round_trip(nodes: list[TLV]) -> None:
    """decode(encode(t)) == t, and encode(decode(x)) == x for canonical x, in both modes."""
    data = encode(nodes)
    assert decode(data) == nodes
    assert decode(data, strict=True) == nodes
    assert encode(decode(data)) == data


@example(_EDGE_TREES[2], [3, 1])
@example(_EDGE_TREES[3], [0, 2, 1])
@given(trees, st.lists(st.integers(0, 3), max_size=6))
def test_padding_is_ignored(nodes: list[TLV], pads: list[int]) -> None:
    """00 bytes between top-level objects change nothing but the bytes (EMV 4.4 Book 3 Annex B)."""
    pieces = [node.to_bytes() for node in nodes]
    data = b"".join(b"\x00" * (pads[i] if i < len(pads) else 0) + piece for i, piece in enumerate(pieces))
    assert decode(data, strict=True) == nodes


def _as_pyemv(nodes: list[TLV]) -> dict[str, Any]:
    return {n.tag_hex: _as_pyemv(list(n.children)) if n.constructed else n.value for n in nodes}


@example(_EDGE_TREES[2])
@example(_EDGE_TREES[3])
@given(_tree_lists(unique=True))   # pyemv reads a template as a dict: siblings need distinct tags
def test_agrees_with_pyemv(nodes: list[TLV]) -> None:
    """pyemv.tlv, an independent decoder, reads the same tree from the same EMV-shaped bytes."""
    data = encode(nodes)
    assert pyemv.tlv.decode(data) == _as_pyemv(decode(data))
    assert pyemv.tlv.encode(_as_pyemv(nodes)) == data


def test_package_names_stay_importable_without_loading_commands() -> None:
    """``import apdu.tlv`` leaves the command classes unloaded; ``apdu.X`` still finds them."""
    import subprocess
    import sys

    probe = (
        "import sys, apdu.tlv\n"
        "assert 'apdu.command' not in sys.modules and 'apdu.response' not in sys.modules\n"
        "import apdu\n"
        "from apdu import SW, CommandAPDU, ResponseAPDU\n"
        "assert apdu.command.CommandAPDU is CommandAPDU and apdu.sw.SW is SW\n"
        "assert apdu.response.ResponseAPDU is ResponseAPDU\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)
