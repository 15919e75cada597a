"""The card's files: the PPSE directory, the application's FCI and its records by SFI.

Everything here is computed once from a :class:`~hce.profile.CardProfile` and is plain bytes,
so the applet answers SELECT and READ RECORD by lookup.

Sources: EMV Contactless Book B §3.3 (the PPSE's FCI with its directory entries 61 → 4F, 50,
87, 9F2A), EMV 4.4 Book 1 §11.3.4 (FCI of an ADF: 6F → 84, A5 → 50, 87, 9F38, 5F2D, BF0C),
EMV 4.4 Book 3 §10.2 (AFL; records are template 70) and Annex A (data elements), ISO/IEC 7813
(the track 2 layout inside tag 57).
"""

from __future__ import annotations

from dataclasses import dataclass

from apdu.command import PPSE
from apdu.formats import encode_cn, encode_n
from apdu.pan import encode_track2
from apdu.tlv import TLV, tlv
from cryptogram.cvc3 import DISCRETIONARY, NATC, PCVC3, PUNATC, track2_template
from hce.profile import CardProfile

__all__ = ["ODA_AFL", "CardFiles", "afl", "build_files", "track2_equivalent"]

SERVICE_CODE = "201"
"""Track 2 service code: international, integrated circuit; normal authorization (ISO/IEC 7813)."""


def track2_equivalent(profile: CardProfile) -> bytes:
    """Tag 57: PAN ‖ D ‖ YYMM ‖ service code ‖ discretionary data, padded with F (ISO/IEC 7813).

    The discretionary data is the PSN's last digit and zeros, as VCPS tokens carry it.
    """
    return encode_track2(profile.pan, f"{profile.expiry}{SERVICE_CODE}{profile.psn[-1]}0000000")


@dataclass(frozen=True, slots=True)
class CardFiles:
    """The precomputed answers: PPSE FCI, application FCI, and records by (SFI, number)."""

    ppse_fci: bytes
    app_fci: bytes
    records: dict[tuple[int, int], bytes]
    track2: bytes


def _expiry_date(profile: CardProfile) -> bytes:
    """5F24 Application Expiration Date, YYMMDD: the last day of the month (any 31 is accepted)."""
    return encode_n(profile.expiry + "31", 3)


#: The AFL entries a card with a certificate chain adds: SFI 2 record 1 (signed, for ODA) and
#: SFI 3 records 1-4 (the certificates, not for ODA) (EMV 4.4 Book 3 §10.2).
ODA_AFL = bytes.fromhex("10010101" "18010400")


#: Mag-stripe mode (Book C-2): the record of SFI 1 that holds the mag-stripe data, and the bitmaps
#: of the 13-digit discretionary data of both tracks: CVC3 in 3 digits, UN and ATC in 8 (NATC 2,
#: so the terminal makes 6 UN digits); the last digit is left for nUN.
MAGSTRIPE_AFL = bytes.fromhex("08010100")
MAGSTRIPE_DD = DISCRETIONARY


def afl(profile: CardProfile) -> bytes:
    """The AFL the card answers GPO with: the profile's, plus :data:`ODA_AFL` when it has a chain;
    in mag-stripe mode, the mag-stripe record."""
    if profile.magstripe:
        return MAGSTRIPE_AFL
    return profile.afl + (ODA_AFL if profile.oda is not None else b"")


def magstripe_tracks(profile: CardProfile) -> tuple[bytes, bytes]:
    """The Track 1 (56, ASCII) and Track 2 (9F6B) templates of mag-stripe mode (ISO/IEC 7813)."""
    track1 = f"B{profile.pan}^TEST/CARD^{profile.expiry}{SERVICE_CODE}{MAGSTRIPE_DD}".encode("ascii")
    return track1, track2_template(profile.pan, profile.expiry, SERVICE_CODE)


def _magstripe_record(profile: CardProfile) -> bytes:
    """The mag-stripe record (Book C-2 Annex A): version, tracks, bitmaps, UDOL."""
    track1, track2 = magstripe_tracks(profile)
    return tlv(0x70, [
        tlv(0x9F6C, bytes.fromhex("0001")),
        tlv(0x56, track1),
        tlv(0x9F62, PCVC3.rjust(6, b"\x00")), tlv(0x9F63, PUNATC.rjust(6, b"\x00")),
        tlv(0x9F64, bytes((NATC,))),
        tlv(0x9F6B, track2),
        tlv(0x9F65, PCVC3), tlv(0x9F66, PUNATC), tlv(0x9F67, bytes((NATC,))),
        tlv(0x9F69, bytes.fromhex("9F6A04")),
    ]).to_bytes()


