"""Authorizing a Mastercard mag-stripe mode tap: verify the CVC3 that Track 2 carries.

A Kernel 2 card in mag-stripe mode (EMV Contactless Book C-2) makes no application cryptogram:
it computes a CVC3 over the terminal's numeric unpredictable number (9F6A) and its ATC, and the
terminal writes CVC3, UN and ATC digits into Track 2's discretionary data (9F6B) at the positions
of the card's bitmaps (:mod:`cryptogram.cvc3`; hcekit's cards use its default personalisation).
The issuer reads them back and recomputes the CVC3 under the card's CVC3 key. hcekit's cloud
cards compute it under their current limited-use key, which the track does not name, so every
issued, unexpired key of the token is tried (a batch is a handful of keys).

:func:`find_key` is called by :class:`~tsp_backend.services.authorization.AuthorizationService`
for a block without an ARQC (9F26) but with a CVC3 (9F61); once the CVC3 verifies, the tap takes
the ARQC path's steps: the token's policy and the amount checked, the ATC and the key use spent
with the pending row, the issuer asked. There is no ARPC.
"""

from __future__ import annotations

from collections.abc import Mapping

from apdu.pan import split_track2
from cryptogram.cvc3 import NATC, PCVC3, PUNATC, cvc3, ivcvc3, read_discretionary, track2_template
from cryptogram.luk import derive_luk

__all__ = ["find_key"]


def find_key(
    tlvs: Mapping[int, bytes], *, tmk: bytes, batches: tuple[tuple[int, int, int, int], ...], now: float,
) -> tuple[int, int] | str:
    """(LUK index, ATC) under which Track 2's CVC3 verifies, or why it does not (a reason)."""
    for tag in (0x9F6B, 0x9F36, 0x9F6A):
        if tag not in tlvs:
            return f"the mag-stripe data lacks tag {tag:02X}"
    parts = split_track2(tlvs[0x9F6B])
    if parts is None or len(parts[1]) < 8:
        return "Track 2 data (9F6B) is malformed"
    pan, rest = parts
    try:
        cvc3_digits, un_digits, atc_digits = read_discretionary(
            rest[7:], pcvc3=PCVC3, punatc=PUNATC, natc=NATC)
    except IndexError:
        return "Track 2 discretionary data is too short"
    atc = int.from_bytes(tlvs[0x9F36], "big")
    un = tlvs[0x9F6A].hex()
    if not f"{atc:05d}".endswith(atc_digits) or not un.endswith(un_digits):
        return "the ATC or UN in Track 2 differs from 9F36/9F6A"
    template = track2_template(pan, rest[:4], rest[4:7])
    for first, count, _max_uses, not_after in batches:
        if not_after < now:
            continue
        for index in range(first, first + count):
            key = derive_luk(tmk, index)
            value = cvc3(key, ivcvc3(key, template), tlvs[0x9F6A], tlvs[0x9F36])
            if f"{value:05d}".endswith(cvc3_digits):
                return index, atc
    return "the CVC3 does not verify"
