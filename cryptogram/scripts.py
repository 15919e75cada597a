"""Issuer scripts with secure messaging: the MAC and the enciphered data of script commands.

EMV 4.4 Book 2 §9: an issuer's answer may carry script commands for the card (APPLICATION
BLOCK and UNBLOCK, PUT DATA, PIN CHANGE …), sent with CLA ``84`` (secure messaging, format 2):

- integrity (§9.2): an 8-byte MAC (ISO/IEC 9797-1 MAC algorithm 3, padding method 2; Annex
  A1.2) under the script MAC session key, over the command header (CLA INS P1 P2 Lc, Lc
  counting the MAC), the ATC and the application cryptogram of the transaction the script
  answers (not transmitted: the card knows them), and the command data;
- confidentiality (§9.3): the command data enciphered with triple DES in CBC mode, zero IV,
  under the script encipherment session key, after padding method 2 (EMV); Visa puts the
  data's length first and enciphers in ECB mode, Mastercard pads only data that is not whole
  blocks.

The session keys are the EMV common session keys (Annex A1.3) of the card's key for that
transaction -- for hcekit's cards, the limited-use key -- at the transaction's ATC. Checks are
constant-time; a script whose MAC fails is refused by the card (SW 6988).

>>> sk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
>>> script_mac(sk, bytes.fromhex("8424000008"), b"", b"", b"").hex().upper()   # pyemv.sm doctest
'0BFFF5DF3FAA24E1'
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives.ciphers import Cipher, modes

from cryptogram._ciphers import TripleDES, tdes_key
from cryptogram.derive import derive_session_key_emv
from cryptogram.errors import InvalidInput
from cryptogram.mac import iso9797_mac_alg3, pad_iso9797_2

__all__ = [
    "decipher",
    "encipher",
    "scheme_for_kernel",
    "script_command",
    "script_mac",
    "session_keys",
    "verify_script",
]

MAC_LENGTH = 8


def session_keys(card_key: bytes, atc: bytes) -> tuple[bytes, bytes]:
    """(MAC key, encipherment key) for scripts answering the transaction at ``atc``.

    Both are the EMV common session key of ``card_key`` (Annex A1.3.1); hcekit derives the
    encipherment key from the key with every byte's low nibble complemented, so the two differ.
    """
    mac_key = derive_session_key_emv(card_key, atc)
    enc_key = derive_session_key_emv(bytes(b ^ 0x0F for b in card_key), atc)
    return mac_key, enc_key


def script_mac(key: bytes, header: bytes, atc: bytes, cryptogram: bytes, data: bytes) -> bytes:
    """The 8-byte MAC of a script command (Book 2 §9.2.3): header ‖ ATC ‖ AC ‖ data."""
    return iso9797_mac_alg3(key, header + atc + cryptogram + data, 2)


def scheme_for_kernel(kernel: str) -> str:
    """The encipherment convention of a card's scripts by its kernel: ``visa`` for Visa's, and
    ``mastercard`` for every other (the card and the issuer must agree on it)."""
    return "visa" if kernel == "visa" else "mastercard"


def _cipher(key: bytes, scheme: str) -> Cipher[modes.CBC] | Cipher[modes.ECB]:
    if scheme == "visa":
        return Cipher(TripleDES(tdes_key(key)), modes.ECB())  # noqa: S305 - Visa script encipherment is ECB
    return Cipher(TripleDES(tdes_key(key)), modes.CBC(bytes(8)))


def encipher(key: bytes, data: bytes, scheme: str = "emv") -> bytes:
    """Command data enciphered for a script (Book 2 §9.3): ``emv``, ``visa`` or ``mastercard`` padding."""
    if scheme == "visa":
        plain = pad_iso9797_2(bytes((len(data),)) + data)
    elif scheme == "mastercard":
        plain = data if data and len(data) % 8 == 0 else pad_iso9797_2(data)
    elif scheme == "emv":
        plain = pad_iso9797_2(data)
    else:
        raise InvalidInput("scheme must be emv, visa or mastercard")
    encryptor = _cipher(key, scheme).encryptor()
    return encryptor.update(plain) + encryptor.finalize()


def decipher(key: bytes, data: bytes, scheme: str = "emv") -> bytes:
    """The inverse of :func:`encipher` (padding removed)."""
    if not data or len(data) % 8:
        raise InvalidInput("enciphered data is whole 8-byte blocks")
    decryptor = _cipher(key, scheme).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    if scheme == "visa":
        if plain[0] > len(plain) - 1:
            raise InvalidInput("the length byte exceeds the data")
        return plain[1:1 + plain[0]]
    end = plain.rstrip(b"\x00")
    if end.endswith(b"\x80"):
        return end[:-1]
    if scheme == "mastercard":
        return plain
    raise InvalidInput("the data is not padded by ISO/IEC 9797-1 method 2")


def script_command(
    cla: int, ins: int, p1: int, p2: int, data: bytes = b"", *, mac_key: bytes, atc: bytes,
    cryptogram: bytes, enc_key: bytes | None = None, scheme: str = "emv",
) -> bytes:
    """A whole script command: header, (enciphered) data, MAC (Book 2 §9.2.1.2 format 2)."""
    body = encipher(enc_key, data, scheme) if enc_key is not None and data else data
    header = bytes((cla, ins, p1, p2, len(body) + MAC_LENGTH))
    return header + body + script_mac(mac_key, header, atc, cryptogram, body)


def verify_script(command: bytes, *, mac_key: bytes, atc: bytes, cryptogram: bytes) -> bytes | None:
    """The command data of a script whose MAC verifies (still enciphered if it was), else ``None``."""
    if len(command) < 5 + MAC_LENGTH or command[4] != len(command) - 5:
        return None
    header, body, mac = command[:5], command[5:-MAC_LENGTH], command[-MAC_LENGTH:]
    expected = script_mac(mac_key, header, atc, cryptogram, body)
    return body if hmac.compare_digest(expected, mac) else None
