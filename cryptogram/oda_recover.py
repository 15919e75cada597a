"""Offline data authentication, the terminal's side: recover each block and run every check.

EMV 4.4 Book 2 §5.3, §5.4, §6.3, §6.4 and §6.5/§6.6: recovery applies the signer's public key
to a certificate or signature (the formats are in :mod:`cryptogram.oda`) and runs every check
in the order the book lists them; the first that fails raises
:class:`~cryptogram.errors.OdaError` with a :class:`~cryptogram.oda.Reason`, so a terminal can
set the right TVR bit and a person can read why. Issuer and ICC certificates share one layout
and one sequence of checks; only the identity differs (the issuer identifier must lead the PAN,
the ICC certificate's PAN must be the card's).

Dates are MMYY; a certificate is valid up to the last day of its month (§5.3 step 9). Today's
date is passed in as YYMMDD (the terminal's 9A), so this module reads no clock.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from apdu.formats import decode_cn
from cryptogram.errors import InvalidInput, OdaError
from cryptogram.oda import (
    FORMAT_ICC,
    FORMAT_ISSUER,
    FORMAT_SDAD,
    FORMAT_SSAD,
    HEADER,
    RSA,
    SHA1,
    TRAILER,
    Reason,
    block_hash,
)
from cryptogram.rsa import RsaPublicKey

__all__ = [
    "CdaData",
    "DynamicData",
    "IccCertificate",
    "IssuerCertificate",
    "recover_cda",
    "recover_dynamic_data",
    "recover_icc_key",
    "recover_issuer_key",
    "recover_static_data",
]


def _recover(key: RsaPublicKey, signature: bytes, expected_format: int) -> bytes:
    """Steps 1-4 common to every block: length, RSA recovery, trailer, header, format."""
    if len(signature) != key.length:
        raise OdaError(Reason.LENGTH, f"{len(signature)} bytes, the key is {key.length}")
    try:
        block = key.recover(signature)
    except InvalidInput as exc:
        raise OdaError(Reason.LENGTH, str(exc)) from None
    if block[-1] != TRAILER:
        raise OdaError(Reason.TRAILER, f"recovered data trailer is {block[-1]:02X}, not BC")
    if block[0] != HEADER:
        raise OdaError(Reason.HEADER, f"recovered data header is {block[0]:02X}, not 6A")
    if block[1] != expected_format:
        raise OdaError(Reason.FORMAT, f"format is {block[1]:02X}, not {expected_format:02X}")
    return block


def _check_hash(block: bytes, *tail: bytes) -> None:
    expected = block[-21:-1]
    if not hmac.compare_digest(block_hash(block[1:-21], *tail), expected):
        raise OdaError(Reason.HASH, "the hash result does not match the recovered data")


def _check_algorithms(hash_algorithm: int, key_algorithm: int | None = None) -> None:
    if hash_algorithm != SHA1:
        raise OdaError(Reason.HASH_ALGORITHM, f"hash algorithm indicator {hash_algorithm:02X} is not 01")
    if key_algorithm is not None and key_algorithm != RSA:
        raise OdaError(Reason.KEY_ALGORITHM, f"public key algorithm indicator {key_algorithm:02X} is not 01")


def _yymm(mmyy: bytes) -> tuple[int, int]:
    text = mmyy.hex()
    if len(text) != 4 or not text.isdigit() or not 1 <= int(text[:2]) <= 12:
        raise OdaError(Reason.DATE, f"expiry date {text.upper()} is not MMYY")
    yy = int(text[2:])
    return (1900 + yy if yy >= 50 else 2000 + yy), int(text[:2])   # Book 3 §4.3 YY window


def _check_expiry(mmyy: bytes, today: str) -> None:
    """Valid through the last day of MMYY (Book 2 §5.3 step 9); ``today`` is YYMMDD."""
    if len(today) != 6 or not today.isdigit():
        raise InvalidInput("today must be YYMMDD digits")
    yy = int(today[:2])
    now = ((1900 + yy) if yy >= 50 else (2000 + yy), int(today[2:4]))
    if _yymm(mmyy) < now:
        raise OdaError(Reason.EXPIRED, f"certificate expired at the end of {mmyy.hex()[:2]}/{mmyy.hex()[2:]}")


def _open_certificate(
    signer: RsaPublicKey, certificate: bytes, fmt: int, id_len: int, *hashed: bytes,
) -> tuple[bytes, bytes, bytes, bytes]:
    """A certificate's block, identity (issuer identifier or PAN), expiry and serial, its hash checked.

    Both certificates lay out ``6A | format | identity | expiry (2) | serial (3) | hash algorithm |
    key algorithm | key length | exponent length | key …`` (Book 2 Tables 6 and 14).
    """
    block = _recover(signer, certificate, fmt)
    _check_hash(block, *hashed)
    return block, block[2:2 + id_len], block[2 + id_len:4 + id_len], block[4 + id_len:7 + id_len]


def _certified_key(
    block: bytes, id_len: int, expiry: bytes, today: str, remainder: bytes, exponent: bytes,
) -> RsaPublicKey:
    """The last checks of a certificate (expiry, algorithms, lengths) and the key it certifies."""
    _check_expiry(expiry, today)
    at = 7 + id_len
    _check_algorithms(block[at], block[at + 1])
    room = len(block) - 32 - id_len
    return _key_from(block, at + 4, block[at + 2], block[at + 3], remainder, exponent, room)


def _key_from(block: bytes, start: int, key_len: int, exp_len: int, remainder: bytes,
              exponent: bytes, room: int) -> RsaPublicKey:
    """The certified key from its leftmost part and the remainder (Book 2 §5.3 step 10, §6.3)."""
    if len(exponent) != exp_len or exp_len not in (1, 3):
        raise OdaError(Reason.KEY_LENGTH,
                       f"exponent is {len(exponent)} bytes, the certificate says {exp_len}")
    if key_len <= room:
        if remainder:
            raise OdaError(Reason.KEY_LENGTH, "a remainder is present although the key fits the certificate")
        modulus = block[start:start + key_len]
    else:
        if len(remainder) != key_len - room:
            raise OdaError(Reason.KEY_LENGTH,
                           f"remainder is {len(remainder)} bytes, {key_len - room} expected")
        modulus = block[start:start + room] + remainder
    try:
        return RsaPublicKey(modulus, exponent)
    except (InvalidInput, ValueError) as exc:
        raise OdaError(Reason.KEY_LENGTH, str(exc)) from None


@dataclass(frozen=True, slots=True)
class IssuerCertificate:
    """What an issuer public key certificate (90) says (Book 2 Table 6)."""

    key: RsaPublicKey
    issuer_identifier: str
    expiry: str
    serial: bytes


@dataclass(frozen=True, slots=True)
class IccCertificate:
    """What an ICC public key certificate (9F46) says (Book 2 Table 14)."""

    key: RsaPublicKey
    pan: str
    expiry: str
    serial: bytes


def recover_issuer_key(
    ca_key: RsaPublicKey,
    certificate: bytes,
    remainder: bytes,
    exponent: bytes,
    *,
    pan: str,
    today: str,
) -> IssuerCertificate:
    """Recover and check the issuer public key from 90, 92 and 9F32 (Book 2 §5.3).

    ``pan`` is the card's PAN digits (5A); ``today`` the transaction date YYMMDD.
    """
    block, issuer_id, expiry, serial = _open_certificate(
        ca_key, certificate, FORMAT_ISSUER, 4, remainder, exponent)
    digits = decode_cn(issuer_id) or ""
    if not 3 <= len(digits) <= 8 or not digits.isdigit() or not pan.startswith(digits):
        raise OdaError(Reason.ISSUER_IDENTIFIER, "the issuer identifier is not the PAN's leading digits")
    _yymm(expiry)
    key = _certified_key(block, 4, expiry, today, remainder, exponent)
    return IssuerCertificate(key, digits, expiry.hex(), serial)


def recover_icc_key(
    issuer_key: RsaPublicKey,
    certificate: bytes,
    remainder: bytes,
    exponent: bytes,
    *,
    pan: str,
    static_data: bytes,
    today: str,
) -> IccCertificate:
    """Recover and check the ICC public key from 9F46, 9F48 and 9F47 (Book 2 §6.4).

    ``static_data`` is the static data to be authenticated (the ODA records and the values the
    SDA tag list names), which the certificate's hash covers.
    """
    block, cert_pan, expiry, serial = _open_certificate(
        issuer_key, certificate, FORMAT_ICC, 10, remainder, exponent, static_data)
    certified_pan = decode_cn(cert_pan)
    if certified_pan is None or certified_pan != pan.upper():
        raise OdaError(Reason.PAN, "the certificate's PAN is not the card's PAN")
    key = _certified_key(block, 10, expiry, today, remainder, exponent)
    return IccCertificate(key, certified_pan, expiry.hex(), serial)


def recover_static_data(issuer_key: RsaPublicKey, ssad: bytes, static_data: bytes) -> bytes:
    """Check signed static application data (93) and return the data authentication code (§5.4)."""
    block = _recover(issuer_key, ssad, FORMAT_SSAD)
    _check_algorithms(block[2])
    _check_hash(block, static_data)
    return block[3:5]


@dataclass(frozen=True, slots=True)
class DynamicData:
    """The ICC dynamic data recovered from a signature (Book 2 Table 17, Table 18)."""

    icc_dynamic_data: bytes

    @property
    def icc_dynamic_number(self) -> bytes:
        """ICC Dynamic Number (9F4C): its length is the first byte."""
        n = self.icc_dynamic_data[0] if self.icc_dynamic_data else 0
        return self.icc_dynamic_data[1:1 + n]


def recover_dynamic_data(
    icc_key: RsaPublicKey, sdad: bytes, terminal_data: bytes, *, fmt: int = FORMAT_SDAD,
) -> DynamicData:
    """Check signed dynamic application data (9F4B) for DDA or fDDA (Book 2 §6.5.2).

    ``terminal_data`` is what the terminal contributed: the DDOL data for DDA; for fDDA the
    unpredictable number, and with version 01 the amount, currency and 9F69 too. ``fmt`` is
    05 (DDA) or :data:`~cryptogram.oda.FORMAT_FDDA` (Visa fDDA signs with format 95).
    """
    block = _recover(icc_key, sdad, fmt)
    _check_algorithms(block[2])
    ldd = block[3]
    if ldd > icc_key.length - 25 or ldd < 1 or block[4] + 1 > ldd:
        raise OdaError(Reason.DYNAMIC_DATA, f"ICC dynamic data length {ldd} does not fit")
    _check_hash(block, terminal_data)
    return DynamicData(block[4:4 + ldd])


@dataclass(frozen=True, slots=True)
class CdaData:
    """What a CDA signature carries (Book 2 Table 19): dynamic number, CID, cryptogram, hash."""

    icc_dynamic_number: bytes
    cid: bytes
    cryptogram: bytes
    transaction_hash: bytes


def recover_cda(
    icc_key: RsaPublicKey,
    sdad: bytes,
    *,
    unpredictable_number: bytes,
    cid: bytes,
    transaction_hash: bytes,
) -> CdaData:
    """Check a CDA signature and recover the cryptogram from it (Book 2 §6.6.2, steps 1-9).

    ``cid`` is the 9F27 the card sent outside the signature; ``transaction_hash`` the hash the
    terminal computed with :func:`cda_transaction_hash`.
    """
    block = _recover(icc_key, sdad, FORMAT_SDAD)
    _check_algorithms(block[2])
    ldd = block[3]
    if ldd > icc_key.length - 25 or ldd < 30:
        raise OdaError(Reason.DYNAMIC_DATA, f"ICC dynamic data length {ldd} is too short for CDA")
    _check_hash(block, unpredictable_number)
    dd = block[4:4 + ldd]
    n = dd[0]
    if not 2 <= n <= 8 or ldd < 1 + n + 29:
        raise OdaError(Reason.DYNAMIC_DATA, f"ICC dynamic number length {n} does not fit")
    out = CdaData(dd[1:1 + n], dd[1 + n:2 + n], dd[2 + n:10 + n], dd[10 + n:30 + n])
    if out.cid != cid:
        raise OdaError(Reason.CRYPTOGRAM_TYPE,
                       f"CID {out.cid.hex().upper()} in the signature, {cid.hex().upper()} outside")
    if not hmac.compare_digest(out.transaction_hash, transaction_hash):
        raise OdaError(Reason.TRANSACTION_HASH, "the transaction data hash code does not match")
    return out
