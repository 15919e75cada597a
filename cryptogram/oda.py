"""Offline data authentication: certificate and signature formats, recovery and signing.

EMV 4.4 Book 2 §5 (static data authentication) and §6 (dynamic data authentication) chain
three RSA keys: the certification authority's (the terminal holds it, by RID and index), the
issuer's (certified by the CA in 90, with remainder 92 and exponent 9F32) and the card's (ICC,
certified by the issuer in 9F46, with remainder 9F48 and exponent 9F47). Each certificate and
signature is one block as long as the signer's modulus::

    6A | format | … fields … | pad BB… | SHA-1 (20) | BC

with format ``02`` issuer certificate (Table 6), ``04`` ICC certificate (Table 14), ``03``
signed static application data (Table 7, tag 93) and ``05`` signed dynamic application data
(Table 17, tag 9F4B) -- ``95`` when a Visa card signs it for fDDA (a real card's 9F4B in
``tests/data/traces/visa_qvsdc.jsonl`` carries 95). Recovery applies the public key and runs
every check of §5.3, §5.4, §6.3, §6.4 and §6.5/§6.6 in the order the book lists them; the
first that fails raises :class:`~cryptogram.errors.OdaError` with a :class:`Reason`, so a
terminal can set the right TVR bit and a person can read why. Signing builds the same
blocks, for the card and for the token service that certifies it.

The variants of dynamic authentication differ only in what is signed:

- DDA (§6.5): INTERNAL AUTHENTICATE; the terminal dynamic data is the DDOL data;
- fDDA (Visa Contactless Book C-3 Annex C): the signature comes with the GPO response; the
  terminal data is the unpredictable number (9F37), and for fDDA version ``01`` also the
  amount (9F02), the currency (5F2A) and the card authentication related data (9F69);
- CDA (§6.6): the signature comes with GENERATE AC; the terminal data is the unpredictable
  number, and the ICC dynamic data carries the cryptogram information data, the application
  cryptogram and a SHA-1 over the PDOL data, CDOL data and the response's other data objects.

Dates are MMYY; a certificate is valid up to the last day of its month (§5.3 step 9). Today's
date is passed in as YYMMDD (the terminal's 9A), so this module reads no clock.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import Enum

from apdu.errors import EncodeError
from apdu.formats import decode_cn, encode_cn, encode_n
from cryptogram.errors import InvalidInput, OdaError
from cryptogram.rsa import RsaPrivateKey, RsaPublicKey

__all__ = [
    "ODA_AIP",
    "CardCertificates",
    "CdaData",
    "DynamicData",
    "IccCertificate",
    "IssuerCertificate",
    "Reason",
    "cda_dynamic_data",
    "cda_transaction_hash",
    "issue_card",
    "issue_icc_certificate",
    "issue_issuer_certificate",
    "recover_cda",
    "recover_dynamic_data",
    "recover_icc_key",
    "recover_issuer_key",
    "recover_static_data",
    "roca_fingerprint",
    "sign_dynamic_data",
    "sign_static_data",
    "static_record",
]

HEADER = 0x6A
TRAILER = 0xBC
PAD = 0xBB
SHA1 = 0x01
"""Hash Algorithm Indicator ``01``: SHA-1 (Book 2 Annex B3.1)."""
RSA = 0x01
"""Public Key Algorithm Indicator ``01``: RSA (Book 2 Annex B2.1)."""

FORMAT_ISSUER = 0x02
FORMAT_SSAD = 0x03
FORMAT_ICC = 0x04
FORMAT_SDAD = 0x05
FORMAT_FDDA = 0x95
"""Signed Data Format of Visa's fDDA (Book C-3 Annex C): the layout of format 05, its own number."""


class Reason(str, Enum):
    """Why a certificate or signature was refused (the checks of Book 2 §5.3–§6.6, named)."""

    MISSING = "missing"                    # a data object needed for the check is absent
    LENGTH = "length"                      # the block is not as long as the signer's modulus
    TRAILER = "trailer"                    # recovered data trailer is not BC
    HEADER = "header"                      # recovered data header is not 6A
    FORMAT = "format"                      # certificate/signature format is not the expected one
    HASH_ALGORITHM = "hash_algorithm"      # hash algorithm indicator is not 01 (SHA-1)
    KEY_ALGORITHM = "key_algorithm"        # public key algorithm indicator is not 01 (RSA)
    KEY_LENGTH = "key_length"              # declared key/exponent/remainder lengths do not fit
    HASH = "hash"                          # the hash result does not match
    ISSUER_IDENTIFIER = "issuer_identifier"  # issuer identifier is not the PAN's leading digits
    PAN = "pan"                            # the ICC certificate's PAN is not the card's PAN
    DATE = "date"                          # the expiry date is not a valid MMYY
    EXPIRED = "expired"                    # the certificate expired before today
    DYNAMIC_DATA = "dynamic_data"          # ICC dynamic data length or layout is wrong
    CRYPTOGRAM_TYPE = "cryptogram_type"    # CDA: CID in the signature differs from 9F27
    TRANSACTION_HASH = "transaction_hash"  # CDA: transaction data hash code does not match


