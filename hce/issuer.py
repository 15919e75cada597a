"""The issuer's answers to the card: issuer scripts and the ARPC (EXTERNAL AUTHENTICATE).

A chip card receives them from the terminal in the same session as its ARQC; an HCE card has
left the field by then, so the wallet delivers them later, from the token service, to the same
applet. Both are bound to the card's last online cryptogram (its ATC, ARQC and the limited-use
key that made it, :class:`hce.cryptograms.OnlineCryptogram`) and are accepted only when no
other tap is under way (state ``IDLE`` or ``COMPLETED``)::

    84 1E 00 00  APPLICATION BLOCK      (EMV 4.4 Book 3 §6.5.1)   MAC only
    84 18 00 00  APPLICATION UNBLOCK    (Book 3 §6.5.2)            MAC only
    84 DA 9F 6B  PUT DATA Card CVM Limit (Book 3 §6.5.10)          enciphered n12 + MAC
    00 82 00 00  EXTERNAL AUTHENTICATE  (Book 3 §6.5.4)            tag 91 value: ARPC ‖ ARC / CSU

Status words: 6988 a script whose MAC fails (Book 2 §9.2: a script for another transaction, or
altered); 6985 no online cryptogram to answer, a tap under way, a script the card already
applied for this transaction, or a second EXTERNAL AUTHENTICATE for it (Book 3 §6.5.4.4); 6300
an ARPC that does not verify (Book 3 §6.5.4.4); 6A80 enciphered data that does not decipher;
6700 issuer authentication data of a length the card's ARPC method does not give.
An ARPC that verifies marks the last online authorization as confirmed by the issuer
(:attr:`~hce.applet.CardApplet.confirmed_atc`).

What the issuer's answers leave on the card (blocked, CVM limit, the confirmed ATC) and the
online cryptogram they may still answer are kept by the card's counter store
(:meth:`~hce.keys.CounterStore.save_issuer_state`): made durable before the ARQC leaves the
card and before a script or an ARPC is answered 9000 (6581 when they cannot be), and read back
when a card is made from the wallet again (:func:`restore`), so a script delivered by a later
sync finds the card where the tap left it.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from apdu.command import CommandAPDU
from apdu.formats import decode_n
from apdu.sw import SW
from cryptogram import scripts
from cryptogram.errors import CryptogramError
from hce.cryptograms import OnlineCryptogram
from hce.errors import CounterStoreError
from hce.states import State

if TYPE_CHECKING:
    from hce.applet import CardApplet

__all__ = ["SCRIPT_INS", "external_authenticate", "issuer_script", "remember", "restore", "state_of"]

#: Issuer script commands the card accepts with secure messaging: APPLICATION BLOCK, UNBLOCK, PUT DATA.
SCRIPT_INS = frozenset({0x1E, 0x18, 0xDA})

_SW_OK = SW.NO_ERROR.encoded


def state_of(card: CardApplet) -> dict[str, Any]:
    """The card's issuer state as a JSON object (never a key: the limited-use key by its index)."""
    last = card.last_online
    online = None if last is None else {
        "atc": last.atc.hex(), "arqc": last.arqc.hex(), "luk": last.luk_index, "un": last.un.hex(),
        "authenticated": last.authenticated, "scripts": sorted(mac.hex() for mac in last.scripts_applied),
    }
    return {"blocked": card.blocked, "cvmLimit": card.cvm_limit, "confirmedAtc": card.confirmed_atc,
            "online": online}


def remember(card: CardApplet) -> bool:
    """Make the card's issuer state durable; ``False`` when the store cannot."""
    try:
        card.counters.save_issuer_state(state_of(card))
    except CounterStoreError:
        return False
    return True


def restore(card: CardApplet) -> None:
    """Read the issuer state back (a new applet over the same store). The online cryptogram comes
    back only if it is still the card's last (its ATC the store's last online ATC) and its
    limited-use key is still in the profile."""
    state = card.counters.issuer_state
    if not state:
        return
    card.blocked = bool(state.get("blocked", False))
    card.cvm_limit = int(state.get("cvmLimit", card.cvm_limit))
    confirmed = state.get("confirmedAtc")
    card.confirmed_atc = int(confirmed) if confirmed is not None else None
    online = state.get("online")
    if not isinstance(online, dict):
        return
    atc = bytes.fromhex(online["atc"])
    key = next((k.key for k in card.profile.luks if k.index == online["luk"]), None)
    if key is None or int.from_bytes(atc, "big") != card.counters.last_online_atc:
        return
    card.last_online = OnlineCryptogram(
        atc, bytes.fromhex(online["arqc"]), key, int(online["luk"]), bytes.fromhex(online["un"]),
        online.get("authenticated"), {bytes.fromhex(mac) for mac in online.get("scripts", [])},
    )


