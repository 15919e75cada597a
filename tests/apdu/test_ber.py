"""The tag and length fields of BER-TLV (EMV 4.4 Book 3 Annex B1, B2)."""

from __future__ import annotations

from typing import Any

import pytest

from apdu.ber import encode_length, encode_tag, read_long_tag
from apdu.errors import DecodeError, EncodeError
from apdu.tlv import TLV, decode

PYEMV = "knovichikhin/pyemv tests/test_tlv.py"


@pytest.mark.parametrize(("n", "encoded", "source"), [
    (0,          "00",         "EMV 4.4 Book 3 Annex B2"),
    (127,        "7F",         "EMV 4.4 Book 3 Annex B2"),
    (128,        "8180",       PYEMV),
    (255,        "81FF",       "EMV 4.4 Book 3 Annex B2"),
    (256,        "820100",     "EMV 4.4 Book 3 Annex B2"),
    (511,        "8201FF",     PYEMV),
    (65535,      "82FFFF",     "EMV 4.4 Book 3 Annex B2"),
    (65536,      "83010000",   "ISO/IEC 8825-1 §8.1.3.5"),
    (1 << 24,    "8401000000", "ISO/IEC 8825-1 §8.1.3.5"),
])
def test_encode_length(n: int, encoded: str, source: str) -> None:
    """Lengths are encoded in their shortest form."""
    assert encode_length(n).hex().upper() == encoded


@pytest.mark.parametrize("n", [-1, 1 << 32])
def test_encode_length_out_of_range(n: int) -> None:
    """Negative lengths and lengths over 4 bytes are EncodeErrors."""
    with pytest.raises(EncodeError):
        encode_length(n)


@pytest.mark.parametrize(("tag", "encoded"), [
    (0x9C,     "9C"),
    (0x9F26,   "9F26"),
    (0xBF0C,   "BF0C"),
    (0x9F8001, "9F8001"),   # pyemv tests/test_tlv.py
    (0xDF8101, "DF8101"),   # EMV Contactless Book C-2 tag
    (0x5F8001, "5F8001"),   # non-minimal form kept as is (pyasn1#5)
])
def test_encode_tag(tag: int, encoded: str) -> None:
    """Tags are their raw bytes, never re-encoded."""
    assert encode_tag(tag).hex().upper() == encoded
    assert TLV(tag, b"").tag_hex == encoded


@pytest.mark.parametrize("tag", [0, -1, 0x9F, 0x9F2681, 0x0A1F, 0x1F, 0x9F0001, 1 << 32, True, "9F26"])
def test_encode_tag_invalid(tag: Any) -> None:
    """A tag a decoder would read with another length is an EncodeError (pyemv tests/test_tlv.py)."""
    with pytest.raises(EncodeError):
        encode_tag(tag)


@pytest.mark.parametrize(
    ("data",       "strict", "tag"),
    [
        ("9F8101",     True,  0x9F8101),    # 3 bytes: the longest strict tag
        ("5F2A",       True,  0x5F2A),
        ("DF818201",   False, 0xDF818201),  # 4 bytes: lenient only
    ],
)
def test_read_long_tag(data: str, strict: bool, tag: int) -> None:
    """A tag whose first byte ends in 11111 runs until a byte with b8 clear (Annex B1)."""
    raw = bytes.fromhex(data)
    assert read_long_tag(raw, 0, len(raw), strict) == tag


@pytest.mark.parametrize(
    ("data",         "strict", "message"),
    [
        ("9F",           False, "tag truncated"),
        ("9F81",         False, "tag truncated"),
        ("DF818201",     True,  "longer than 3 bytes"),
        ("DF81828301",   False, "longer than 4 bytes"),
    ],
)
def test_read_long_tag_refuses(data: str, strict: bool, message: str) -> None:
    """A truncated or over-long tag is a DecodeError naming the offset where the tag began."""
    raw = b"\x00" + bytes.fromhex(data)
    with pytest.raises(DecodeError, match=message) as caught:
        read_long_tag(raw, 1, len(raw), strict)
    assert caught.value.offset == 1
    with pytest.raises(DecodeError, match=message) as in_decode:   # and decode keeps the partial
        decode(bytes.fromhex("9C0100") + raw[1:], strict=strict)
    assert in_decode.value.offset == 3 and [n.tag for n in in_decode.value.partial] == [0x9C]
