"""Card keys: the token's ICC master key and its limited-use keys, derived on demand.

The issuer master key (IMK) of the token BIN range is configuration; the token master key is
``derive_icc_mk(IMK, token PAN, PSN)`` (EMV 4.4 Book 2 Annex A1.4, option A for PANs of up to
16 digits) and limited-use key *i* is ``derive_luk(token_mk, i)`` (see :mod:`cryptogram.luk`).
Neither is stored: the authorization service derives them again from the IMK. Only the LUKs
leave the service, sealed to the device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptogram.derive import derive_icc_mk
from cryptogram.luk import derive_luk_batch


class KeyConfigError(LookupError):
    """No issuer master key covers a token PAN (a configuration error)."""


def issuer_master_key(keys: Mapping[str, bytes], token_pan: str) -> bytes:
    """The IMK whose BIN prefix is the longest prefix of ``token_pan``."""
    best = max((prefix for prefix in keys if token_pan.startswith(prefix)), key=len, default=None)
    if best is None:
        raise KeyConfigError("no issuer master key is configured for this token BIN range")
    return keys[best]


def token_master_key(keys: Mapping[str, bytes], token_pan: str, psn: str = "00") -> bytes:
    """The token's ICC master key (EMV 4.4 Book 2 Annex A1.4)."""
    return derive_icc_mk(issuer_master_key(keys, token_pan), token_pan, psn)


def luk_batch(
    keys: Mapping[str, bytes],
    token_pan: str,
    psn: str,
    *,
    first_index: int,
    count: int,
    max_uses: int,
    not_after: int,
) -> list[dict[str, Any]]:
    """Limited-use keys ``first_index … first_index+count-1`` as card-profile ``luks`` entries."""
    batch = derive_luk_batch(
        token_master_key(keys, token_pan, psn), first_index, count, max_uses=max_uses, not_after=not_after
    )
    return [
        {
            "index": luk.index,
            "key": luk.key.hex().upper(),
            "max_uses": luk.max_uses,
            "not_after": luk.not_after,
        }
        for luk in batch
    ]
