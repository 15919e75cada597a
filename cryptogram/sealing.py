"""Sealing a JSON document to a device's P-256 public key, and opening it on the device.

Envelope (version 1), a JSON object whose binary members are unpadded base64url
(RFC 4648 §5)::

    {
      "alg": "ECDH-ES+HKDF-SHA256+A256GCM",
      "kid": "<hex: first 16 bytes of SHA-256 of the recipient's uncompressed point>",
      "epk": "<base64url: the ephemeral P-256 public key, uncompressed point 04‖X‖Y, 65 bytes>",
      "iv":  "<base64url: 12-byte AES-GCM nonce>",
      "ct":  "<base64url: AES-256-GCM ciphertext ‖ 16-byte tag of the UTF-8 JSON document>"
    }

Algorithm: an ephemeral key pair ``(e, E)`` on P-256; ``Z = ECDH(e, R)`` with the recipient's
public key ``R`` (SEC 1 v2 §3.3.1); ``K = HKDF-SHA256(Z, salt = empty, info = "hcekit-seal-v1" ‖
E ‖ R, 32 bytes)`` (RFC 5869); ``ct = AES-256-GCM(K, iv, document, aad = alg ‖ "." ‖ kid)``
(NIST SP 800-38D). Binding ``E`` and ``R`` into the HKDF info ties the key to both parties.

The service seals (:func:`seal`) and the device wallet opens (:func:`open_sealed`): the one
algorithm lives here, beside the other mathematics that card and issuer share.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cryptogram.errors import CryptogramError

ALG = "ECDH-ES+HKDF-SHA256+A256GCM"
"""The envelope's ``alg``."""

_INFO = b"hcekit-seal-v1"


class SealingError(CryptogramError, ValueError):
    """A public key or an envelope is malformed, or the envelope fails authentication."""


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def aes256_key(text: str) -> bytes | None:
    """The AES-256 key that ``text`` holds as base64 (RFC 4648 §4, no other characters), or
    ``None`` when it is not exactly 32 bytes so encoded: how a key at rest (the device wallet's,
    the service's vault keys) is written in the environment.

    >>> len(aes256_key("A" * 43 + "="))
    32
    >>> aes256_key("AAAA") is None, aes256_key("A" * 42 + "!=") is None
    (True, True)
    """
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError:
        return None
    return key if len(key) == 32 else None


def point_bytes(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The uncompressed point ``04‖X‖Y`` (SEC 1 v2 §2.3.3), 65 bytes."""
    return public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """First 16 bytes of SHA-256 of the uncompressed point, as hex (the envelope's ``kid``)."""
    return hashlib.sha256(point_bytes(public_key)).hexdigest()[:32]


def load_public_key(text: str | bytes) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from PEM (SubjectPublicKeyInfo) or base64/base64url of the uncompressed point."""
    raw = text.encode() if isinstance(text, str) else text
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(raw)
        else:
            cleaned = b"".join(raw.split())
            try:
                point = base64.b64decode(cleaned + b"=" * (-len(cleaned) % 4), validate=True)
            except binascii.Error:
                point = base64.urlsafe_b64decode(cleaned + b"=" * (-len(cleaned) % 4))
            if len(point) != 65 or point[0] != 0x04:
                raise SealingError("public key must be an uncompressed P-256 point (65 bytes, 04‖X‖Y)")
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except SealingError:
        raise
    except Exception as exc:
        raise SealingError("public key is neither PEM nor a base64 uncompressed P-256 point") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SealingError("public key is not on P-256")
    return key


def _derive(shared: bytes, epk: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO + epk + recipient).derive(shared)


def seal(public_key: ec.EllipticCurvePublicKey, document: dict[str, Any]) -> dict[str, str]:
    """Seal a JSON-serialisable document to ``public_key``; the envelope described above."""
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    epk = point_bytes(ephemeral.public_key())
    recipient = point_bytes(public_key)
    key = _derive(ephemeral.exchange(ec.ECDH(), public_key), epk, recipient)
    kid = key_id(public_key)
    iv = os.urandom(12)
    plaintext = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    ct = AESGCM(key).encrypt(iv, plaintext, f"{ALG}.{kid}".encode())
    return {"alg": ALG, "kid": kid, "epk": _b64e(epk), "iv": _b64e(iv), "ct": _b64e(ct)}


def open_sealed(private_key: ec.EllipticCurvePrivateKey, envelope: dict[str, Any]) -> dict[str, Any]:
    """Open an envelope made by :func:`seal` with the recipient's private key; the document.

    >>> device = ec.generate_private_key(ec.SECP256R1())
    >>> open_sealed(device, seal(device.public_key(), {"pan": "4895370000000006"}))
    {'pan': '4895370000000006'}
    """
    if not isinstance(envelope, dict) or envelope.get("alg") != ALG:
        raise SealingError(f"envelope alg must be {ALG}")
    try:
        epk = _b64d(str(envelope["epk"]))
        iv = _b64d(str(envelope["iv"]))
        ct = _b64d(str(envelope["ct"]))
        kid = str(envelope.get("kid", ""))
        ephemeral = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), epk)
    except (KeyError, ValueError, binascii.Error) as exc:
        raise SealingError("envelope members are malformed") from exc
    recipient = point_bytes(private_key.public_key())
    key = _derive(private_key.exchange(ec.ECDH(), ephemeral), epk, recipient)
    try:
        plaintext = AESGCM(key).decrypt(iv, ct, f"{ALG}.{kid}".encode())
    except Exception as exc:
        raise SealingError("envelope failed authentication (wrong key or tampered)") from exc
    document: dict[str, Any] = json.loads(plaintext)
    return document