def _durable(card: CardApplet, before: dict[str, Any], answer: bytes) -> bytes:
    """``answer`` once the new issuer state is durable; else the state before and 6581."""
    if remember(card):
        return answer
    _apply(card, before)   # the store kept ``before``: the card goes back to it
    return SW.MEMORY_FAILURE.encoded


def _apply(card: CardApplet, state: dict[str, Any]) -> None:
    card.blocked, card.cvm_limit = state["blocked"], state["cvmLimit"]
    card.confirmed_atc = state["confirmedAtc"]
    last, online = card.last_online, state["online"]
    if last is not None and online is not None:
        last.authenticated = online["authenticated"]
        last.scripts_applied = {bytes.fromhex(mac) for mac in online["scripts"]}


def _answerable(card: CardApplet) -> OnlineCryptogram | None:
    """The online cryptogram the issuer may answer now, or ``None`` (no ARQC yet, a tap under way)."""
    if card.state not in (State.IDLE, State.COMPLETED):
        return None
    return card.last_online


def issuer_script(card: CardApplet, raw: bytes) -> bytes:
    """Apply one script command (module docstring); the status word."""
    last = _answerable(card)
    if last is None:
        return SW.CONDITIONS_OF_USE_NOT_SATISFIED.encoded
    mac_key, enc_key = scripts.session_keys(last.key, last.atc)
    body = scripts.verify_script(raw, mac_key=mac_key, atc=last.atc, cryptogram=last.arqc)
    if body is None:
        return SW.INCORRECT_SM_DATA_OBJECTS.encoded
    mac = raw[-scripts.MAC_LENGTH:]
    if mac in last.scripts_applied:
        return SW.CONDITIONS_OF_USE_NOT_SATISFIED.encoded
    before = state_of(card)
    ins, p1, p2 = raw[1], raw[2], raw[3]
    if ins == 0x1E:
        card.blocked = True
    elif ins == 0x18:
        card.blocked = False
    elif (p1, p2) == (0x9F, 0x6B):
        try:
            value = scripts.decipher(enc_key, body, scripts.scheme_for_kernel(card.profile.kernel))
        except ValueError:
            return SW.INCORRECT_DATA.encoded
        amount = decode_n(value[:6]) if len(value) >= 6 else None
        if amount is None:
            return SW.INCORRECT_DATA.encoded
        card.cvm_limit = amount
    else:
        return SW.REFERENCED_DATA_NOT_FOUND.encoded
    last.scripts_applied.add(mac)
    return _durable(card, before, _SW_OK)


def external_authenticate(card: CardApplet, command: CommandAPDU, now: float | None) -> bytes:
    """EXTERNAL AUTHENTICATE with the issuer authentication data (tag 91) of the last ARQC."""
    if command.p1 or command.p2:
        return SW.INCORRECT_P1_P2.encoded
    last = _answerable(card)
    if last is None or last.authenticated is not None:
        return SW.CONDITIONS_OF_USE_NOT_SATISFIED.encoded
    data = command.data
    cvn = card.cvn
    if cvn.arpc_method == 1:
        if len(data) != 10:
            return SW.WRONG_LENGTH.encoded
        options = {"arc": data[8:10]}
    else:
        if not 8 <= len(data) <= 16:
            return SW.WRONG_LENGTH.encoded
        options = {"csu": data[4:8], "proprietary_auth_data": data[8:]}
    try:
        expected = cvn.issuer_authentication_data(last.key, {0x9F36: last.atc, 0x9F37: last.un},
                                                  last.arqc, **options)
    except CryptogramError:
        expected = b""
    before = state_of(card)
    last.authenticated = hmac.compare_digest(expected, data)
    if not last.authenticated:
        return _durable(card, before, SW.WARNING_STATE_CHANGED.encoded)
    card.confirmed_atc = int.from_bytes(last.atc, "big")
    return _durable(card, before, _SW_OK)
