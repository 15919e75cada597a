"""Offline data authentication re-checked from a recorded session, from its bytes alone.

``hcekit oda verify`` reads a trace (command and response APDUs as they crossed the wire) and
asks this module what the terminal should have concluded: it rebuilds the card's data objects
from the SELECT, GET PROCESSING OPTIONS, READ RECORD, INTERNAL AUTHENTICATE and GENERATE AC
responses, the terminal's own contributions from the commands (PDOL, DDOL and CDOL1 data, EMV
4.4 Book 3 §5.4 and §6.5), the static data from the records the AFL marks for ODA (Book 3
§10.3), and then performs the method the session shows with :mod:`terminal.oda`: fDDA when GPO
returned a signature (Visa Book C-3 Annex C), CDA when GENERATE AC did (Book 2 §6.6), DDA for
INTERNAL AUTHENTICATE, SDA when the card has signed static data, and the certificate chain alone
when it has an ICC certificate but signed nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from apdu.dol import split_dol_data
from apdu.errors import APDUError
from apdu.sw import SW
from apdu.tlv import decode, to_dict
from cryptogram.oda import cda_transaction_hash
from terminal.capk import CaKeyTable
from terminal.oda import (
    NOT_PERFORMED,
    OdaResult,
    check_chain,
    fdda_terminal_data,
    perform_cda,
    perform_dynamic,
    perform_sda,
    static_data,
)

__all__ = ["SessionCheck", "verify_session"]


@dataclass(frozen=True, slots=True)
class SessionCheck:
    """What :func:`verify_session` found: the kernel path, the method and the result."""

    kernel: str
    result: OdaResult
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"kernel": self.kernel, "notes": list(self.notes), **self.result.to_json()}


def _template(data: bytes) -> tuple[list[Any], dict[int, bytes]]:
    try:
        nodes = decode(data)
    except APDUError:
        return [], {}
    return nodes, to_dict(nodes)


def verify_session(
    exchanges: Iterable[tuple[bytes, bytes]], table: CaKeyTable, *, today: str | None = None,
) -> SessionCheck:
    """Re-check the offline data authentication of a recorded session, from its bytes alone.

    ``exchanges`` are (command, response) pairs as they crossed the wire (responses with their
    status word). The terminal's own contributions are read back from the commands: the PDOL
    data of GPO, the DDOL data of INTERNAL AUTHENTICATE, the CDOL1 data of GENERATE AC; the
    date is 9A from them unless ``today`` (YYMMDD) is given.
    """
    card: dict[int, bytes] = {}
    terminal: dict[int, bytes] = {}
    records: list[tuple[int, int, bytes]] = []
    pdol_data = cdol_data = ddol_data = b""
    gpo_sdad = ia_sdad = b""
    gen_ac: tuple[bytes, list[Any], bytes] | None = None
    cda_requested = False
    notes: list[str] = []
    for command, response in exchanges:
        if len(command) < 4 or len(response) < 2 or int.from_bytes(response[-2:], "big") != SW.NO_ERROR:
            continue
        ins, p1, p2, body = command[1], command[2], command[3], response[:-2]
        data = command[5:5 + command[4]] if len(command) > 5 else b""
        nodes, flat = _template(body)
        if ins == 0xA4 and flat.get(0x84, b"")[:5] != b"2PAY." and 0x84 in flat:
            card = {0x84: flat[0x84], 0x4F: flat[0x84]}
            card.update({t: v for t, v in flat.items() if t == 0x9F38})
            records.clear()
        elif ins == 0xA8:
            pdol_data = data[2:] if data[:1] == b"\x83" else b""
            if card.get(0x9F38):
                try:
                    terminal.update(split_dol_data(card[0x9F38], pdol_data))
                except APDUError:
                    notes.append("the GPO data does not fit the PDOL")
            if len(nodes) == 1 and nodes[0].tag == 0x80:
                card[0x82], card[0x94] = nodes[0].value[:2], nodes[0].value[2:]
            else:
                card.update(flat)
            gpo_sdad = flat.get(0x9F4B, b"")
        elif ins == 0xB2:
            records.append((p2 >> 3, p1, body))
            for tag, value in flat.items():
                card.setdefault(tag, value)
        elif ins == 0x88:
            ddol_data = data
            ia_sdad = nodes[0].value if len(nodes) == 1 and nodes[0].tag == 0x80 else flat.get(0x9F4B, b"")
        elif ins == 0xAE and gen_ac is None:
            cdol_data, cda_requested = data, bool(p1 & 0x10)
            if card.get(0x8C):
                try:
                    terminal.update(split_dol_data(card[0x8C], cdol_data))
                except APDUError:
                    notes.append("the GENERATE AC data does not fit CDOL1")
            gen_ac = (body, nodes, flat.get(0x9F4B, b""))
            for tag, value in flat.items():
                if tag != 0x9F4B:
                    card[tag] = value
    rid = card.get(0x84, b"")[:5]
    kernel = "visa" if rid == bytes.fromhex("A000000003") or gpo_sdad else "mastercard"
    date = today or (terminal.get(0x9A, b"").hex() or "")
    if len(date) != 6:
        notes.append("no transaction date (9A) in the session: certificates checked against 000101")
        date = "000101"
    flagged = _oda_flags(card.get(0x94, b""))
    static = static_data(((sfi, raw) for sfi, number, raw in records if (sfi, number) in flagged), card)
    if gpo_sdad:
        return SessionCheck(kernel, perform_dynamic(
            table, card, static, date, sdad=gpo_sdad, terminal_data=fdda_terminal_data(card, terminal),
            method="fdda"), tuple(notes))
    if gen_ac is not None and (gen_ac[2] or cda_requested):
        body, nodes, sdad = gen_ac
        objects = b""
        if len(nodes) == 1 and nodes[0].tag == 0x77:
            start = nodes[0].offset
            for child in nodes[0].children:
                end = child.offset + len(child.value)
                if child.tag != 0x9F4B:
                    objects += body[start:end]
                start = end
        if not cda_requested:
            notes.append("GENERATE AC did not ask for CDA (P1 bit 5) but the card signed")
        return SessionCheck(kernel, perform_cda(
            table, card, static, date, sdad=sdad, unpredictable_number=terminal.get(0x9F37, b""),
            cid=card.get(0x9F27, b""),
            transaction_hash=cda_transaction_hash(pdol_data, cdol_data, objects)), tuple(notes))
    if ia_sdad:
        return SessionCheck(kernel, perform_dynamic(table, card, static, date, sdad=ia_sdad,
                                                    terminal_data=ddol_data), tuple(notes))
    if card.get(0x93):
        return SessionCheck(kernel, perform_sda(table, card, static, date), tuple(notes))
    if card.get(0x9F46):
        notes.append("no dynamic signature in the session: the certificate chain alone is checked")
        return SessionCheck(kernel, check_chain(table, card, static, date), tuple(notes))
    return SessionCheck(kernel, NOT_PERFORMED, tuple(notes))


def _oda_flags(afl: bytes) -> set[tuple[int, int]]:
    out: set[tuple[int, int]] = set()
    for i in range(0, len(afl) - len(afl) % 4, 4):
        sfi, first, count = afl[i] >> 3, afl[i + 1], afl[i + 3]
        out.update((sfi, r) for r in range(first, first + count))
    return out
