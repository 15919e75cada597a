"""Application cryptograms (ARQC, TC, AAC) and authorisation response cryptograms (ARPC).

EMV 4.4 Book 2 §8.1: the card computes the application cryptogram as a MAC, under the
session key, over data chosen by the cryptogram version (see :mod:`cryptogram.cvn`); the
three kinds differ only in what the card means by them. §8.2: the issuer answers with an
ARPC that the card checks:

- method 1 (§8.2.1): ARPC = DES3(K)[ARQC ⊕ (ARC‖00…00)], 8 bytes, ARC the 2-byte
  authorisation response code; with AES the 8-byte value is padded with zeros to one block
  and the leftmost 8 bytes of the result are the ARPC;
- method 2 (§8.2.2): ARPC = the leftmost 4 bytes of MAC(K)[ARQC‖CSU‖Proprietary
  Authentication Data] (padding method 2), CSU the 4-byte Card Status Update and the
  proprietary data 0 to 8 bytes.

Which key K is (the ICC master key or the session key) is the cryptogram version's choice.
Verification recomputes and compares with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hmac

from cryptogram._ciphers import Algorithm, check_key, ecb, xor
from cryptogram.errors import InvalidInput
from cryptogram.mac import aes_cmac, iso9797_mac_alg3

__all__ = ["arpc_method1", "arpc_method2", "generate_ac", "verify_ac"]


def generate_ac(session_key: bytes, data: bytes, padding: int = 1, algorithm: Algorithm = "tdes") -> bytes:
    """The 8-byte application cryptogram over ``data`` (EMV 4.4 Book 2 §8.1.2, Annex A1.2).

    Triple DES: ISO/IEC 9797-1 MAC algorithm 3 with ``padding`` method 1 or 2 (the
    cryptogram version decides). AES: CMAC truncated to 8 bytes (``padding`` is not used:
    CMAC pads by itself). pyemv's example (``pyemv.ac.generate_ac``, EMV padding):

    >>> sk = bytes.fromhex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB")
    >>> data = bytes.fromhex("000000002000" "000000000000" "0124" "0000008000" "0124"
    ...                      "110309" "00" "3804823E" "5800" "0001")
    >>> generate_ac(sk, data, padding=2).hex().upper()
    '3B76CF10FECD8789'
    """
    if algorithm == "aes":
        return aes_cmac(session_key, data, 8)
    if algorithm != "tdes":
        raise InvalidInput(f"algorithm must be 'tdes' or 'aes', got {algorithm!r}")
    return iso9797_mac_alg3(session_key, data, padding)


def verify_ac(
    session_key: bytes, data: bytes, cryptogram: bytes, padding: int = 1, algorithm: Algorithm = "tdes"
) -> bool:
    """Whether ``cryptogram`` is the application cryptogram of ``data`` (constant-time compare)."""
    return hmac.compare_digest(generate_ac(session_key, data, padding, algorithm), bytes(cryptogram))


def _check_length(value: bytes, name: str, lengths: tuple[int, ...]) -> None:
    if not isinstance(value, (bytes, bytearray)) or len(value) not in lengths:
        expected = " or ".join(str(n) for n in lengths)
        raise InvalidInput(f"{name} must be {expected} bytes")


def arpc_method1(key: bytes, arqc: bytes, arc: bytes, algorithm: Algorithm = "tdes") -> bytes:
    """ARPC method 1 (EMV 4.4 Book 2 §8.2.1): 8 bytes, ``arc`` the 2-byte response code.

    pyemv's example (``pyemv.ac.generate_arpc_1``):

    >>> key = bytes.fromhex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB")
    >>> arpc_method1(key, bytes.fromhex("1234567890ABCDEF"), bytes.fromhex("0000")).hex().upper()
    'F5E6F44147E2F1B0'
    """
    check_key(key, algorithm)
    _check_length(arqc, "ARQC", (8,))
    _check_length(arc, "ARC", (2,))
    x = xor(bytes(arqc), bytes(arc) + bytes(6))
    if algorithm == "aes":
        return ecb(key, "aes").update(x + bytes(8))[:8]
    return ecb(key, "tdes").update(x)


def arpc_method2(
    key: bytes, arqc: bytes, csu: bytes, proprietary_auth_data: bytes = b"", algorithm: Algorithm = "tdes"
) -> bytes:
    """ARPC method 2 (EMV 4.4 Book 2 §8.2.2): 4 bytes over ARQC‖CSU‖proprietary data.

    pyemv's example (``pyemv.ac.generate_arpc_2``):

    >>> key = bytes.fromhex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB")
    >>> arpc_method2(key, bytes.fromhex("1234567890ABCDEF"), bytes.fromhex("00000000")).hex().upper()
    '9308BEBC'
    """
    _check_length(arqc, "ARQC", (8,))
    _check_length(csu, "CSU", (4,))
    if not isinstance(proprietary_auth_data, (bytes, bytearray)) or len(proprietary_auth_data) > 8:
        raise InvalidInput("proprietary authentication data must be 0 to 8 bytes")
    data = bytes(arqc) + bytes(csu) + bytes(proprietary_auth_data)
    if algorithm == "aes":
        return aes_cmac(key, data, 4)
    if algorithm != "tdes":
        raise InvalidInput(f"algorithm must be 'tdes' or 'aes', got {algorithm!r}")
    return iso9797_mac_alg3(key, data, padding=2, length=4)
