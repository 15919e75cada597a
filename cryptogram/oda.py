"""Offline data authentication: certificate and signature formats, and signing them.

EMV 4.4 Book 2 §5 (static data authentication) and §6 (dynamic data authentication) chain
three RSA keys: the certification authority's (the terminal holds it, by RID and index), the
issuer's (certified by the CA in 90, with remainder 92 and exponent 9F32) and the card's (ICC,
certified by the issuer in 9F46, with remainder 9F48 and exponent 9F47). Each certificate and
signature is one block as long as the signer's modulus::

    6A | format | … fields … | pad BB… | SHA-1 (20) | BC

with format ``02`` issuer certificate (Table 6), ``04`` ICC certificate (Table 14), ``03``
signed static application data (Table 7, tag 93) and ``05`` signed dynamic application data
(Table 17, tag 9F4B) -- ``95`` when a Visa card signs it for fDDA (a real card's 9F4B in
``tests/data/traces/visa_qvsdc.jsonl`` carries 95). This module builds and signs the blocks,
for the card and for the token service that certifies it, and issues a card its chain;
:mod:`cryptogram.oda_recover` recovers them and runs the checks of §5.3-§6.6 (the terminal's
side), and :func:`cryptogram.rsa.roca_fingerprint` looks for weak keys.

The variants of dynamic authentication differ only in what is signed:

- DDA (§6.5): INTERNAL AUTHENTICATE; the terminal dynamic data is the DDOL data;
- fDDA (Visa Contactless Book C-3 Annex C): the signature comes with the GPO response; the
  terminal data is the unpredictable number (9F37), and for fDDA version ``01`` also the
  amount (9F02), the currency (5F2A) and the card authentication related data (9F69);
- CDA (§6.6): the signature comes with GENERATE AC; the terminal data is the unpredictable
  number, and the ICC dynamic data carries the cryptogram information data, the application
  cryptogram and a SHA-1 over the PDOL data, CDOL data and the response's other data objects.

Expiry dates in certificates are MMYY; this module reads no clock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum

from apdu.errors import EncodeError
from apdu.formats import encode_cn, encode_n
from cryptogram.errors import InvalidInput
from cryptogram.rsa import RsaPrivateKey, RsaPublicKey

__all__ = [
    "ODA_AIP",
    "CardCertificates",
    "Reason",
    "block_hash",
    "cda_dynamic_data",
    "cda_transaction_hash",
    "issue_card",
    "issue_icc_certificate",
    "issue_issuer_certificate",
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


def block_hash(*parts: bytes) -> bytes:
    """The Hash Result of a block: SHA-1 over ``parts`` in order (Book 2 Annex B3.1)."""
    h = hashlib.sha1()  # noqa: S324 - EMV Book 2 Annex B3.1 mandates SHA-1
    for part in parts:
        h.update(part)
    return h.digest()


def cda_transaction_hash(pdol_data: bytes, cdol_data: bytes, response_objects: bytes) -> bytes:
    """The transaction data hash code (Book 2 §6.6.1): SHA-1 over PDOL data, CDOL data and the
    GENERATE AC response's data objects other than 9F4B, each TLV as the card sent it, in order."""
    return block_hash(pdol_data, cdol_data, response_objects)


# -- signing ----------------------------------------------------------------------------------


def _sign(key: RsaPrivateKey, body: bytes, *tail: bytes) -> bytes:
    """``6A | body | SHA-1(body, tail…) | BC`` signed with ``key``; ``body`` starts at the format."""
    if len(body) != key.length - 22:
        raise InvalidInput(f"block body is {len(body)} bytes, {key.length - 22} needed")
    return key.sign(bytes([HEADER]) + body + block_hash(body, *tail) + bytes([TRAILER]))


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


_CHAIN = {FORMAT_ISSUER: ("issuer", "CA", 4), FORMAT_ICC: ("ICC", "issuer", 10)}
"""Per certificate format: the certified key, its certifier, and the identity's length in bytes."""


def _certificate(
    signer: RsaPrivateKey, key: RsaPublicKey, fmt: int, identity: str, expiry: str, serial: bytes,
    *hashed: bytes,
) -> tuple[bytes, bytes]:
    """A public key certificate and its remainder (Book 2 Tables 6 and 14, one layout)."""
    subject, authority, id_len = _CHAIN[fmt]
    if key.length > signer.length:
        raise InvalidInput(f"the {subject} key is longer than the {authority} key")
    if len(serial) != 3:
        raise InvalidInput("serial must be 3 bytes")
    left, remainder = _split_key(key, signer.length - 32 - id_len)
    body = (bytes([fmt]) + _f_padded(identity, id_len) + _mmyy(expiry) + serial
            + bytes([SHA1, RSA, key.length, len(key.exponent)]) + left)
    return _sign(signer, body, remainder, key.exponent, *hashed), remainder


def issue_issuer_certificate(
    ca: RsaPrivateKey, issuer_key: RsaPublicKey, *, issuer_identifier: str, expiry: str, serial: bytes,
) -> tuple[bytes, bytes]:
    """The issuer public key certificate (90) and remainder (92) (Book 2 Table 6)."""
    return _certificate(ca, issuer_key, FORMAT_ISSUER, issuer_identifier, expiry, serial)


def issue_icc_certificate(
    issuer: RsaPrivateKey, icc_key: RsaPublicKey, *, pan: str, expiry: str, serial: bytes,
    static_data: bytes,
) -> tuple[bytes, bytes]:
    """The ICC public key certificate (9F46) and remainder (9F48) (Book 2 Table 14)."""
    return _certificate(issuer, icc_key, FORMAT_ICC, pan, expiry, serial, static_data)


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
            **{name: getattr(self, name).hex().upper() for name in _HEX_FIELDS},
            "icc_key": self.icc_key.to_pem().decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> CardCertificates:
        """The inverse of :meth:`to_dict`; :class:`InvalidInput` names a bad field."""
        try:
            ca_index = int(data["ca_index"], 16)
            fields = {name: bytes.fromhex(data.get(name, "") if name in _OPTIONAL else data[name])
                      for name in _HEX_FIELDS}
            icc_key = RsaPrivateKey.from_pem(data["icc_key"].encode("ascii"))
        except (KeyError, ValueError, AttributeError) as exc:
            raise InvalidInput(f"oda: {type(exc).__name__} in field {exc}") from None
        return cls(ca_index, icc_key=icc_key, **fields)


_HEX_FIELDS = ("issuer_certificate", "issuer_remainder", "issuer_exponent", "icc_certificate",
               "icc_remainder", "icc_exponent", "static_record")
"""The fields of :class:`CardCertificates` that a profile carries in hex, in its order."""
_OPTIONAL = frozenset({"issuer_remainder", "icc_remainder"})


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
