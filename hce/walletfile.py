"""The device wallet's files: the wallet key and the encrypted wallet document.

:mod:`hce.wallet` keeps the document in memory and calls :func:`read_document` once and
:func:`write_document` after every change; this module alone touches the files.

Where the wallet key lives, and why
-----------------------------------
A phone keeps such a key in its platform keystore (Android Keystore, the Secure Enclave), out
of reach of the files it protects. A PC has no such place that works everywhere, so the key is
``HCEKIT_WALLET_KEY`` (base64 of 32 bytes) when set -- kept in a secret manager or an agent,
apart from the data -- and otherwise the file ``wallet.key``, readable by its owner only. Either
way ``wallet.enc`` alone (a backup, a synced folder, a copied disk image) reveals nothing: the
token PANs, the limited-use keys, the device key and the session token are all inside it. The
document is authenticated (GCM, with the associated data ``hcekit-wallet-v1``), so a tampered
file is refused rather than loaded.

The counters are the one thing outside the encrypted document. They hold no secret (an ATC and
use counts), they must be written durably before every cryptogram (EMV 4.4 Book 3 Annex A1:
an ATC is never used twice), and :class:`~hce.keys.FileCounterStore` does exactly that with an
atomic rename per reservation. Rolling them back buys nothing: the store never goes below the
profile's ATC, and the issuer refuses an ATC it has seen.

Every write of ``wallet.enc`` is atomic (temporary file, ``fsync``, ``rename``): a crash leaves
the old wallet or the new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cryptogram.sealing import aes256_key
from hce.errors import WalletError, WalletLocked

__all__ = ["DOC_FILE", "KEY_ENV", "KEY_FILE", "atomic_write", "load_key", "read_document", "write_document"]

KEY_ENV = "HCEKIT_WALLET_KEY"
"""Environment variable holding the wallet key (base64 of 32 bytes), instead of ``wallet.key``."""

DOC_FILE = "wallet.enc"
"""The wallet document, AES-256-GCM: 12-byte nonce ‖ ciphertext ‖ tag."""

KEY_FILE = "wallet.key"
"""The wallet key when :data:`KEY_ENV` is not set: 32 random bytes, mode 0600."""

_AAD = b"hcekit-wallet-v1"


def atomic_write(path: Path, payload: bytes, *, mode: int = 0o600) -> None:
    """Write ``payload`` to ``path`` so that a reader sees the old or the new file, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fp:
            fp.write(payload)
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_key(path: Path, *, create: bool) -> bytes:
    """The wallet key of directory ``path``: :data:`KEY_ENV`, else :data:`KEY_FILE` (made if ``create``)."""
    env = os.environ.get(KEY_ENV)
    if env:
        key = aes256_key(env)
        if key is None:
            raise WalletError(f"{KEY_ENV} must be base64 of 32 bytes")
        return key
    key_file = path / KEY_FILE
    if key_file.exists():
        key = key_file.read_bytes()
        if len(key) != 32:
            raise WalletError(f"{key_file} is not a 32-byte key")
        return key
    if not create:
        raise WalletError(f"{key_file} is missing: the wallet cannot be opened without its key")
    key = AESGCM.generate_key(bit_length=256)
    atomic_write(key_file, key, mode=0o600)
    return key


def read_document(path: Path, key: bytes) -> dict[str, Any]:
    """The document in :data:`DOC_FILE` of ``path``, decrypted; :class:`WalletLocked` if ``key`` fails."""
    doc_file = path / DOC_FILE
    try:
        blob = doc_file.read_bytes()
    except OSError as exc:
        raise WalletError(f"cannot read {doc_file}: {exc.strerror or exc}") from None
    if len(blob) < 12 + 16:
        raise WalletError(f"{doc_file} is truncated")
    try:
        plaintext = AESGCM(key).decrypt(blob[:12], blob[12:], _AAD)
    except Exception:
        raise WalletLocked(f"the wallet key does not open {doc_file} (wrong key or tampered file)") from None
    try:
        document = json.loads(plaintext)
    except ValueError:
        raise WalletError(f"{doc_file} does not hold a wallet document") from None
    if not isinstance(document, dict) or document.get("version") != 1:
        raise WalletError(f"{doc_file} holds an unknown wallet version")
    return document


def write_document(path: Path, aead: AESGCM, document: dict[str, Any]) -> None:
    """Encrypt ``document`` under a fresh nonce and replace :data:`DOC_FILE` in ``path`` atomically."""
    nonce = os.urandom(12)
    blob = nonce + aead.encrypt(nonce, json.dumps(document, sort_keys=True).encode(), _AAD)
    try:
        atomic_write(path / DOC_FILE, blob)
    except OSError as exc:
        raise WalletError(f"cannot write the wallet in {path}: {exc.strerror or exc}") from None
