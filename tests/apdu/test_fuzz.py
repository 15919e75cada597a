"""Fuzzing every decoder of apdu: hostile bytes raise only the errors of apdu.errors."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apdu.command import CommandAPDU
from apdu.dol import build_dol_data, dol_length, parse_dol, split_dol_data
from apdu.errors import APDUError, DecodeError, MalformedAPDU
from apdu.response import ResponseAPDU
from apdu.tlv import decode, decode_flat, encode, to_dict, walk

REAL = [
    bytes.fromhex(entry["response"])[:-2]
    for entry in json.loads(
        (Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "card_responses.json").read_text()
    )["responses"]
]

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Bytes that exercise the interesting paths: padding, long tags, long lengths, constructed tags.
tlv_bytes = st.lists(
    st.one_of(st.integers(0, 255), st.sampled_from([0x00, 0xFF, 0x1F, 0x9F, 0xBF, 0x5F, 0x70, 0x77, 0xE0,
                                                    0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0xDF, 0x01, 0x7F])),
    max_size=200,
).map(bytes)


@st.composite
def mutated_real(draw: st.DrawFn) -> bytes:
    """A real card response with a few bytes changed, inserted, deleted or cut off."""
    data = bytearray(draw(st.sampled_from(REAL)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["set", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data.insert(at, draw(st.integers(0, 255)))
        elif op == "delete" and data:
            del data[at]
        elif op == "truncate":
            del data[at:]
    return bytes(data)


def _check_decode(data: bytes) -> None:
    results = {}
    for strict in (False, True):
        try:
            results[strict] = decode(data, strict=strict)
        except DecodeError as exc:
            assert 0 <= exc.offset <= len(data)
            assert all(node.value is not None for node in exc.partial)
    if True in results:
        assert results[False] == results[True]
        assert encode(results[True]) == data.strip(b"\x00") or b"\x00" in data
    for node in walk(results.get(False, [])):
        assert data[node.offset : node.offset + node.length] == node.value


@FUZZ
@given(st.one_of(st.binary(max_size=300), tlv_bytes))
def test_decode_random_bytes(data: bytes) -> None:
    """Random bytes decode, or raise DecodeError with a sensible offset, in both modes."""
    _check_decode(data)


@FUZZ
@given(mutated_real())
def test_decode_mutated_real_responses(data: bytes) -> None:
    """Damaged real responses decode, or raise DecodeError, never anything else."""
    _check_decode(data)


@pytest.mark.parametrize(
    "data",
    [
        b"\xe0\x80" * 10000,
        b"\x7f" * 10000,
        b"\x9f" + b"\xff" * 10000,
        b"\xe0\x84\xff\xff\xff\xff",
        b"\x70\x84\x00\x00\x00\x01\x00",
        b"\xff" * 1000,
        b"\x00" * 1000 + b"\x9c",
        (b"\x70\x81\xff") * 100,
    ],
    ids=["indefinite-bomb", "7F-run", "long-tag", "4GB-length", "84-length", "FF-run", "padding-then-tag",
         "nested-81"],
)
def test_decode_hostile(data: bytes) -> None:
    """Hand-made hostile inputs raise DecodeError or decode, quickly and without recursion."""
    _check_decode(data)
    _flat_agrees(data)


@FUZZ
@given(st.one_of(st.binary(max_size=100), tlv_bytes))
def test_parse_dol_random(data: bytes) -> None:
    """Random DOLs parse or raise DecodeError; a parsed DOL re-encodes to the same bytes."""
    try:
        entries = parse_dol(data)
    except DecodeError:
        return
    assert b"".join(entry.to_bytes() for entry in entries) == data or b"\x81" in data


@FUZZ
@given(st.binary(max_size=60), st.binary(max_size=200),
       st.dictionaries(st.integers(0, 0xFFFFFF), st.binary(max_size=40), max_size=8))
def test_dol_data_random(dol: bytes, data: bytes, values: dict[int, bytes]) -> None:
    """split_dol_data and build_dol_data raise only DecodeError on random DOLs and data."""
    with contextlib.suppress(DecodeError):
        split_dol_data(dol, data)
    try:
        built = build_dol_data(dol, values)
    except DecodeError:
        return
    assert len(built) == dol_length(dol)
    assert split_dol_data(dol, built).keys() <= {entry.tag for entry in parse_dol(dol)}


@FUZZ
@given(st.binary(max_size=300))
def test_command_from_random_bytes(raw: bytes) -> None:
    """CommandAPDU.from_bytes parses or raises MalformedAPDU; what parses serialises back."""
    try:
        command = CommandAPDU.from_bytes(raw)
    except MalformedAPDU:
        return
    assert CommandAPDU.from_bytes(command.to_bytes()) == command
    assert command.to_bytes() == raw or raw[4:5] == b"\x00"


@FUZZ
@given(st.binary(max_size=300))
def test_response_from_random_bytes(raw: bytes) -> None:
    """ResponseAPDU.from_bytes parses or raises MalformedAPDU."""
    try:
        response = ResponseAPDU.from_bytes(raw)
    except APDUError:
        assert len(raw) < 2
        return
    assert response.to_bytes() == raw
    assert isinstance(response.meaning, str)


def _flat_agrees(data: bytes) -> None:
    """decode_flat is to_dict(decode(...)): the same values, or the same error at the same place."""
    for strict in (False, True):
        try:
            expected = to_dict(decode(data, strict=strict))
        except DecodeError as exc:
            with pytest.raises(DecodeError) as caught:
                decode_flat(data, strict=strict)
            error = caught.value
            assert (str(error), error.offset, error.tag) == (str(exc), exc.offset, exc.tag)
            assert error.partial == exc.partial
            continue
        got = decode_flat(data, strict=strict)
        assert got == expected
        assert list(got) == list(expected)


@FUZZ
@given(st.one_of(st.binary(max_size=300), tlv_bytes))
def test_decode_flat_random_bytes(data: bytes) -> None:
    """On random bytes, the flat decoder agrees with the tree decoder in both modes."""
    _flat_agrees(data)


@FUZZ
@given(mutated_real())
def test_decode_flat_mutated_real_responses(data: bytes) -> None:
    """On damaged real responses, the flat decoder agrees with the tree decoder in both modes."""
    _flat_agrees(data)


@pytest.mark.parametrize("data", REAL, ids=range(len(REAL)))
def test_decode_flat_real_responses(data: bytes) -> None:
    """Every real response: the same values as the tree decoder."""
    _flat_agrees(data)
    assert decode_flat(data)


@FUZZ
@given(st.one_of(st.binary(max_size=300), tlv_bytes, mutated_real()))
def test_constructed_is_bit6_of_the_first_tag_byte(data: bytes) -> None:
    """``TLV.constructed`` (computed from the int) is b6 of the first byte on the wire (Annex B1)."""
    with contextlib.suppress(DecodeError):
        for node in walk(decode(data)):
            assert node.constructed == bool(node.tag_bytes[0] & 0x20)
