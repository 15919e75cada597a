"""Message authentication codes for EMV: ISO/IEC 9797-1 MAC algorithm 3 and AES-CMAC.

EMV 4.4 Book 2 Annex A1.2 defines the MACs behind every application cryptogram and ARPC:

- A1.2.1, 8-byte block ciphers (triple DES): ISO/IEC 9797-1 MAC algorithm 3 ("retail MAC")
  with a double-length key K = KL‖KR. Every block is chained under single DES with KL; the
  last chaining value is then decrypted with KR and encrypted with KL. That is the same as a
  single-DES CBC pass over all blocks but the last, followed by one triple-DES (KL, KR, KL)
  encryption of the last block XOR the chaining value — which is how :func:`iso9797_mac_alg3`
  computes it: one CBC pass and one block.
- A1.2.2, 16-byte block ciphers (AES): ISO/IEC 9797-1 MAC algorithm 5, i.e. CMAC
  (NIST SP 800-38B), truncated by the caller.

Padding (ISO/IEC 9797-1 §6.3): method 1 appends zero bytes up to a multiple of the block size
(an empty message becomes one zero block); method 2 appends ``80`` and then zero bytes.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from cryptogram._ciphers import TripleDES, check_key
from cryptogram.errors import InvalidInput, InvalidKey

__all__ = ["aes_cmac", "iso9797_mac_alg3", "pad_iso9797_1", "pad_iso9797_2"]

_ZERO_IV = modes.CBC(bytes(8))
_ECB = modes.ECB()  # noqa: S305 - the output transformation of MAC algorithm 3 is one block


def pad_iso9797_1(data: bytes, block_size: int = 8) -> bytes:
    """ISO/IEC 9797-1 padding method 1: zero bytes up to a whole number of blocks.

    >>> pad_iso9797_1(bytes.fromhex("1234")).hex().upper()
    '1234000000000000'
    >>> pad_iso9797_1(b"").hex().upper()
    '0000000000000000'
    """
    remainder = len(data) % block_size
    if remainder:
        return bytes(data) + bytes(block_size - remainder)
    return bytes(data) if data else bytes(block_size)


def pad_iso9797_2(data: bytes, block_size: int = 8) -> bytes:
    """ISO/IEC 9797-1 padding method 2: a mandatory ``80`` byte, then zero bytes.

    >>> pad_iso9797_2(bytes.fromhex("1234")).hex().upper()
    '1234800000000000'
    """
    return pad_iso9797_1(bytes(data) + b"\x80", block_size)


def iso9797_mac_alg3(key: bytes, data: bytes, padding: int = 1, length: int = 8) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 with DES, as EMV 4.4 Book 2 Annex A1.2.1 uses it.

    ``key`` is a 16-byte double-length DES key KL‖KR; ``padding`` is ISO/IEC 9797-1 padding
    method 1 or 2; the MAC is truncated to ``length`` bytes (1 to 8). The ARPC method 2
    example of pyemv (``pyemv.ac.generate_arpc_2``: ARQC‖CSU, padding 2, first 4 bytes):

    >>> key = bytes.fromhex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB")
    >>> data = bytes.fromhex("1234567890ABCDEF" "00000000")
    >>> iso9797_mac_alg3(key, data, padding=2, length=4).hex().upper()
    '9308BEBC'
    """
    if len(key) != 16:
        check_key(key, "tdes")
        raise InvalidKey(f"key must be 16 bytes (KL‖KR) for MAC algorithm 3, got {len(key)}")
    if not 1 <= length <= 8:
        raise InvalidInput(f"MAC length must be 1 to 8 bytes, got {length}")
    if padding == 1:
        padded = pad_iso9797_1(data)
    elif padding == 2:
        padded = pad_iso9797_2(data)
    else:
        raise InvalidInput(f"padding must be ISO/IEC 9797-1 method 1 or 2, got {padding}")
    return _alg3(bytes(key), padded)[:length]


def _alg3(key: bytes, padded: bytes) -> bytes:
    """MAC algorithm 3 of already padded data under a checked 16-byte key: one CBC pass, one block."""
    left = key[:8]
    last = padded[-8:]
    if len(padded) > 8:
        chain = Cipher(TripleDES(left * 3), _ZERO_IV).encryptor().update(padded[:-8])[-8:]
        last = (int.from_bytes(last, "big") ^ int.from_bytes(chain, "big")).to_bytes(8, "big")
    return Cipher(TripleDES(key + left), _ECB).encryptor().update(last)


def aes_cmac(key: bytes, data: bytes, length: int = 16) -> bytes:
    """AES-CMAC (ISO/IEC 9797-1 MAC algorithm 5, NIST SP 800-38B), EMV 4.4 Book 2 Annex A1.2.2.

    The MAC is truncated to ``length`` bytes (1 to 16). Example 1 of NIST SP 800-38B
    (RFC 4493 §4, the empty message):

    >>> key = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
    >>> aes_cmac(key, b"").hex().upper()
    'BB1D6929E95937287FA37D129B756746'
    """
    check_key(key, "aes")
    if not 1 <= length <= 16:
        raise InvalidInput(f"MAC length must be 1 to 16 bytes, got {length}")
    mac = cmac.CMAC(algorithms.AES(bytes(key)))
    mac.update(bytes(data))
    return mac.finalize()[:length]
