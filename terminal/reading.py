"""Initiate application processing and read its data: GPO, the AFL, READ RECORD (EMV 4.4 Book 3
§10.1-10.2).

The kernel's actions for the GPO and READ RECORD states of :data:`terminal.kernel.TRANSITIONS`.
After the last record, :func:`next_record_or_decide` picks the path: mag-stripe mode
(:mod:`terminal.magstripe`), qVSDC with the cryptogram already in hand, or offline data
authentication (:mod:`terminal.authentication`) then GENERATE AC.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apdu.command import CommandAPDU, ReadRecord
from apdu.response import ResponseAPDU
from apdu.tlv import decode, to_dict
from terminal import oda
from terminal.authentication import ca_table, internal_authenticate, record_oda, static_data, visa_decide
from terminal.magstripe import compute_checksum
from terminal.outcome import Outcome
from terminal.selection import select_next

if TYPE_CHECKING:
    from terminal.kernel import Kernel

__all__ = ["needs_phone", "next_record_or_decide", "on_gpo", "on_gpo_error", "on_record", "parse_afl",
           "parse_afl_oda"]


def needs_phone(pci: bytes) -> bool:
    """POS Cardholder Interaction Information (DF4B) AND '00030F' is not zero (Book C-2 §S910)."""
    padded = pci.ljust(3, b"\x00")
    return bool(padded[1] & 0x03 or padded[2] & 0x0F)


def parse_afl_oda(afl: bytes) -> list[tuple[int, int, bool]] | None:
    """Like :func:`parse_afl`, each record with whether it takes part in offline data authentication.

    >>> parse_afl_oda(bytes.fromhex("08010201"))
    [(1, 1, True), (1, 2, False)]
    """
    records = parse_afl(afl)
    if records is None:
        return None
    out: list[tuple[int, int, bool]] = []
    for i in range(0, len(afl), 4):
        sfi, first, last, count = afl[i] >> 3, afl[i + 1], afl[i + 2], afl[i + 3]
        out.extend((sfi, r, r < first + count) for r in range(first, last + 1))
    return out


def parse_afl(afl: bytes) -> list[tuple[int, int]] | None:
    """The (SFI, record) pairs an Application File Locator names, or ``None`` if it is malformed.

    EMV 4.4 Book 3 §10.2: four bytes per entry (SFI << 3, first record, last record, records
    for offline data authentication); SFI 1..30, first record >= 1, last >= first.

    >>> parse_afl(bytes.fromhex("08010200 10010100"))
    [(1, 1), (1, 2), (2, 1)]
    >>> parse_afl(bytes.fromhex("080201")) is None
    True
    """
    if len(afl) % 4:
        return None
    out: list[tuple[int, int]] = []
    for i in range(0, len(afl), 4):
        sfi, first, last, oda = afl[i] >> 3, afl[i + 1], afl[i + 2], afl[i + 3]
        if not 1 <= sfi <= 30 or first == 0 or last < first or oda > last - first + 1:
            return None
        out.extend((sfi, r) for r in range(first, last + 1))
    return out


def on_gpo(k: Kernel, response: ResponseAPDU) -> CommandAPDU | None:
    """Read the AIP and AFL, format 1 (80) or 2 (77) (EMV 4.4 Book 3 §6.5.8.4)."""
    nodes = decode(response.data)
    if len(nodes) == 1 and nodes[0].tag == 0x80:
        body = nodes[0].value
        if len(body) < 2:
            return k._finish(Outcome.END_APPLICATION, "GPO response format 1 without an AIP")
        k.card[0x82], k.card[0x94] = body[:2], body[2:]
    elif len(nodes) == 1 and nodes[0].tag == 0x77:
        for tag, value in to_dict(nodes).items():
            k.card[tag] = value
    else:
        return k._finish(Outcome.END_APPLICATION, "GPO response is neither format 1 (80) nor 2 (77)")
    if 0x82 not in k.card:
        return k._finish(Outcome.END_APPLICATION, "GPO response without an AIP (82)")
    records = parse_afl_oda(k.card.get(0x94, b""))
    if records is None:
        return k._finish(Outcome.END_APPLICATION, "the AFL (94) is malformed")
    k._records = records
    aip = k.card[0x82]
    assert k.candidate is not None
    k._magstripe = k.candidate.kernel == "mastercard" and len(aip) >= 2 and not aip[1] & 0x80
    return next_record_or_decide(k)


def on_gpo_error(k: Kernel, response: ResponseAPDU) -> CommandAPDU | None:
    """GPO refused: Mastercard selects the next application (C-2), Visa ends (C-3 §5.2.2)."""
    if k.candidate is not None and k.candidate.kernel == "mastercard":
        return select_next(k)
    return k._finish(Outcome.END_APPLICATION, f"GET PROCESSING OPTIONS answered {response.sw_hex}")


def on_record(k: Kernel, response: ResponseAPDU) -> CommandAPDU | None:
    """Keep a record's data; a record is a 70 template (EMV 4.4 Book 3 §10.2)."""
    sfi, for_oda = k._reading
    if for_oda:
        k._oda_records.append((sfi, response.data))
    nodes = decode(response.data)
    if not nodes or nodes[0].tag != 0x70:
        return k._finish(Outcome.END_APPLICATION, "a record is not a 70 template")
    for tag, value in to_dict(nodes).items():
        k.card.setdefault(tag, value)
    return next_record_or_decide(k)


def next_record_or_decide(k: Kernel) -> CommandAPDU | None:
    if k._records:
        sfi, record, for_oda = k._records.pop(0)
        k._reading = (sfi, for_oda)
        return ReadRecord(sfi, record)
    assert k.candidate is not None
    k._method = oda.choose_method(
        k.card.get(0x82, b""), k.config.capabilities, k.candidate.kernel, k.card)
    if k._magstripe:
        return compute_checksum(k)
    if k.candidate.kernel == "visa":
        if 0x9F26 not in k.card:
            return k._finish(Outcome.END_APPLICATION, "qVSDC: the GPO response carried no cryptogram")
        return visa_decide(k)
    if 0x9F26 in k.card:
        return k._decide_by_cryptogram()
    if k._method == "sda":
        record_oda(k, oda.perform_sda(ca_table(k), k.card, static_data(k), k.transaction.date))
    elif k._method == "dda":
        return internal_authenticate(k)
    elif k._method is None:
        record_oda(k, oda.NOT_PERFORMED)
    return k._generate_ac()
