"""Response APDUs: data and status word (ISO/IEC 7816-4 §5.1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.errors import MalformedAPDU, StatusWordError
from apdu.response import ResponseAPDU
from apdu.tlv import decode

RESPONSES = json.loads(
    (Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "card_responses.json").read_text()
)["responses"]


@pytest.mark.parametrize(("raw", "data", "sw", "ok", "source"), [
    ("6F0A8408A000000003101010" "9000", "6F0A8408A000000003101010", 0x9000, True,  "ISO/IEC 7816-4 §5.1"),
    ("6A82",                            "",                         0x6A82, False, "EMV 4.4 Book 1 §12.3.2"),
    ("6110",                            "",                         0x6110, True,  "ISO/IEC 7816-4 §5.6"),
    ("6C08",                            "",                         0x6C08, False, "ISO/IEC 7816-4 §5.6"),
    ("63C2",                            "",                         0x63C2, False, "EMV 4.4 Book 3 §6.5.12"),
    ("8012800000" "6985",               "8012800000",               0x6985, False, "EMV 4.4 Book 3 §6.5.5"),
])
def test_split_data_and_status(raw: str, data: str, sw: int, ok: bool, source: str) -> None:
    """The last two bytes are SW1 SW2; the rest is data; serialising gives the same bytes."""
    response = ResponseAPDU.from_bytes(bytes.fromhex(raw))
    assert response.data.hex().upper() == data
    assert (response.sw, response.sw_hex, response.ok) == (sw, f"{sw:04X}", ok)
    assert response.to_bytes().hex().upper() == raw
    assert bytes(response) == response.to_bytes()


@pytest.mark.parametrize("entry", RESPONSES, ids=[entry["name"] for entry in RESPONSES])
def test_real_responses(entry: dict[str, Any]) -> None:
    """Real card responses (sources in benchmarks/data/card_responses.json) are 9000 with TLV data."""
    response = ResponseAPDU.from_bytes(bytes.fromhex(entry["response"]))
    assert response.ok and response.sw == 0x9000
    assert response.raise_for_sw() is response
    assert decode(response.data, strict=True)


@pytest.mark.parametrize("raw", ["", "90"])
def test_too_short(raw: str) -> None:
    """Fewer than two bytes is MalformedAPDU."""
    with pytest.raises(MalformedAPDU, match="at least 2 bytes"):
        ResponseAPDU.from_bytes(bytes.fromhex(raw))


def test_status_and_raise_for_sw() -> None:
    """status() builds a bare status word; raise_for_sw raises only for errors, with the SW."""
    response = ResponseAPDU.status(0x6985)
    assert response.to_bytes() == b"\x69\x85"
    assert response.meaning == "Conditions of use not satisfied"
    with pytest.raises(StatusWordError) as info:
        response.raise_for_sw()
    assert info.value.sw == 0x6985
    assert str(info.value) == "SW 6985: Conditions of use not satisfied"
    assert ResponseAPDU.status(0x9000, b"\x01").data == b"\x01"


@pytest.mark.parametrize("sw1", [-1, 256])
def test_constructor_checks(sw1: int) -> None:
    """SW1 and SW2 must be bytes."""
    with pytest.raises(MalformedAPDU, match="SW1 must be a byte"):
        ResponseAPDU(b"", sw1, 0)


@given(st.binary(min_size=2, max_size=300))
def test_any_response_round_trips(raw: bytes) -> None:
    """from_bytes then to_bytes gives the same bytes for any response."""
    assert ResponseAPDU.from_bytes(raw).to_bytes() == raw
