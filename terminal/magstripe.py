"""Mag-stripe mode of a Mastercard tap (EMV Contactless Book C-2 §5.3): CVC3 into the tracks.

The kernel's actions for the COMPUTE CRYPTOGRAPHIC CHECKSUM state of
:data:`terminal.kernel.TRANSITIONS`: build the UDOL data with a numeric unpredictable number,
then write CVC3, UN, ATC and nUN into the tracks' discretionary data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from apdu.command import CommandAPDU, ComputeCryptographicChecksum
from apdu.dol import build_dol_data
from apdu.pan import encode_track2, split_track2
from apdu.response import ResponseAPDU
from apdu.tlv import decode, to_dict
from cryptogram import cvc3
from terminal.outcome import Outcome

if TYPE_CHECKING:
    from terminal.kernel import Kernel

__all__ = ["compute_checksum", "on_checksum", "write_tracks"]


def compute_checksum(k: Kernel) -> CommandAPDU | None:
    """Mag-stripe mode (Book C-2 §5.3, S12): COMPUTE CRYPTOGRAPHIC CHECKSUM with the UDOL data.

    The numeric unpredictable number (9F6A) has nUN random digits, nUN = set bits of
    PUNATC(Track2) (9F66) minus NATC(Track2) (9F67); the UDOL defaults to 9F6A04.
    """
    try:
        count = cvc3.nun(k.card.get(0x9F66, b""), k.card.get(0x9F67, b"\x00")[0])
    except ValueError:
        return k._finish(Outcome.END_APPLICATION, "mag-stripe: NATC exceeds PUNATC(Track2)")
    if 0x9F6B not in k.card or not 0 <= count <= 8:
        return k._finish(Outcome.END_APPLICATION, "mag-stripe: no Track 2 data or bad PUNATC")
    random = k._unpredictable(8)
    k._un_digits = "".join(str(b % 10) for b in random[:count]).rjust(8, "0")
    k.terminal[0x9F6A] = bytes.fromhex(k._un_digits)
    udol = k.card.get(0x9F69) or bytes.fromhex("9F6A04")
    data = build_dol_data(udol, {**k.card, **k.terminal}, format_of=k._format_of)
    return ComputeCryptographicChecksum(data)


def on_checksum(k: Kernel, response: ResponseAPDU) -> CommandAPDU | None:
    """CVC3 for each track: write CVC3, UN, ATC and nUN into the tracks' discretionary data."""
    values = to_dict(decode(response.data))
    if 0x9F61 not in values or 0x9F36 not in values:
        return k._finish(Outcome.END_APPLICATION, "COMPUTE CRYPTOGRAPHIC CHECKSUM returned no CVC3")
    k.card.update(values)
    try:
        write_tracks(k, values)
    except (ValueError, IndexError) as exc:
        return k._finish(Outcome.END_APPLICATION, f"mag-stripe data does not fit its bitmaps: {exc}")
    return k._finish(Outcome.ONLINE_REQUEST, "mag-stripe mode: the card returned CVC3",
                        cryptogram="CVC3")


def write_tracks(k: Kernel, values: Mapping[int, bytes]) -> None:
    atc = int.from_bytes(values[0x9F36], "big")
    parts = split_track2(k.card[0x9F6B])
    if parts is None:
        raise ValueError("Track 2 data (9F6B) is not PAN D digits")
    head, rest = parts
    dd = cvc3.encode_discretionary(
        rest[7:], pcvc3=k.card.get(0x9F65, b""), punatc=k.card.get(0x9F66, b""),
        natc=k.card.get(0x9F67, b"\x00")[0], cvc3_value=int.from_bytes(values[0x9F61], "big"),
        un=k._un_digits, atc=atc)
    k.card[0x9F6B] = encode_track2(head, f"{rest[:7]}{dd}")
    track1 = k.card.get(0x56)
    if track1 and 0x9F60 in values and b"^" in track1:
        name_end = track1.rfind(b"^") + 1
        static, dd1 = track1[:name_end + 7], track1[name_end + 7:].decode("ascii", "replace")
        dd1 = cvc3.encode_discretionary(
            dd1, pcvc3=k.card.get(0x9F62, b""), punatc=k.card.get(0x9F63, b""),
            natc=k.card.get(0x9F64, b"\x00")[0], cvc3_value=int.from_bytes(values[0x9F60], "big"),
            un=k._un_digits, atc=atc)
        k.card[0x56] = static + dd1.encode("ascii")