def _oda_records(profile: CardProfile) -> dict[tuple[int, int], bytes]:
    """The signed static record (SFI 2) and the certificates (SFI 3) (EMV 4.4 Book 2 §5-§6)."""
    oda = profile.oda
    if oda is None:
        return {}
    second = [tlv(0x8F, bytes((oda.ca_index,))), tlv(0x9F32, oda.issuer_exponent)]
    if oda.issuer_remainder:
        second.append(tlv(0x92, oda.issuer_remainder))
    fourth = [tlv(0x9F47, oda.icc_exponent)]
    if oda.icc_remainder:
        fourth.append(tlv(0x9F48, oda.icc_remainder))
    return {
        (2, 1): oda.static_record,
        (3, 1): tlv(0x70, [tlv(0x90, oda.issuer_certificate)]).to_bytes(),
        (3, 2): tlv(0x70, second).to_bytes(),
        (3, 3): tlv(0x70, [tlv(0x9F46, oda.icc_certificate)]).to_bytes(),
        (3, 4): tlv(0x70, fourth).to_bytes(),
    }


def _records(profile: CardProfile, track2: bytes) -> dict[tuple[int, int], bytes]:
    if profile.magstripe:
        return {(1, 1): _magstripe_record(profile)}
    pan = encode_cn(profile.pan)
    signed: list[TLV] = [
        tlv(0x5A, pan),
        tlv(0x5F24, _expiry_date(profile)),
        tlv(0x5F28, encode_n(profile.issuer_country, 2)),
        tlv(0x5F34, encode_n(profile.psn, 1)),
    ]
    common: list[TLV] = [
        *(signed if profile.oda is None else []),
        tlv(0x9F42, encode_n(profile.currency, 2)),
        tlv(0x9F08, profile.app_version),
    ]
    if profile.kernel == "visa":
        first = [tlv(0x57, track2), *common]
        records = {(1, 1): tlv(0x70, first).to_bytes()}
    else:
        first = [tlv(0x57, track2), tlv(0x5F20, b"/")]
        second = [
            *common,
            tlv(0x8C, profile.cdol1),
            tlv(0x8D, bytes.fromhex("910A8A0295059F37049F4C08")),
            tlv(0x8E, bytes.fromhex("000000000000000042031E031F03")),
            tlv(0x9F07, bytes.fromhex("FFC0")),
        ]
        records = {(1, 1): tlv(0x70, first).to_bytes(), (1, 2): tlv(0x70, second).to_bytes()}
    return {**records, **_oda_records(profile)}


def build_files(profile: CardProfile) -> CardFiles:
    """The PPSE FCI, the application FCI and the records of ``profile``.

    >>> from hce.testcard import builtin_profile
    >>> files = build_files(builtin_profile("visa", now=0))
    >>> files.ppse_fci[:2].hex().upper(), sorted(files.records)
    ('6F32', [(1, 1)])
    """
    label = profile.label.encode("ascii")
    entry = tlv(0x61, [
        tlv(0x4F, profile.aid),
        tlv(0x50, label),
        tlv(0x87, bytes((profile.priority,))),
        tlv(0x9F2A, profile.kernel_id),
    ])
    ppse_fci = tlv(0x6F, [tlv(0x84, PPSE), tlv(0xA5, [tlv(0xBF0C, [entry])])]).to_bytes()
    proprietary: list[TLV] = [tlv(0x50, label), tlv(0x87, bytes((profile.priority,)))]
    if profile.pdol:
        proprietary.append(tlv(0x9F38, profile.pdol))
    proprietary.append(tlv(0x5F2D, b"en"))
    app_fci = tlv(0x6F, [tlv(0x84, profile.aid), tlv(0xA5, proprietary)]).to_bytes()
    track2 = track2_equivalent(profile)
    return CardFiles(ppse_fci, app_fci, _records(profile, track2), track2)
