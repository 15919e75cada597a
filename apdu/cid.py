"""The Cryptogram Information Data (9F27) and the cryptogram types it names.

EMV 4.4 Book 3 §6.5.5.4, Table 14 (Coding of Cryptogram Information Data):

======  ==================================================
bits    meaning
======  ==================================================
8-7     00 AAC, 01 TC, 10 ARQC, 11 RFU
6-5     payment system-specific cryptogram
4       advice required
3-1     reason/advice code: 000 no information given,
        001 service not allowed, 010 PIN try limit
        exceeded, 011 issuer authentication failed,
        others RFU
======  ==================================================

The same two bits name the cryptogram the terminal asks for in P1 of GENERATE AC (Book 3
§6.5.5.2, Table 12), so :data:`AC_TYPES` serves the command and :data:`CRYPTOGRAM_TYPES` the
answer.

>>> cryptogram_type(0x80), cryptogram_type(0x40), cryptogram_type(0x08), cryptogram_type(0xC0)
('ARQC', 'TC', 'AAC', None)
>>> explain_cid(bytes([0x89]))
['bits 8-7: ARQC', 'bit 4: Advice required', 'bits 3-1: Service not allowed']
"""

from __future__ import annotations

__all__ = ["AC_TYPES", "CID_TYPE_MASK", "CRYPTOGRAM_TYPES", "cryptogram_type", "explain_cid"]

CID_TYPE_MASK = 0xC0
"""Bits 8-7 of the CID (and of GENERATE AC P1): the cryptogram type."""

CRYPTOGRAM_TYPES: dict[int, str] = {0x00: "AAC", 0x40: "TC", 0x80: "ARQC"}
"""Bits 8-7 → cryptogram type (Book 3 Table 14); ``0xC0`` is RFU and absent."""

AC_TYPES: dict[str, int] = {name: bits for bits, name in CRYPTOGRAM_TYPES.items()}
"""Cryptogram type → GENERATE AC P1 bits 8-7 (Book 3 §6.5.5.2, Table 12)."""

_REASONS = {
    0: "No information given",
    1: "Service not allowed",
    2: "PIN Try Limit exceeded",
    3: "Issuer authentication failed",
}


def cryptogram_type(cid: int) -> str | None:
    """``"AAC"``, ``"TC"`` or ``"ARQC"`` from a CID byte (Book 3 Table 14); ``None`` for RFU (11)."""
    return CRYPTOGRAM_TYPES.get(cid & CID_TYPE_MASK)


def explain_cid(value: bytes) -> list[str]:
    """One line per meaningful field of a CID value (Book 3 Table 14); ``[]`` for no value."""
    if not value:
        return []
    cid = value[0]
    out = [f"bits 8-7: {cryptogram_type(cid) or 'RFU'}"]
    if cid & 0x30:
        out.append(f"bits 6-5: payment system-specific cryptogram {(cid >> 4) & 3}")
    if cid & 0x08:
        out.append("bit 4: Advice required")
    reason = cid & 0x07
    if reason:
        out.append(f"bits 3-1: {_REASONS.get(reason, 'RFU')}")
    return out
