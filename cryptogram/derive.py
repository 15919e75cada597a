"""Key derivation for EMV: ICC master keys from an issuer master key, and session keys.

The key hierarchy of EMV 4.4 Book 2 Annex A1.3–A1.4::

    issuer master key (IMK, in the issuer's HSM)
      └─ ICC master key MK = f(IMK, PAN, PSN)         option A, B (triple DES) or C (AES)
           └─ session key SK = g(MK, ATC [, UN])       one per transaction

- Option A (A1.4.1): Y = the rightmost 16 digits of PAN‖PSN (left-padded with zeros when
  shorter), as 8 BCD bytes; MK = DES3(IMK)[Y] ‖ DES3(IMK)[Y ⊕ FF…FF], with odd DES parity.
- Option B (A1.4.2), for PANs longer than 16 digits: the SHA-1 of PAN‖PSN (BCD, left-padded
  to whole bytes) is decimalised to 16 digits — first its decimal digits in order, then, if
  fewer than 16, its hex digits A–F as 0–5 — and the result goes through option A. For PANs
  of 16 digits or fewer option B *is* option A.
- Option C (A1.4.3), for AES: Y = PAN‖PSN left-padded with zeros to 32 digits, 16 BCD bytes;
  a 16-byte MK = AES(IMK)[Y]; longer keys take the leftmost bytes of
  AES(IMK)[Y] ‖ AES(IMK)[Y ⊕ FF…FF].
- Common session key derivation (A1.3.1): for triple DES, SK = DES3(MK)[ATC‖F0‖00…] ‖
  DES3(MK)[ATC‖0F‖00…] with odd parity; for AES with a 16-byte MK, SK = AES(MK)[ATC‖00…00];
  longer AES keys use the F0/0F pair of 16-byte blocks, truncated.
- Mastercard session key derivation (M/Chip "MasterCard proprietary SKD", as pyemv's
  ``MasterCardCVN16`` implements it): R = ATC‖00‖00‖UN, then the common derivation of R
  (byte 3 set to F0 for the left half, 0F for the right).

Issuer master keys, ICC master keys and limited-use keys are long-lived: their ECB contexts are
reused across calls (see :mod:`cryptogram._ciphers`). Nothing here logs or echoes a key.
"""

from __future__ import annotations

import hashlib

from cryptogram._ciphers import Algorithm, cached_ecb, check_key, ecb, xor
from cryptogram.errors import InvalidInput

__all__ = [
    "Algorithm",
    "adjust_parity",
    "derive_icc_mk",
    "derive_icc_mk_a",
    "derive_icc_mk_b",
    "derive_icc_mk_c",
    "derive_session_key_emv",
    "derive_session_key_mastercard",
    "key_check_value",
]

_FF8 = b"\xff" * 8
_FF16 = b"\xff" * 16
_PARITY = bytes((value & 0xFE) | ((value & 0xFE).bit_count() + 1) & 1 for value in range(256))


def adjust_parity(key: bytes) -> bytes:
    """Set the least significant bit of every byte so that each byte has odd parity (DES keys).

    FIPS 46-3 §"Key": each byte of a DES key carries an odd-parity bit; EMV 4.4 Book 2
    Annex A1.4.1 applies it to every derived triple-DES key.

    >>> adjust_parity(bytes.fromhex("0000FFFE0102")).hex().upper()
    '0101FEFE0102'
    """
    return bytes(key).translate(_PARITY)


def _check_digits(value: str, what: str, *, min_length: int, max_length: int) -> str:
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise InvalidInput(f"{what} must be decimal digits")
    if not min_length <= len(value) <= max_length:
        raise InvalidInput(f"{what} must be {min_length} to {max_length} digits, got {len(value)}")
    return value


def _pan_psn(pan: str, psn: str) -> str:
    _check_digits(pan, "PAN", min_length=8, max_length=19)
    _check_digits(psn, "PSN", min_length=2, max_length=2)
    return pan + psn


def _option_a_block(digits: str) -> bytes:
    return bytes.fromhex(digits[-16:].rjust(16, "0"))


def _tdes_mk(imk: bytes, y: bytes) -> bytes:
    return adjust_parity(cached_ecb(imk, "tdes").update(y + xor(y, _FF8)))


def derive_icc_mk_a(imk: bytes, pan: str, psn: str = "00") -> bytes:
    """ICC master key by EMV option A (EMV 4.4 Book 2 Annex A1.4.1): 16 bytes, odd parity.

    ``imk`` is a 16- or 24-byte triple DES issuer master key; ``pan`` and ``psn`` are digits.
    pyemv's example (``pyemv.kd`` module docstring):

    >>> imk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    >>> derive_icc_mk_a(imk, "99012345678901234", "45").hex().upper()
    '67F8292358083E5EA7AB7FDA58D53B6B'
    """
    check_key(imk, "tdes", "issuer master key")
    return _tdes_mk(imk, _option_a_block(_pan_psn(pan, psn)))


def _decimalise_option_b(digest_hex: str) -> str:
    digits = [c for c in digest_hex if c.isdigit()]
    if len(digits) < 16:
        digits += [str(int(c, 16) - 10) for c in digest_hex if not c.isdigit()]
    return "".join(digits[:16])


