"""Tests of apdu.cid against EMV 4.4 Book 3 Table 14 (Coding of Cryptogram Information Data)."""

from __future__ import annotations

import pytest

from apdu.cid import AC_TYPES, CRYPTOGRAM_TYPES, cryptogram_type, explain_cid
from apdu.command import GenerateAC

# Table 14: bits 8-7 are 00 AAC, 01 TC, 10 ARQC, 11 RFU; bits 6-5 payment-system specific; bit 4
# advice required; bits 3-1 the reason (000 none, 001 service not allowed, 010 PIN try limit
# exceeded, 011 issuer authentication failed, others RFU).
TYPES = [
    (0b0000_0000, "AAC"),
    (0b0100_0000, "TC"),
    (0b1000_0000, "ARQC"),
    (0b1100_0000, None),     # RFU
    (0b1011_1111, "ARQC"),   # the low six bits do not change the type
    (0b0000_1001, "AAC"),
]


@pytest.mark.parametrize(("cid", "kind"), TYPES)
def test_cryptogram_type(cid: int, kind: str | None) -> None:
    """Bits 8-7 of the CID name the cryptogram; 11 is reserved."""
    assert cryptogram_type(cid) == kind


def test_generate_ac_p1_uses_the_same_bits() -> None:
    """GENERATE AC P1 bits 8-7 (Book 3 Table 12) are the CID's: AAC 00, TC 40, ARQC 80."""
    assert AC_TYPES == {"AAC": 0x00, "TC": 0x40, "ARQC": 0x80}
    assert {v: k for k, v in AC_TYPES.items()} == CRYPTOGRAM_TYPES
    assert [GenerateAC(kind, b"").p1 for kind in ("AAC", "TC", "ARQC")] == [0x00, 0x40, 0x80]


@pytest.mark.parametrize(
    ("cid",  "lines"),
    [
        (0x80, ["bits 8-7: ARQC"]),
        (0x0A, ["bits 8-7: AAC", "bit 4: Advice required", "bits 3-1: PIN Try Limit exceeded"]),
        (0x09, ["bits 8-7: AAC", "bit 4: Advice required", "bits 3-1: Service not allowed"]),
        (0x43, ["bits 8-7: TC", "bits 3-1: Issuer authentication failed"]),
        (0x07, ["bits 8-7: AAC", "bits 3-1: RFU"]),
        (0xD0, ["bits 8-7: RFU", "bits 6-5: payment system-specific cryptogram 1"]),
    ],
)
def test_explain_cid(cid: int, lines: list[str]) -> None:
    """Each field of Table 14 that is set is named."""
    assert explain_cid(bytes([cid])) == lines


def test_explain_nothing() -> None:
    """An empty CID has nothing to explain."""
    assert explain_cid(b"") == []
