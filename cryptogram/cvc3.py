"""Mastercard mag-stripe mode: CVC3 and the dynamic discretionary data of Track 1 and Track 2.

EMV Contactless Book C-2 (Kernel 2), mag-stripe mode: the card answers COMPUTE CRYPTOGRAPHIC
CHECKSUM with a CVC3 for each track, computed under its CVC3 key KD(CVC3) from the terminal's
numeric unpredictable number (9F6A) and its ATC; the terminal writes CVC3, UN and ATC digits into
the track's discretionary data where the card's bitmaps say (PCVC3, PUNATC, NATC), and the issuer
recomputes the CVC3 from the track it receives.

- ``IVCVC3`` (per track, personalised): the 2 rightmost bytes of the ISO/IEC 9797-1 MAC
  algorithm 3, padding method 2, over the track's static data (its template);
- ``CVC3`` = the 2 rightmost bytes of triple DES ECB under KD(CVC3) of
  ``IVCVC3 (2) ‖ UN (4) ‖ ATC (2)``, read as a number; the track carries its
  least significant decimal digits.

Digit placement (Book C-2 §S13, mag-stripe data): in the discretionary data, the positions whose
bits are set in PCVC3 (rightmost digit = least significant bit) take the CVC3's least
significant digits; of the positions set in PUNATC, the rightmost ``nUN`` take the UN's digits
and the leftmost ``NATC`` the ATC's; ``nUN`` = set bits of PUNATC − NATC, and the last digit of
the discretionary data is ``nUN`` itself.

>>> key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
>>> iv = ivcvc3(key, bytes.fromhex("5413330089010012D30122010000000000000F"))
>>> len(iv), 0 <= cvc3(key, iv, bytes.fromhex("00000899"), bytes.fromhex("005E")) < 65536
(2, True)
"""

from __future__ import annotations

from apdu.pan import encode_track2
from cryptogram._ciphers import ecb
from cryptogram.errors import InvalidInput
from cryptogram.mac import iso9797_mac_alg3

__all__ = [
    "DISCRETIONARY",
    "NATC",
    "PCVC3",
    "PUNATC",
    "cvc3",
    "encode_discretionary",
    "ivcvc3",
    "nun",
    "read_discretionary",
    "track2_template",
]

#: hcekit's mag-stripe personalisation, shared by the card and the issuer that verifies it: a
#: 13-digit discretionary data; CVC3 in 3 digits, UN and ATC in 8 (NATC 2, so 6 UN digits); the
#: last digit left for nUN.
DISCRETIONARY = "0000000000000"
PCVC3 = bytes.fromhex("0070")
PUNATC = bytes.fromhex("0F8E")
NATC = 2


def track2_template(pan: str, expiry: str, service_code: str = "201") -> bytes:
    """The static Track 2 (9F6B) of mag-stripe mode: PAN D YYMM service code DD, F-padded."""
    return encode_track2(pan, f"{expiry}{service_code}{DISCRETIONARY}")


def ivcvc3(key: bytes, track_template: bytes) -> bytes:
    """The CVC3 initialisation vector of one track (2 bytes)."""
    return iso9797_mac_alg3(key, track_template, 2)[-2:]


def cvc3(key: bytes, iv: bytes, unpredictable_number: bytes, atc: bytes) -> int:
    """The CVC3 as a number (0..65535) from IVCVC3, UN (9F6A, 4 bytes) and ATC (2 bytes)."""
    if len(iv) != 2 or len(unpredictable_number) != 4 or len(atc) != 2:
        raise InvalidInput("IVCVC3 is 2 bytes, the UN 4 and the ATC 2")
    encryptor = ecb(key, "tdes")
    block = encryptor.update(iv + unpredictable_number + atc)
    return int.from_bytes(block[-2:], "big")


def _positions(bitmap: bytes, width: int) -> list[int]:
    """Indexes (0 = leftmost) of the discretionary data digits a bitmap selects, left to right."""
    value = int.from_bytes(bitmap, "big")
    return [width - 1 - bit for bit in range(width) if value >> bit & 1][::-1]


def nun(punatc: bytes, natc: int) -> int:
    """The number of UN digits the terminal generates: set bits of PUNATC minus NATC."""
    count = bin(int.from_bytes(punatc, "big")).count("1") - natc
    if count < 0:
        raise InvalidInput("NATC is larger than the positions PUNATC offers")
    return count


def encode_discretionary(
    template: str, *, pcvc3: bytes, punatc: bytes, natc: int, cvc3_value: int, un: str, atc: int,
) -> str:
    """The discretionary data ``template`` (digits) with CVC3, UN, ATC and nUN written in."""
    width = len(template)
    digits = list(template)
    cvc3_pos = _positions(pcvc3, width)
    unatc_pos = _positions(punatc, width)
    n = nun(punatc, natc)
    if any(p < 0 for p in cvc3_pos + unatc_pos):
        raise InvalidInput("a bitmap selects positions beyond the discretionary data")
    cvc3_digits = f"{cvc3_value:05d}"[-len(cvc3_pos):] if cvc3_pos else ""
    for pos, digit in zip(cvc3_pos, cvc3_digits.rjust(len(cvc3_pos), "0"), strict=True):
        digits[pos] = digit
    un_digits = un[-n:] if n else ""
    atc_digits = f"{atc:05d}"[-natc:] if natc else ""
    for pos, digit in zip(unatc_pos, atc_digits + un_digits, strict=True):
        digits[pos] = digit
    digits[-1] = str(n)
    return "".join(digits)


def read_discretionary(
    data: str, *, pcvc3: bytes, punatc: bytes, natc: int,
) -> tuple[str, str, str]:
    """The (CVC3 digits, UN digits, ATC digits) a terminal wrote into discretionary data."""
    width = len(data)
    cvc3_digits = "".join(data[p] for p in _positions(pcvc3, width))
    unatc = "".join(data[p] for p in _positions(punatc, width))
    return cvc3_digits, unatc[natc:], unatc[:natc]
