"""The PAN vault: AES-256-GCM under versioned keys, with a keyed HMAC fingerprint.

Each funding PAN is stored once (:class:`~tsp_backend.models.VaultEntry`): the ciphertext and
its 96-bit random nonce (NIST SP 800-38D §8.2.2), the version of the key that encrypted it, and
``HMAC-SHA256(fingerprint_key, PAN)`` (RFC 2104) so the same card is found again without
decrypting anything. The fingerprint is bound into the GCM associated data, so a ciphertext
cannot be moved to another row. :meth:`Vault.rotate` re-encrypts every entry under the newest key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tsp_backend.models import VaultEntry, utcnow


class VaultError(Exception):
    """A vault entry cannot be decrypted (unknown key version or tampered data)."""


def derive_subkey(secret: bytes, label: str, length: int = 32) -> bytes:
    """A purpose-bound key from the service secret (HKDF-SHA256, RFC 5869).

    >>> len(derive_subkey(b"secret", "pan-fingerprint"))
    32
    """
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=label.encode()).derive(secret)


class Vault:
    """Encrypts, fingerprints and stores funding PANs."""

    def __init__(self, keys: Mapping[int, bytes], fingerprint_key: bytes) -> None:
        if not keys:
            raise ValueError("the vault needs at least one key")
        self.keys = dict(keys)
        self.active_version = max(self.keys)
        self._fingerprint_key = fingerprint_key

    def fingerprint(self, pan: str) -> str:
        """``HMAC-SHA256(fingerprint_key, PAN)`` as hex (64 characters)."""
        return hmac.new(self._fingerprint_key, pan.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def _aad(fingerprint: str) -> bytes:
        return b"hcekit-vault-v1|" + fingerprint.encode()

    def encrypt(self, pan: str, fingerprint: str) -> tuple[int, bytes, bytes]:
        """``(key_version, nonce, ciphertext)`` of a PAN under the active key."""
        nonce = os.urandom(12)
        ciphertext = AESGCM(self.keys[self.active_version]).encrypt(
            nonce, pan.encode(), self._aad(fingerprint)
        )
        return self.active_version, nonce, ciphertext

    def decrypt(self, entry: VaultEntry) -> str:
        """The PAN of an entry (raises :class:`VaultError`, never showing data)."""
        key = self.keys.get(entry.key_version)
        if key is None:
            raise VaultError(f"vault key version {entry.key_version} is not configured")
        try:
            plain = AESGCM(key).decrypt(entry.nonce, entry.ciphertext, self._aad(entry.fingerprint))
        except Exception as exc:
            raise VaultError(f"vault entry {entry.id} failed authentication") from exc
        return plain.decode()

    def store(self, session: Session, pan: str) -> VaultEntry:
        """The entry for ``pan``: found by fingerprint, or created (safe under concurrency)."""
        fingerprint = self.fingerprint(pan)
        existing = session.scalar(select(VaultEntry).where(VaultEntry.fingerprint == fingerprint))
        if existing is not None:
            return existing
        version, nonce, ciphertext = self.encrypt(pan, fingerprint)
        entry = VaultEntry(fingerprint=fingerprint, key_version=version, nonce=nonce, ciphertext=ciphertext)
        try:
            with session.begin_nested():
                session.add(entry)
        except IntegrityError:
            found = session.scalar(select(VaultEntry).where(VaultEntry.fingerprint == fingerprint))
            if found is None:
                raise
            return found
        return entry

    def rotate(self, session: Session, batch: int = 500) -> int:
        """Re-encrypt every entry not under the active key; the number re-encrypted."""
        count = 0
        while True:
            entries = session.scalars(
                select(VaultEntry)
                .where(VaultEntry.key_version != self.active_version)
                .order_by(VaultEntry.id)
                .limit(batch)
            ).all()
            if not entries:
                return count
            for entry in entries:
                pan = self.decrypt(entry)
                entry.key_version, entry.nonce, entry.ciphertext = self.encrypt(pan, entry.fingerprint)
                entry.rotated_at = utcnow()
                count += 1
            session.flush()