def _sha1(*parts: bytes) -> bytes:
    h = hashlib.sha1()  # noqa: S324 - EMV Book 2 Annex B3.1 mandates SHA-1
    for part in parts:
        h.update(part)
    return h.digest()


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
    if not hmac.compare_digest(_sha1(block[1:-21], *tail), expected):
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
    block = _recover(ca_key, certificate, FORMAT_ISSUER)
    issuer_id, expiry, serial = block[2:6], block[6:8], block[8:11]
    hash_alg, key_alg, key_len, exp_len = block[11], block[12], block[13], block[14]
    _check_hash(block, remainder, exponent)
    digits = decode_cn(issuer_id) or ""
    if not 3 <= len(digits) <= 8 or not digits.isdigit() or not pan.startswith(digits):
        raise OdaError(Reason.ISSUER_IDENTIFIER, "the issuer identifier is not the PAN's leading digits")
    _yymm(expiry)
    _check_expiry(expiry, today)
    _check_algorithms(hash_alg, key_alg)
    key = _key_from(block, 15, key_len, exp_len, remainder, exponent, ca_key.length - 36)
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
    block = _recover(issuer_key, certificate, FORMAT_ICC)
    cert_pan, expiry, serial = block[2:12], block[12:14], block[14:17]
    hash_alg, key_alg, key_len, exp_len = block[17], block[18], block[19], block[20]
    _check_hash(block, remainder, exponent, static_data)
    certified_pan = decode_cn(cert_pan)
    if certified_pan is None or certified_pan != pan.upper():
        raise OdaError(Reason.PAN, "the certificate's PAN is not the card's PAN")
    _check_expiry(expiry, today)
    _check_algorithms(hash_alg, key_alg)
    key = _key_from(block, 21, key_len, exp_len, remainder, exponent, issuer_key.length - 42)
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
    05 (DDA) or :data:`FORMAT_FDDA` (Visa fDDA signs with format 95).
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


def cda_transaction_hash(pdol_data: bytes, cdol_data: bytes, response_objects: bytes) -> bytes:
    """The transaction data hash code (Book 2 §6.6.1): SHA-1 over PDOL data, CDOL data and the
    GENERATE AC response's data objects other than 9F4B, each TLV as the card sent it, in order."""
    return _sha1(pdol_data, cdol_data, response_objects)


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


# -- signing ----------------------------------------------------------------------------------


def _sign(key: RsaPrivateKey, body: bytes, *tail: bytes) -> bytes:
    """``6A | body | SHA-1(body, tail…) | BC`` signed with ``key``; ``body`` starts at the format."""
    if len(body) != key.length - 22:
        raise InvalidInput(f"block body is {len(body)} bytes, {key.length - 22} needed")
    return key.sign(bytes([HEADER]) + body + _sha1(body, *tail) + bytes([TRAILER]))


def _split_key(key: RsaPublicKey, room: int) -> tuple[bytes, bytes]:
    if key.length <= room:
        return key.modulus + bytes([PAD]) * (room - key.length), b""
    return key.modulus[:room], key.modulus[room:]


def _f_padded(digits: str, length: int) -> bytes:
    try:
        return encode_cn(digits, length)
    except EncodeError:
        raise InvalidInput(f"expected up to {2 * length} digits") from None


def _mmyy(expiry: str) -> bytes:
    if len(expiry) != 4 or not expiry.isdigit():
        raise InvalidInput("expiry must be MMYY digits")
    return bytes.fromhex(expiry)


def issue_issuer_certificate(
    ca: RsaPrivateKey, issuer_key: RsaPublicKey, *, issuer_identifier: str, expiry: str, serial: bytes,
) -> tuple[bytes, bytes]:
    """The issuer public key certificate (90) and remainder (92) (Book 2 Table 6)."""
    if issuer_key.length > ca.length:
        raise InvalidInput("the issuer key is longer than the CA key")
    if len(serial) != 3:
        raise InvalidInput("serial must be 3 bytes")
    left, remainder = _split_key(issuer_key, ca.length - 36)
    body = (bytes([FORMAT_ISSUER]) + _f_padded(issuer_identifier, 4) + _mmyy(expiry) + serial
            + bytes([SHA1, RSA, issuer_key.length, len(issuer_key.exponent)]) + left)
    return _sign(ca, body, remainder, issuer_key.exponent), remainder