def derive_icc_mk_b(imk: bytes, pan: str, psn: str = "00") -> bytes:
    """ICC master key by EMV option B (EMV 4.4 Book 2 Annex A1.4.2): 16 bytes, odd parity.

    For a PAN of 16 digits or fewer the result is option A's. Otherwise Y is the SHA-1 of
    PAN‖PSN decimalised to 16 digits. pyemv's example (``pyemv.kd.derive_icc_mk_b``):

    >>> imk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    >>> derive_icc_mk_b(imk, "12345678901234567", "01").hex().upper()
    'AD406D7F6D7570916D75E5DCAB8CF737'
    """
    check_key(imk, "tdes", "issuer master key")
    digits = _pan_psn(pan, psn)
    if len(pan) <= 16:
        return _tdes_mk(imk, _option_a_block(digits))
    if len(digits) % 2:
        digits = "0" + digits
    y = _decimalise_option_b(hashlib.sha1(bytes.fromhex(digits)).hexdigest().upper())  # noqa: S324
    return _tdes_mk(imk, bytes.fromhex(y))


def derive_icc_mk_c(imk: bytes, pan: str, psn: str = "00", *, length: int | None = None) -> bytes:
    """ICC master key for AES (EMV 4.4 Book 2 Annex A1.4.3, "option C").

    ``length`` is the MK length in bytes (16, 24 or 32; the IMK's length by default).
    """
    check_key(imk, "aes", "issuer master key")
    size = len(imk) if length is None else length
    if size not in (16, 24, 32):
        raise InvalidInput(f"AES master key length must be 16, 24 or 32 bytes, got {size}")
    y = bytes.fromhex(_pan_psn(pan, psn).rjust(32, "0"))
    context = cached_ecb(imk, "aes")
    if size == 16:
        return context.update(y)
    return context.update(y + xor(y, _FF16))[:size]


def derive_icc_mk(imk: bytes, pan: str, psn: str = "00", algorithm: Algorithm = "tdes") -> bytes:
    """The ICC master key by the method EMV 4.4 Book 2 Annex A1.4 prescribes for the PAN.

    Triple DES: option A for PANs of up to 16 digits, option B beyond (A1.4.2 says option B
    is required only then, and it reduces to option A otherwise). AES: option C.
    """
    if algorithm == "aes":
        return derive_icc_mk_c(imk, pan, psn)
    if algorithm != "tdes":
        raise InvalidInput(f"algorithm must be 'tdes' or 'aes', got {algorithm!r}")
    return derive_icc_mk_b(imk, pan, psn)


def _check_atc(atc: bytes) -> None:
    if not isinstance(atc, (bytes, bytearray)) or len(atc) != 2:
        raise InvalidInput("ATC must be 2 bytes")


def _common(mk: bytes, r: bytes, algorithm: str) -> bytes:
    if algorithm == "tdes":
        left = r[:2] + b"\xf0" + r[3:]
        right = r[:2] + b"\x0f" + r[3:]
        return adjust_parity(cached_ecb(mk, "tdes").update(left + right))
    context = cached_ecb(mk, "aes")
    if len(mk) == 16:
        return context.update(r)
    left = r[:2] + b"\xf0" + r[3:]
    right = r[:2] + b"\x0f" + r[3:]
    return context.update(left + right)[: len(mk)]


def derive_session_key_emv(mk: bytes, atc: bytes, algorithm: Algorithm = "tdes") -> bytes:
    """Session key by the EMV common session key derivation (EMV 4.4 Book 2 Annex A1.3.1).

    ``mk`` is the ICC master key (triple DES: 16 or 24 bytes; AES: 16, 24 or 32) and ``atc``
    the 2-byte Application Transaction Counter (9F36). pyemv's example
    (``pyemv.kd.derive_common_sk``, R = ATC‖00…00):

    >>> mk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    >>> derive_session_key_emv(mk, bytes.fromhex("001C")).hex().upper()
    'E9FB384AF807B940FEDCEA613461B0C4'
    """
    check_key(mk, algorithm, "master key")
    _check_atc(atc)
    block = 8 if algorithm == "tdes" else 16
    return _common(mk, bytes(atc) + bytes(block - 2), algorithm)


def derive_session_key_mastercard(mk: bytes, atc: bytes, un: bytes) -> bytes:
    """Session key by the Mastercard session key derivation (M/Chip SKD): R = ATC‖00‖00‖UN.

    ``un`` is the 4-byte Unpredictable Number (9F37). Triple DES only, as in M/Chip 4 and
    pyemv's ``MasterCardCVN16._derive_sk_ac_mastercard``.
    """
    check_key(mk, "tdes", "master key")
    _check_atc(atc)
    if not isinstance(un, (bytes, bytearray)) or len(un) != 4:
        raise InvalidInput("unpredictable number must be 4 bytes")
    return _common(mk, bytes(atc) + b"\x00\x00" + bytes(un), "tdes")


def key_check_value(key: bytes, algorithm: Algorithm = "tdes", length: int = 3) -> bytes:
    """The key check value: the first ``length`` bytes of the key encrypting a zero block.

    The zero-block check value of ANSI X9.24-1 (triple DES; AES keys use the same rule on a
    16-byte block): a way to name a key in output and logs without showing it. pyemv's
    HSM-checked ICC master key of PAN 1234567890123456 (``tests/test_cvn_hsm.py``):

    >>> key_check_value(derive_icc_mk_a(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"),
    ...                                 "1234567890123456"), length=2).hex().upper()
    'BAB0'
    """
    check_key(key, algorithm)
    block = 8 if algorithm == "tdes" else 16
    return ecb(key, algorithm).update(bytes(block))[:length]
