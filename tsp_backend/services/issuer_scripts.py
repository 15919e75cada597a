"""Issuer scripts the token service makes for a card after an authorization (EMV 4.4 Book 2 §9).

After an online authorization the issuer may send script commands back with its answer: block or
unblock the application, or change a card parameter with enciphered data (here the Card CVM
Limit, 9F6B, PUT DATA). Each command is MACed over the authorization's ATC and ARQC under session
keys of the limited-use key that made the ARQC (:mod:`cryptogram.scripts`), so the card applies it
only in answer to that transaction. This module builds them from what authorization already
knows (token PAN, PSN, key index, ATC, ARQC); how they travel back to the device is the wallet's
channel, as for the ARPC.
"""

from __future__ import annotations

from collections.abc import Mapping

from apdu.formats import encode_n
from cryptogram.luk import derive_luk
from cryptogram.scripts import scheme_for_kernel, script_command, session_keys
from tsp_backend.services import keys as card_keys

__all__ = ["ACTIONS", "script_for"]

#: Script actions: name -> (INS, P1, P2) of the command (Book 3 §6.5.1, §6.5.2, §6.5.10).
ACTIONS: dict[str, tuple[int, int, int]] = {
    "block": (0x1E, 0x00, 0x00),
    "unblock": (0x18, 0x00, 0x00),
    "cvm_limit": (0xDA, 0x9F, 0x6B),
}


def script_for(
    issuer_master_keys: Mapping[str, bytes], *, token_pan: str, psn: str, network_kernel: str,
    luk_index: int, atc: bytes, arqc: bytes, action: str, amount: int | None = None,
) -> bytes:
    """The script command for ``action`` answering the authorization (``atc``, ``arqc``)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown script action {action!r}")
    tmk = card_keys.token_master_key(issuer_master_keys, token_pan, psn)
    mac_key, enc_key = session_keys(derive_luk(tmk, luk_index), atc)
    ins, p1, p2 = ACTIONS[action]
    if action != "cvm_limit":
        return script_command(0x84, ins, p1, p2, mac_key=mac_key, atc=atc, cryptogram=arqc)
    if amount is None or not 0 <= amount <= 999_999_999_999:
        raise ValueError("cvm_limit needs an amount in minor units")
    data = encode_n(amount, 6)
    return script_command(0x84, ins, p1, p2, data, mac_key=mac_key, enc_key=enc_key, atc=atc,
                          cryptogram=arqc, scheme=scheme_for_kernel(network_kernel))