def issue_icc_certificate(
    issuer: RsaPrivateKey, icc_key: RsaPublicKey, *, pan: str, expiry: str, serial: bytes,
    static_data: bytes,
) -> tuple[bytes, bytes]:
    """The ICC public key certificate (9F46) and remainder (9F48) (Book 2 Table 14)."""
    if icc_key.length > issuer.length:
        raise InvalidInput("the ICC key is longer than the issuer key")
    if len(serial) != 3:
        raise InvalidInput("serial must be 3 bytes")
    left, remainder = _split_key(icc_key, issuer.length - 42)
    body = (bytes([FORMAT_ICC]) + _f_padded(pan, 10) + _mmyy(expiry) + serial
            + bytes([SHA1, RSA, icc_key.length, len(icc_key.exponent)]) + left)
    return _sign(issuer, body, remainder, icc_key.exponent, static_data), remainder


def sign_static_data(issuer: RsaPrivateKey, dac: bytes, static_data: bytes) -> bytes:
    """Signed static application data (93) over ``static_data`` (Book 2 Table 7)."""
    if len(dac) != 2:
        raise InvalidInput("the data authentication code is 2 bytes")
    body = bytes([FORMAT_SSAD, SHA1]) + dac + bytes([PAD]) * (issuer.length - 26)
    return _sign(issuer, body, static_data)


def sign_dynamic_data(
    icc: RsaPrivateKey, icc_dynamic_data: bytes, terminal_data: bytes, *, fmt: int = FORMAT_SDAD,
) -> bytes:
    """Signed dynamic application data (9F4B) (Book 2 Table 17), for DDA and CDA (format 05) and
    Visa fDDA (``fmt=FORMAT_FDDA``, 95)."""
    ldd = len(icc_dynamic_data)
    if not 1 <= ldd <= icc.length - 25:
        raise InvalidInput("ICC dynamic data does not fit the key")
    body = (bytes([fmt, SHA1, ldd]) + icc_dynamic_data
            + bytes([PAD]) * (icc.length - 25 - ldd))
    return _sign(icc, body, terminal_data)


def cda_dynamic_data(
    icc_dynamic_number: bytes, cid: bytes, cryptogram: bytes, transaction_hash: bytes,
) -> bytes:
    """The ICC dynamic data of a CDA signature (Book 2 Table 19)."""
    if not 2 <= len(icc_dynamic_number) <= 8 or len(cid) != 1 or len(cryptogram) != 8:
        raise InvalidInput("CDA needs a 2-8 byte dynamic number, a 1-byte CID and an 8-byte cryptogram")
    if len(transaction_hash) != 20:
        raise InvalidInput("the transaction data hash code is 20 bytes")
    return bytes([len(icc_dynamic_number)]) + icc_dynamic_number + cid + cryptogram + transaction_hash


# -- weak keys --------------------------------------------------------------------------------

#: The small primes whose residues reveal a modulus built as ``k·M + (65537^a mod M)``.
_ROCA_PRIMES = (
    3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
    101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
)


def _subgroup(p: int) -> frozenset[int]:
    out, x = {1}, 65537 % p
    while x not in out:
        out.add(x)
        x = (x * 65537) % p
    return frozenset(out)


_ROCA_SUBGROUPS = {p: _subgroup(p) for p in _ROCA_PRIMES}


def roca_fingerprint(modulus: bytes) -> bool:
    """Whether ``modulus`` has the structure of the weak keys of CVE-2017-15361 (ROCA).

    Primes of the form ``k·M + (65537^a mod M)`` (M the product of the first primes) give a
    modulus whose residue modulo each of those primes lies in the subgroup generated by 65537;
    a random modulus does so for all of them with negligible probability (Nemec et al., "The
    Return of Coppersmith's Attack", CCS 2017, §2.3). A fingerprint is a warning, not a proof.
    """
    n = int.from_bytes(modulus, "big")
    if n < 2:
        return False
    return all(n % p in group for p, group in _ROCA_SUBGROUPS.items())


