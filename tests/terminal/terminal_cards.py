"""Scripted contactless cards, shaped after real cards' answers.

The data layouts follow the kernel books and what public traces of real cards show: a Visa
qVSDC card answers GPO in format 2 (77) with its cryptogram, Track 2 equivalent data and a
7-byte CVN 10 IAD (EMV Contactless Book C-3 §5.2, Annex A); a Mastercard M/Chip card answers
GPO in format 1 (80: AIP 1980, AFL) and gives the cryptogram to GENERATE AC with an 18-byte
IAD (Book C-2 §5). PANs are the public EMVCo/network test PANs 4761739001010010 (Visa) and
5413330089010434 (Mastercard, M-TIP), never real ones.
"""

from __future__ import annotations

from apdu.tlv import TLV, encode, tlv
from terminal.kernel import Kernel
from terminal.transports.base import Transport

VISA_AID = "A0000000031010"
MC_AID = "A0000000041010"
MAESTRO_AID = "A0000000043060"
SELECT_PPSE = "00A404000E325041592E5359532E4444463031"
VISA_PDOL = "9F66049F02069F03069F1A0295055F2A029A039C019F3704"
MC_CDOL1 = "9F02069F03069F1A0295055F2A029A039C019F37049F35019F45029F4C089F3403"


def t(tag: int, value: str | bytes | list[TLV]) -> TLV:
    """A data object from hex, bytes or children."""
    if isinstance(value, str):
        value = bytes.fromhex(value)
    return tlv(tag, value)


def ok(*nodes: TLV) -> str:
    """A 9000 response carrying ``nodes``, as hex."""
    return encode(nodes).hex().upper() + "9000"


def ppse(*entries: tuple[str, str, int | None, str | None]) -> str:
    """The PPSE FCI with directory entries (AID, label, priority, kernel id) (Book B §3.3.2)."""
    dir_entries = []
    for aid, label, priority, kernel_id in entries:
        inner = [t(0x4F, aid), t(0x50, label.encode())]
        if priority is not None:
            inner.append(t(0x87, f"{priority:02X}"))
        if kernel_id is not None:
            inner.append(t(0x9F2A, kernel_id))
        dir_entries.append(t(0x61, inner))
    return ok(t(0x6F, [t(0x84, b"2PAY.SYS.DDF01"), t(0xA5, [t(0xBF0C, dir_entries)])]))


def select_aid(aid: str, label: str, pdol: str | None = None) -> str:
    """The FCI of an application (EMV 4.4 Book 1 §11.3.4)."""
    props = [t(0x50, label.encode()), t(0x87, "01")]
    if pdol:
        props.append(t(0x9F38, pdol))
    return ok(t(0x6F, [t(0x84, aid), t(0xA5, props)]))


VISA_TRACK2 = "4761739001010010D29122011234567890123F"
VISA_GPO = ok(t(0x77, [
    t(0x82, "2000"),
    t(0x94, "18010100"),
    t(0x57, VISA_TRACK2),
    t(0x5F34, "00"),
    t(0x9F10, "06010A03A00000"),
    t(0x9F26, "1D2E3F4A5B6C7D8E"),
    t(0x9F27, "80"),
    t(0x9F36, "0001"),
    t(0x9F6C, "0000"),
    t(0x9F6E, "20700000"),
]))
VISA_RECORD = ok(t(0x70, [t(0x5F24, "291231"), t(0x5A, "4761739001010010"), t(0x5F28, "0840")]))


def visa_card(gpo: str = VISA_GPO) -> list[tuple[str | None, str]]:
    """A Visa qVSDC card: PPSE, SELECT, GPO with the ARQC, one READ RECORD."""
    return [
        (SELECT_PPSE, ppse((VISA_AID, "VISA CREDIT", 1, "03"))),
        ("00A4040007" + VISA_AID, select_aid(VISA_AID, "VISA CREDIT", VISA_PDOL)),
        ("80A80000", gpo),
        ("00B2011C", VISA_RECORD),
    ]


MC_GPO = ok(t(0x80, "1880" + "08010100" + "10010200"))   # AIP: no offline data authentication
MC_RECORD_1 = ok(t(0x70, [t(0x57, "5413330089010434D29122010000000000000F"), t(0x5F20, b"TEST/CARD")]))
MC_RECORD_2 = ok(t(0x70, [
    t(0x8C, MC_CDOL1), t(0x5A, "5413330089010434"), t(0x5F24, "291231"), t(0x5F34, "01"),
]))
MC_RECORD_3 = ok(t(0x70, [t(0x8E, "000000000000000042031E031F03"), t(0x9F07, "FF00")]))
MC_IAD = "0110A04001220000000000000000000000FF"


def mc_gen_ac(cid: str = "80") -> str:
    """A GENERATE AC answer in format 2 (Book C-2 §5.4.3)."""
    return ok(t(0x77, [
        t(0x9F27, cid), t(0x9F36, "0002"), t(0x9F26, "8899AABBCCDDEEFF"), t(0x9F10, MC_IAD),
    ]))


def mc_card(gen_ac: str | None = None) -> list[tuple[str | None, str]]:
    """A Mastercard M/Chip card: PPSE, SELECT, GPO (format 1), three records, GENERATE AC."""
    return [
        (SELECT_PPSE, ppse((MC_AID, "MASTERCARD", 1, "02"))),
        ("00A4040007" + MC_AID, select_aid(MC_AID, "MASTERCARD")),
        ("80A8000002830000", MC_GPO),
        ("00B2010C", MC_RECORD_1),
        ("00B20114", MC_RECORD_2),
        ("00B20214", MC_RECORD_3),
        ("80AE8000", gen_ac or mc_gen_ac()),
    ]


def drive(kernel: Kernel, card: Transport) -> list[bytes]:
    """Run ``kernel`` against ``card`` to its outcome; the commands it sent, in order."""
    sent: list[bytes] = []
    command = kernel.start()
    while command is not None:
        sent.append(command.to_bytes())
        command = kernel.receive(card.transmit(sent[-1]))
    return sent
