"""``hcekit crypto``: EMV key derivation, cryptograms and ARPCs, hex in and hex out.

Each command prints its result as one line of uppercase hex; ``--json`` prints every
intermediate value as well (keys are shown with their key check values, for comparing with an
HSM). Library errors become one clear line and exit status 1; malformed options exit 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from apdu.errors import DecodeError
from apdu.tlv import decode, to_dict
from cli.common import HEX, fail, print_json
from cryptogram.ac import arpc_method1, arpc_method2, generate_ac
from cryptogram.cvn import ELEMENT_NAMES, PROFILES, profile
from cryptogram.derive import (
    Algorithm,
    derive_icc_mk_a,
    derive_icc_mk_b,
    derive_icc_mk_c,
    derive_session_key_emv,
    derive_session_key_mastercard,
    key_check_value,
)
from cryptogram.errors import CryptogramError
from cryptogram.luk import derive_luk
from cryptogram.mac import pad_iso9797_1, pad_iso9797_2

ALGORITHMS = click.Choice(["tdes", "aes"], case_sensitive=False)


def _algorithm(value: str) -> Algorithm:
    return "aes" if value.lower() == "aes" else "tdes"


def _hex(value: bytes) -> str:
    return value.hex().upper()


def _digits(what: str, lengths: tuple[int, int]) -> Any:
    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        cleaned = value.replace(" ", "")
        if not cleaned.isascii() or not cleaned.isdigit():
            raise click.BadParameter(f"{what} must be decimal digits")
        if not lengths[0] <= len(cleaned) <= lengths[1]:
            raise click.BadParameter(
                f"{what} must be {lengths[0]} to {lengths[1]} digits, got {len(cleaned)}"
            )
        return cleaned

    return check


PAN_OPTION = click.option(
    "--pan", required=True, callback=_digits("PAN", (8, 19)), metavar="DIGITS", help="Application PAN (5A)."
)
PSN_OPTION = click.option(
    "--psn",
    default="00",
    show_default=True,
    callback=_digits("PSN", (2, 2)),
    metavar="NN",
    help="PAN sequence number (5F34).",
)
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print every intermediate value as JSON.")


def _emit(result: bytes, details: Mapping[str, Any], as_json: bool) -> None:
    if as_json:
        print_json({**details, "result": _hex(result)})
    else:
        click.echo(_hex(result))


def _kcv(key: bytes, algorithm: str = "tdes") -> str:
    return _hex(key_check_value(key, _algorithm(algorithm)))


@click.group()
def crypto() -> None:
    """EMV cryptography: master and session keys, ARQC/TC/AAC, ARPC (EMV 4.4 Book 2)."""


@crypto.command("derive-mk")
@click.option(
    "--imk", required=True, type=HEX, metavar="HEX", help="Issuer master key (16/24 bytes; AES 16–32)."
)
@PAN_OPTION
@PSN_OPTION
@click.option(
    "--option",
    "option",
    type=click.Choice(["a", "b", "c"], case_sensitive=False),
    default=None,
    help="A, B (triple DES) or C (AES). Default: A up to 16 digits, B beyond.",
)
@JSON_OPTION
def derive_mk(imk: bytes, pan: str, psn: str, option: str | None, as_json: bool) -> None:
    """Derive the ICC master key from an issuer master key (EMV 4.4 Book 2 Annex A1.4).

    \b
    Example:
      hcekit crypto derive-mk --imk 0123456789ABCDEFFEDCBA9876543210 --pan 1234567890123456
    """
    chosen = (option or ("a" if len(pan) <= 16 else "b")).lower()
    try:
        if chosen == "c":
            mk = derive_icc_mk_c(imk, pan, psn)
        else:
            mk = (derive_icc_mk_a if chosen == "a" else derive_icc_mk_b)(imk, pan, psn)
    except CryptogramError as exc:
        raise fail(str(exc)) from None
    algorithm = "aes" if chosen == "c" else "tdes"
    details = {
        "method": f"EMV 4.4 Book 2 Annex A1.4 option {chosen.upper()}",
        "algorithm": algorithm,
        "pan_digits": len(pan),
        "psn": psn,
        "imk_kcv": _kcv(imk, algorithm),
        "mk": _hex(mk),
        "mk_kcv": _kcv(mk, algorithm),
    }
    _emit(mk, details, as_json)


@crypto.command("session-key")
@click.option("--mk", required=True, type=HEX, metavar="HEX", help="ICC master key.")
@click.option(
    "--atc", required=True, type=HEX, metavar="HEX", help="Application transaction counter (2 bytes)."
)
@click.option(
    "--un", type=HEX, metavar="HEX", default=None, help="Unpredictable number (4 bytes; mastercard)."
)
@click.option(
    "--method",
    type=click.Choice(["emv", "mastercard"], case_sensitive=False),
    default=None,
    help="EMV common derivation, or Mastercard (ATC and UN). Default: mastercard when --un is given.",
)
@click.option(
    "--algorithm", type=ALGORITHMS, default="tdes", show_default=True, help="Block cipher of the MK."
)
@JSON_OPTION
def session_key(
    mk: bytes, atc: bytes, un: bytes | None, method: str | None, algorithm: str, as_json: bool
) -> None:
    """Derive the session key for one transaction (EMV 4.4 Book 2 Annex A1.3)."""
    chosen = (method or ("mastercard" if un is not None else "emv")).lower()
    block = 16 if algorithm.lower() == "aes" else 8
    try:
        if chosen == "mastercard":
            if un is None:
                raise fail("--method mastercard needs --un (the 4-byte unpredictable number)")
            key = derive_session_key_mastercard(mk, atc, un)
            r = atc + b"\x00\x00" + un
        else:
            key = derive_session_key_emv(mk, atc, _algorithm(algorithm))
            r = atc + bytes(block - 2)
    except CryptogramError as exc:
        raise fail(str(exc)) from None
    details = {
        "method": chosen,
        "algorithm": algorithm.lower(),
        "mk_kcv": _kcv(mk, algorithm.lower()),
        "r": _hex(r),
        "left_block": _hex(r[:2] + b"\xf0" + r[3:]),
        "right_block": _hex(r[:2] + b"\x0f" + r[3:]),
        "session_key": _hex(key),
        "session_key_kcv": _kcv(key, algorithm.lower()),
    }
    if algorithm.lower() == "aes" and len(mk) == 16:
        del details["left_block"], details["right_block"]
    _emit(key, details, as_json)


@crypto.command("ac")
@click.option("--key", required=True, type=HEX, metavar="HEX", help="Session key (or MK for CVN 10).")
@click.option("--data", required=True, type=HEX, metavar="HEX", help="The cryptogram input data.")
@click.option(
    "--padding",
    type=click.Choice(["1", "2"]),
    default="1",
    show_default=True,
    help="ISO/IEC 9797-1 padding method (triple DES).",
)
@click.option("--algorithm", type=ALGORITHMS, default="tdes", show_default=True)
@JSON_OPTION
def ac(key: bytes, data: bytes, padding: str, algorithm: str, as_json: bool) -> None:
    """Compute the 8-byte application cryptogram over DATA (EMV 4.4 Book 2 §8.1)."""
    chosen = _algorithm(algorithm)
    try:
        cryptogram = generate_ac(key, data, int(padding), chosen)
    except CryptogramError as exc:
        raise fail(str(exc)) from None
    details: dict[str, Any] = {"algorithm": chosen, "key_kcv": _kcv(key, chosen), "data": _hex(data)}
    if chosen == "tdes":
        padded = pad_iso9797_1(data) if padding == "1" else pad_iso9797_2(data)
        details.update(padding=int(padding), padded_data=_hex(padded), mac="ISO/IEC 9797-1 algorithm 3")
    else:
        details.update(mac="AES-CMAC truncated to 8 bytes")
    details["cryptogram"] = _hex(cryptogram)
    _emit(cryptogram, details, as_json)


@crypto.command("arpc")
@click.option("--key", required=True, type=HEX, metavar="HEX", help="ARPC key (session key or MK, by CVN).")
@click.option("--arqc", required=True, type=HEX, metavar="HEX", help="The card's ARQC (8 bytes).")
@click.option("--arc", type=HEX, metavar="HEX", default=None, help="Method 1: authorisation response code.")
@click.option("--csu", type=HEX, metavar="HEX", default=None, help="Method 2: card status update (4 bytes).")
@click.option(
    "--pad", type=HEX, metavar="HEX", default=b"", help="Method 2: proprietary authentication data."
)
@click.option("--algorithm", type=ALGORITHMS, default="tdes", show_default=True)
@JSON_OPTION
def arpc(
    key: bytes, arqc: bytes, arc: bytes | None, csu: bytes | None, pad: bytes, algorithm: str, as_json: bool
) -> None:
    """Compute the ARPC by method 1 (--arc) or method 2 (--csu) (EMV 4.4 Book 2 §8.2)."""
    if (arc is None) == (csu is None):
        raise click.UsageError("give exactly one of --arc (method 1) or --csu (method 2)")
    chosen = _algorithm(algorithm)
    try:
        if arc is not None:
            value = arpc_method1(key, arqc, arc, chosen)
            iad91 = value + arc
        else:
            assert csu is not None
            value = arpc_method2(key, arqc, csu, pad, chosen)
            iad91 = value + csu + pad
    except CryptogramError as exc:
        raise fail(str(exc)) from None
    details = {
        "method": 1 if arc is not None else 2,
        "algorithm": chosen,
        "key_kcv": _kcv(key, chosen),
        "arqc": _hex(arqc),
        "arpc": _hex(value),
        "issuer_authentication_data": _hex(iad91),
    }
    _emit(value, details, as_json)


@crypto.command("arqc")
@click.option(
    "--cvn",
    "cvn_name",
    required=True,
    type=click.Choice(sorted(PROFILES), case_sensitive=False),
    help="Cryptogram version.",
)
@click.option("--imk", required=True, type=HEX, metavar="HEX", help="Issuer master key (AC).")
@PAN_OPTION
@PSN_OPTION
@click.option(
    "--tlv",
    "tlv_data",
    required=True,
    type=HEX,
    metavar="HEX",
    help="TLV block with the terminal and card data (as ISO 8583 field 55 carries it).",
)
@click.option(
    "--luk-index",
    type=click.IntRange(1, 0xFFFF),
    default=None,
    help="Use limited-use key N of the ICC MK (default: the index in the IAD, if any).",
)
@JSON_OPTION
def arqc(
    cvn_name: str, imk: bytes, pan: str, psn: str, tlv_data: bytes, luk_index: int | None, as_json: bool
) -> None:
    """Recompute the ARQC of a transaction, and show the exact input it covers.

    Prints the ARQC; with --json, every data element, the IAD fields, the input data, the
    keys' check values, and whether the card's 9F26 in the TLV block matches.
    """
    cvn = profile(cvn_name)
    try:
        values = to_dict(decode(tlv_data))
    except DecodeError as exc:
        raise fail(f"--tlv is not BER-TLV: {exc}") from None
    try:
        mk = cvn.derive_icc_mk(imk, pan, psn)
        iad = cvn.parse_iad(values[0x9F10]) if 0x9F10 in values else None
        index = luk_index if luk_index is not None else (iad.luk_index if iad else None)
        card_key = derive_luk(mk, index) if index is not None else mk
        result = cvn.generate(card_key, values)
    except CryptogramError as exc:
        raise fail(str(exc)) from None
    card_arqc = values.get(0x9F26)
    matches = None if card_arqc is None else card_arqc == result.cryptogram
    if not as_json:
        click.echo(_hex(result.cryptogram))
        if matches is False:
            click.echo(f"note: the card's 9F26 {_hex(card_arqc or b'')} does not match", err=True)
        return
    elements = [
        {"tag": f"{tag:X}", "name": ELEMENT_NAMES.get(tag, ""), "value": _hex(values[tag])}
        for tag in cvn.elements
    ]
    elements.append(
        {
            "tag": "9F10",
            "name": f"{ELEMENT_NAMES[0x9F10]} ({cvn.iad_data})",
            "value": _hex(cvn.iad_part(values[0x9F10])),
        }
    )
    padded = pad_iso9797_1(result.input_data) if cvn.padding == 1 else pad_iso9797_2(result.input_data)
    details: dict[str, Any] = {
        "cvn": cvn.name,
        "cvn_byte": f"{cvn.number:02X}",
        "description": cvn.description,
        "mk_derivation": f"option {cvn.mk_option.upper()}",
        "mk_kcv": _kcv(mk),
        "luk_index": index,
        "card_key_kcv": _kcv(card_key),
        "session_key_method": cvn.session_key_method,
        "session_key_kcv": _kcv(result.session_key),
        "iad": None
        if iad is None
        else {
            "layout": iad.layout,
            "cvn": f"{iad.cvn:02X}",
            "dki": iad.dki,
            "cvr": _hex(iad.cvr),
            "idd": _hex(iad.idd),
            "counters": _hex(iad.counters),
            "luk_index": iad.luk_index,
        },
        "elements": elements,
        "input_data": _hex(result.input_data),
        "padding": cvn.padding,
        "padded_input": _hex(padded),
        "arqc": _hex(result.cryptogram),
        "card_arqc": None if card_arqc is None else _hex(card_arqc),
        "matches_card": matches,
    }
    _emit(result.cryptogram, details, as_json)


@crypto.command("luk")
@click.option("--tmk", required=True, type=HEX, metavar="HEX", help="Token master key (the token's ICC MK).")
@click.option("--index", required=True, type=click.IntRange(1, 0xFFFF), help="Limited-use key index.")
@JSON_OPTION
def luk(tmk: bytes, index: int, as_json: bool) -> None:
    """Derive limited-use key INDEX of a token master key (see cryptogram.luk)."""
    try:
        key = derive_luk(tmk, index)
    except CryptogramError as exc:
        raise fail(str(exc)) from None
    _emit(key, {"index": index, "tmk_kcv": _kcv(tmk), "luk": _hex(key), "luk_kcv": _kcv(key)}, as_json)