# -- issuing a card's chain -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class CardCertificates:
    """What an issuer gives a card for offline data authentication (Book 2 §5-§6).

    The CA index (8F), the issuer certificate, remainder and exponent (90, 92, 9F32), the ICC
    certificate, remainder and exponent (9F46, 9F48, 9F47), the one record whose contents the
    ICC certificate's hash covers (``static_record``, a 70 template read with SFI 2 record 1),
    and the card's private key. ``to_dict``/``from_dict`` are the ``oda`` object of a card
    profile; ``repr`` never shows the key.
    """

    ca_index: int
    issuer_certificate: bytes
    issuer_remainder: bytes
    issuer_exponent: bytes
    icc_certificate: bytes
    icc_remainder: bytes
    icc_exponent: bytes
    static_record: bytes
    icc_key: RsaPrivateKey

    def __repr__(self) -> str:
        return f"CardCertificates(ca_index={self.ca_index:02X}, icc_key=<{self.icc_key.length * 8} bits>)"

    def to_dict(self) -> dict[str, str]:
        """The profile's ``oda`` object: hex fields and the ICC key in PEM."""
        return {
            "ca_index": f"{self.ca_index:02X}",
            "issuer_certificate": self.issuer_certificate.hex().upper(),
            "issuer_remainder": self.issuer_remainder.hex().upper(),
            "issuer_exponent": self.issuer_exponent.hex().upper(),
            "icc_certificate": self.icc_certificate.hex().upper(),
            "icc_remainder": self.icc_remainder.hex().upper(),
            "icc_exponent": self.icc_exponent.hex().upper(),
            "static_record": self.static_record.hex().upper(),
            "icc_key": self.icc_key.to_pem().decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> CardCertificates:
        """The inverse of :meth:`to_dict`; :class:`InvalidInput` names a bad field."""
        try:
            return cls(
                ca_index=int(data["ca_index"], 16),
                issuer_certificate=bytes.fromhex(data["issuer_certificate"]),
                issuer_remainder=bytes.fromhex(data.get("issuer_remainder", "")),
                issuer_exponent=bytes.fromhex(data["issuer_exponent"]),
                icc_certificate=bytes.fromhex(data["icc_certificate"]),
                icc_remainder=bytes.fromhex(data.get("icc_remainder", "")),
                icc_exponent=bytes.fromhex(data["icc_exponent"]),
                static_record=bytes.fromhex(data["static_record"]),
                icc_key=RsaPrivateKey.from_pem(data["icc_key"].encode("ascii")),
            )
        except (KeyError, ValueError, AttributeError) as exc:
            raise InvalidInput(f"oda: {type(exc).__name__} in field {exc}") from None


def _tlv(tag: bytes, value: bytes) -> bytes:
    if len(value) < 0x80:
        return tag + bytes([len(value)]) + value
    return tag + bytes([0x81, len(value)]) + value


def static_record(*, pan: str, expiry: str, psn: str, country: str) -> bytes:
    """The record (70) a certified card presents for ODA: 5A, 5F24, 5F34, 5F28, and 9F4A = 82.

    ``expiry`` is YYMM (the card's last valid month; 5F24 is its last day), ``country`` 4 digits.
    """
    body = (_tlv(b"\x5A", encode_cn(pan)) + _tlv(b"\x5F\x24", encode_n(expiry + "31", 3))
            + _tlv(b"\x5F\x34", encode_n(psn, 1)) + _tlv(b"\x5F\x28", encode_n(country, 2))
            + _tlv(b"\x9F\x4A", b"\x82"))
    return _tlv(b"\x70", body)


#: The AIP a card with a certificate chain advertises, per kernel: Visa fDDA (byte 1 bit 6, DDA;
#: Book C-3 Annex C); Mastercard CDA (byte 1 bit 1) with on-device CVM (bit 2), cardholder
#: verification and terminal risk management, EMV mode in byte 2 (Book C-2 Annex A).
ODA_AIP: dict[str, bytes] = {"visa": bytes.fromhex("2000"), "mastercard": bytes.fromhex("1B80")}


def issue_card(
    *, ca: RsaPrivateKey, ca_index: int, issuer: RsaPrivateKey, icc: RsaPrivateKey, pan: str,
    expiry: str, psn: str, country: str, aip: bytes, issuer_expiry: str = "1249",
    serial: bytes = b"\x00\x00\x01",
) -> CardCertificates:
    """Certify ``issuer`` under ``ca`` and ``icc`` under ``issuer`` for one card (Book 2 Tables 6, 14).

    The static data the ICC certificate covers is :func:`static_record`'s value (SFI 2 is in
    the range 1-10, so the template's value is hashed) followed by the AIP, as 9F4A asks.
    ``expiry`` is the card's YYMM; certificates carry MMYY.
    """
    record = static_record(pan=pan, expiry=expiry, psn=psn, country=country)
    static = record[3:] if record[1] == 0x81 else record[2:]
    issuer_cert, issuer_rem = issue_issuer_certificate(
        ca, issuer.public, issuer_identifier=pan[:6], expiry=issuer_expiry, serial=serial)
    icc_cert, icc_rem = issue_icc_certificate(
        issuer, icc.public, pan=pan, expiry=expiry[2:] + expiry[:2], serial=serial,
        static_data=static + aip)
    return CardCertificates(ca_index, issuer_cert, issuer_rem, issuer.public.exponent, icc_cert, icc_rem,
                            icc.public.exponent, record, icc)
