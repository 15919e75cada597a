"""Offline data authentication in the tap: SDA, DDA, fDDA and CDA wired into the kernel.

The checks themselves are :mod:`terminal.oda` (EMV 4.4 Book 2 §5-6); these are the kernel's
steps around them: when to send INTERNAL AUTHENTICATE (DDA, Book 3 §6.5.9), how the qVSDC path
decides after fDDA (Book C-3 §5.4, Annex C), how a GENERATE AC response's CDA signature is
checked (Book 2 §6.6.2), and how a result is written into the TVR (95) and TSI (9B).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apdu.cid import CID_TYPE_MASK
from apdu.command import CommandAPDU, InternalAuthenticate
from apdu.dol import build_dol_data
from apdu.response import ResponseAPDU
from apdu.sw import SW
from apdu.tlv import TLV, decode, to_dict
from cryptogram.oda import cda_transaction_hash
from terminal import oda
from terminal.capk import CaKeyTable
from terminal.outcome import Outcome

if TYPE_CHECKING:
    from terminal.kernel import Kernel

__all__ = ["ca_table", "check_cda", "internal_authenticate", "on_internal_authenticate", "record_oda",
           "static_data", "visa_decide"]


def visa_decide(k: Kernel) -> CommandAPDU | None:
    """qVSDC after the records (Book C-3 §5.4, Annex C): fDDA when the card signed, then decide.

    The TVR the card's cryptogram covers is the one sent with GPO, so the result is recorded
    in the outcome and the TSI only. A failed fDDA on an offline approval (TC) goes online when
    the card's CTQ (9F6C byte 1 bit 6) asks for it, and is declined otherwise.
    """
    if k._method == "fdda":
        result = oda.perform_dynamic(
            ca_table(k), k.card, static_data(k), k.transaction.date,
            sdad=k.card.get(0x9F4B, b""),
            terminal_data=oda.fdda_terminal_data(k.card, k.terminal), method="fdda")
        k.oda = result
        k.terminal[0x9B] = oda.tsi(k.terminal.get(0x9B, b"\x00\x00"), result)
        cid = k.card.get(0x9F27, b"\x80")[0] & CID_TYPE_MASK
        if not result.passed and cid == 0x40:
            ctq = k.card.get(0x9F6C, b"\x00")
            if ctq[0] & 0x20:
                return k._finish(Outcome.ONLINE_REQUEST, f"fDDA failed ({result.reason}): the card "
                                 "asks to go online", cryptogram="TC")
            return k._finish(Outcome.DECLINED, f"fDDA failed: {result.reason}", cryptogram="TC")
    else:
        k.oda = oda.NOT_PERFORMED
    return k._decide_by_cryptogram()


def internal_authenticate(k: Kernel) -> CommandAPDU | None:
    """INTERNAL AUTHENTICATE with the DDOL data, default DDOL 9F3704 (Book 3 §6.5.9, Book 2 §6.5.1)."""
    ddol = k.card.get(0x9F49) or bytes.fromhex("9F3704")
    data = build_dol_data(ddol, {**k.card, **k.terminal}, format_of=k._format_of)
    k._ddol_data = data
    return InternalAuthenticate(data)


def on_internal_authenticate(k: Kernel, response: ResponseAPDU) -> CommandAPDU | None:
    """The DDA signature (format 1: 80, format 2: 77 with 9F4B), checked before GENERATE AC."""
    sdad = b""
    if response.sw == SW.NO_ERROR:
        nodes = decode(response.data)
        if len(nodes) == 1 and nodes[0].tag == 0x80:
            sdad = nodes[0].value
        elif len(nodes) == 1 and nodes[0].tag == 0x77:
            sdad = to_dict(nodes).get(0x9F4B, b"")
    result = oda.perform_dynamic(ca_table(k), k.card, static_data(k), k.transaction.date,
                                 sdad=sdad, terminal_data=k._ddol_data, method="dda")
    record_oda(k, result)
    if result.passed:
        k.terminal[0x9F4C] = result.icc_dynamic_number
    return k._generate_ac()


def check_cda(k: Kernel, data: bytes, nodes: list[TLV]) -> oda.OdaResult | None:
    """Verify CDA on a GENERATE AC response and take the cryptogram from it (Book 2 §6.6.2).

    An AAC may come without a signature (the card declined): ``None``, nothing checked. A TC or
    ARQC without one, or any failed check, is a failed result, and the kernel declines the tap
    (Book C-2 §S910; Book 3 §10.3).
    """
    cid = k.card.get(0x9F27, b"")
    sdad = k.card.get(0x9F4B, b"")
    if not sdad and cid[:1] and cid[0] & CID_TYPE_MASK == 0x00:
        return None
    objects = b""
    if len(nodes) == 1 and nodes[0].tag == 0x77:
        template = nodes[0]
        start = template.offset
        for child in template.children:
            end = child.offset + len(child.value)
            if child.tag != 0x9F4B:
                objects += data[start:end]
            start = end
    result = oda.perform_cda(
        ca_table(k), k.card, static_data(k), k.transaction.date, sdad=sdad,
        unpredictable_number=k.terminal.get(0x9F37, b""), cid=cid,
        transaction_hash=cda_transaction_hash(k._pdol_data, k._cdol_data, objects))
    record_oda(k, result)
    if result.passed:
        k.card[0x9F26] = result.cryptogram
        k.card[0x9F4C] = result.icc_dynamic_number
    return result


def record_oda(k: Kernel, result: oda.OdaResult) -> None:
    k.oda = result
    k.terminal[0x95] = oda.tvr(k.terminal[0x95], result)
    k.terminal[0x9B] = oda.tsi(k.terminal.get(0x9B, b"\x00\x00"), result)


def static_data(k: Kernel) -> bytes | None:
    return oda.static_data(k._oda_records, k.card)


def ca_table(k: Kernel) -> CaKeyTable:
    if k._ca_keys is None:
        k._ca_keys = _builtin_table()
    return k._ca_keys



_BUILTIN: list[CaKeyTable] = []


def _builtin_table() -> CaKeyTable:
    """The shipped CA key table, loaded (and its checksums verified) once per process."""
    if not _BUILTIN:
        _BUILTIN.append(CaKeyTable.builtin())
    return _BUILTIN[0]
