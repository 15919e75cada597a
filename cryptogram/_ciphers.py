"""Block-cipher primitives shared by the modules of :mod:`cryptogram`.

Two-key triple DES keys (K1‖K2) are expanded to K1‖K2‖K1 before they reach ``cryptography``,
which deprecates 16-byte keys and moved TripleDES to ``cryptography.hazmat.decrepit``
(imported from there when available). Single DES is triple DES with K‖K‖K.

ECB encryptor contexts keyed by long-lived keys (issuer master keys, ICC master keys, limited-use
keys) are kept in a small per-thread cache: an ECB context holds no chaining state, so one
context serves any number of ``update`` calls, and building a context costs more than using it.
The cache is per thread because a context must not be used by two threads at once. Session keys
are never cached: each serves one transaction.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Literal

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from cryptogram.errors import InvalidKey

__all__ = ["TripleDES", "cached_ecb", "check_key", "clear_cache", "ecb", "tdes_key", "xor"]

try:
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - cryptography < 43
    TripleDES = algorithms.TripleDES  # type: ignore[attr-defined,misc,unused-ignore]

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers import CipherContext

Algorithm = Literal["tdes", "aes"]

TDES_KEY_LENGTHS = (16, 24)
AES_KEY_LENGTHS = (16, 24, 32)
_CACHE_SIZE = 64
_ECB = modes.ECB()  # noqa: S305 - EMV key derivation and MAC blocks are single-block ECB by definition
_local = threading.local()


def check_key(key: bytes, algorithm: str, what: str = "key") -> None:
    """Raise :class:`InvalidKey` unless ``key`` has a length ``algorithm`` accepts."""
    if not isinstance(key, (bytes, bytearray)):
        raise InvalidKey(f"{what} must be bytes, not {type(key).__name__}")
    if algorithm == "tdes":
        if len(key) not in TDES_KEY_LENGTHS:
            raise InvalidKey(f"{what} must be 16 or 24 bytes for triple DES, got {len(key)}")
    elif algorithm == "aes":
        if len(key) not in AES_KEY_LENGTHS:
            raise InvalidKey(f"{what} must be 16, 24 or 32 bytes for AES, got {len(key)}")
    else:
        raise InvalidKey(f"unknown algorithm {algorithm!r} (expected 'tdes' or 'aes')")


def tdes_key(key: bytes) -> bytes:
    """The 24-byte form of a 16- or 24-byte triple DES key (K1‖K2 becomes K1‖K2‖K1)."""
    return bytes(key) + bytes(key[:8]) if len(key) == 16 else bytes(key)


def _new_ecb(key: bytes, algorithm: str) -> CipherContext:
    if algorithm == "tdes":
        return Cipher(TripleDES(tdes_key(key)), _ECB).encryptor()
    return Cipher(algorithms.AES(bytes(key)), _ECB).encryptor()


def ecb(key: bytes, algorithm: str) -> CipherContext:
    """A fresh ECB encryptor for ``key`` (not cached: for session keys)."""
    return _new_ecb(key, algorithm)


def cached_ecb(key: bytes, algorithm: str) -> CipherContext:
    """An ECB encryptor for a long-lived ``key``, from this thread's small cache."""
    cache: dict[tuple[bytes, str], Any] | None = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    entry = (bytes(key), algorithm)
    context = cache.get(entry)
    if context is None:
        if len(cache) >= _CACHE_SIZE:
            del cache[next(iter(cache))]
        context = cache[entry] = _new_ecb(key, algorithm)
    return context  # type: ignore[no-any-return,unused-ignore]


def clear_cache() -> None:
    """Forget this thread's cached cipher contexts (and with them the keys they hold)."""
    _local.cache = {}


def xor(left: bytes, right: bytes) -> bytes:
    """Byte-wise exclusive or of two byte strings of the same length."""
    return (int.from_bytes(left, "big") ^ int.from_bytes(right, "big")).to_bytes(len(left), "big")
