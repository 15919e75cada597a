"""Limited-use keys: how a phone makes cryptograms without ever holding a master key.

A card in a secure element keeps its ICC master key for years; a phone emulating a card in
software (host card emulation) must not. The token service provider (TSP) therefore gives the
phone a bounded batch of *limited-use keys* (LUKs), each good for a few transactions and a short
time, and keeps the only long-lived key — the token master key — on the issuer side.

The scheme
==========

1. The token master key TMK is the ICC master key of the token PAN: the issuer derives it from
   its issuer master key with the usual EMV derivation (option A/B, :mod:`cryptogram.derive`).
   It never leaves the issuer side.
2. Limited-use key number *i* (1 ≤ i ≤ 65535) is::

       B_L = 4C 55 A5 5A ‖ i (4 bytes, big-endian)
       B_R = 4C 55 5A A5 ‖ i
       LUK_i = parity( DES3(TMK)[B_L] ‖ DES3(TMK)[B_R] )

   This cannot collide with any other derivation made under the same key. The EMV common
   and the Mastercard session key derivations (Book 2 A1.3) encrypt blocks whose third byte is
   ``F0`` or ``0F``; ours are ``A5`` or ``5A``. Option A/B master key derivation (A1.4)
   encrypts BCD digits (every nibble 0–9) or their complement (every nibble 6–F); our first
   byte ``4C`` has a nibble from each side, so it is neither.
3. The TSP sends the device a batch of :class:`LimitedUseKey` values — index, key,
   ``max_uses`` and ``not_after`` (Unix seconds) — sealed to the device.
4. The card applet uses LUK_i *in place of the ICC master key* in its cryptogram version: the
   session key is derived from LUK_i and the ATC by the CVN's usual rule, and the cryptogram is
   computed as always. It writes *i* into the Issuer Application Data (where:
   :mod:`cryptogram.cvn`).
5. The issuer reads *i* from 9F10, re-derives LUK_i from the TMK with :func:`derive_luk`, and
   verifies the ARQC with the standard CVN mathematics (``profile.verify(luk, tlvs, arqc)``).

Enforcement
===========

This module gives the mathematics and the value type. Refusing a key past ``not_after`` or
after ``max_uses`` transactions is the job of the card applet (which stops using it) and of the
TSP (which declines a cryptogram made with an expired or over-used index and replenishes the
batch). A stolen LUK is worth at most ``max_uses`` transactions before ``not_after``.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptogram._ciphers import cached_ecb, check_key
from cryptogram.derive import adjust_parity
from cryptogram.errors import InvalidInput, InvalidKey

__all__ = ["MAX_LUK_INDEX", "LimitedUseKey", "derive_luk", "derive_luk_batch"]

MAX_LUK_INDEX = 0xFFFF
"""The largest limited-use key index (two bytes in the Issuer Application Data)."""

_PREFIX_LEFT = bytes.fromhex("4C55A55A")
_PREFIX_RIGHT = bytes.fromhex("4C555AA5")


def _check_index(index: int) -> None:
    if isinstance(index, bool) or not isinstance(index, int) or not 1 <= index <= MAX_LUK_INDEX:
        raise InvalidInput(f"limited-use key index must be an integer from 1 to {MAX_LUK_INDEX}")


def derive_luk(token_mk: bytes, index: int) -> bytes:
    """Limited-use key number ``index`` of the token master key (the scheme in the module essay).

    ``token_mk`` is a 16- or 24-byte triple DES key; the LUK is 16 bytes with odd DES parity.
    """
    check_key(token_mk, "tdes", "token master key")
    _check_index(index)
    suffix = index.to_bytes(4, "big")
    return adjust_parity(cached_ecb(token_mk, "tdes").update(_PREFIX_LEFT + suffix + _PREFIX_RIGHT + suffix))


@dataclass(frozen=True)
class LimitedUseKey:
    """One limited-use key as the device holds it; ``repr`` never shows the key.

    ``not_after`` is a Unix time in seconds; ``max_uses`` the number of cryptograms the key
    may make.
    """

    index: int
    key: bytes = field(repr=False)
    max_uses: int
    not_after: int

    def __post_init__(self) -> None:
        _check_index(self.index)
        if not isinstance(self.key, bytes) or len(self.key) != 16:
            raise InvalidKey("limited-use key must be 16 bytes")
        if self.max_uses < 1:
            raise InvalidInput("max_uses must be at least 1")
        if self.not_after < 0:
            raise InvalidInput("not_after must be a Unix time in seconds")

    def matches(self, key: bytes) -> bool:
        """Whether ``key`` is this key (constant-time compare)."""
        return hmac.compare_digest(self.key, bytes(key))

    def to_dict(self) -> dict[str, Any]:
        """The card profile's form: ``{"index", "key" (uppercase hex), "max_uses", "not_after"}``."""
        return {"index": self.index, "key": self.key.hex().upper(), "max_uses": self.max_uses,
                "not_after": self.not_after}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LimitedUseKey:
        """The inverse of :meth:`to_dict`; raises :class:`InvalidInput` on a malformed entry."""
        try:
            key = bytes.fromhex(str(data["key"]))
            return cls(int(data["index"]), key, int(data["max_uses"]), int(data["not_after"]))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, (InvalidInput, InvalidKey)):
                raise
            message = "limited-use key entry needs index, key (hex), max_uses and not_after"
            raise InvalidInput(message) from None


def derive_luk_batch(
    token_mk: bytes, first_index: int, count: int, *, max_uses: int, not_after: int
) -> list[LimitedUseKey]:
    """``count`` consecutive limited-use keys from ``first_index``, each with its limits."""
    if count < 1:
        raise InvalidInput("count must be at least 1")
    _check_index(first_index)
    _check_index(first_index + count - 1)
    return [
        LimitedUseKey(index, derive_luk(token_mk, index), max_uses, not_after)
        for index in range(first_index, first_index + count)
    ]
