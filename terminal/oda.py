"""Offline data authentication as the terminal performs it: choose, check, and record the result.

EMV 4.4 Book 3 §10.3: the terminal chooses one method from what the card's AIP (82) offers and its
own capabilities (9F33) support — CDA before DDA before SDA — and records the result in the
Terminal Verification Results (95, byte 1) and the Transaction Status Information (9B, byte 1):

========================================  =======  ====================================
bit                                        TVR/TSI  set when
========================================  =======  ====================================
offline data authentication not performed TVR b8   no method both sides support
SDA failed                                 TVR b7   SDA chosen and any check failed
ICC data missing                           TVR b6   a data object the method needs is absent
DDA failed                                 TVR b4   DDA or fDDA chosen and a check failed
CDA failed                                 TVR b3   CDA chosen and a check failed
SDA selected                               TVR b2   SDA chosen
offline data authentication performed      TSI b8   a method was carried out (pass or fail)
========================================  =======  ====================================

Visa's contactless kernel (Book C-3 Annex C) authenticates with fDDA: the card signs the
unpredictable number, amount, currency and its own Card Authentication Related Data (9F69)
during GET PROCESSING OPTIONS; a failure is a DDA failure. Mastercard's (Book C-2) uses CDA: the
GENERATE AC response carries the cryptogram inside the signature (9F4B), and the kernel checks the
hash over the transaction data.

This module is pure: it reads the card's data objects and the terminal's, and returns an
:class:`OdaResult` with every step explained (``hcekit oda verify`` prints them). Every recovered
public key is also checked for the ROCA weakness; a finding is reported, never fatal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from apdu.errors import APDUError, PanMismatch
from apdu.pan import card_pan
from apdu.sw import SW
from apdu.tlv import decode, to_dict
from cryptogram import oda
from cryptogram.errors import OdaError
from cryptogram.rsa import RsaPublicKey
from terminal.capk import CaKeyTable

__all__ = [
    "OdaResult",
    "Step",
    "choose_method",
    "fdda_terminal_data",
    "perform_cda",
    "perform_dynamic",
    "perform_sda",
    "static_data",
    "tsi",
    "tvr",
]

#: AIP byte 1 (Book 3 Annex C1): SDA, DDA, CDA supported.
AIP_SDA, AIP_DDA, AIP_CDA = 0x40, 0x20, 0x01
#: Terminal Capabilities byte 3 (Book 4 Annex A2): SDA, DDA, CDA.
CAP_SDA, CAP_DDA, CAP_CDA = 0x80, 0x40, 0x08
#: TVR byte 1 (Book 3 Annex C5) and TSI byte 1 (Annex C6).
TVR_NOT_PERFORMED, TVR_SDA_FAILED, TVR_ICC_DATA_MISSING = 0x80, 0x40, 0x20
TVR_DDA_FAILED, TVR_CDA_FAILED, TVR_SDA_SELECTED = 0x08, 0x04, 0x02
TSI_ODA_PERFORMED = 0x80

_FAILED_BIT = {"sda": TVR_SDA_FAILED, "dda": TVR_DDA_FAILED, "fdda": TVR_DDA_FAILED, "cda": TVR_CDA_FAILED}


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the authentication, as a person would check it: what, whether it held, detail."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class OdaResult:
    """The result of offline data authentication for one tap.

    ``method`` is ``sda``, ``dda``, ``fdda``, ``cda`` or ``None``; ``status`` ``passed``,
    ``failed`` or ``not_performed``; ``reason`` names the failed check (a
    :class:`cryptogram.oda.Reason` value, or ``icc_data_missing``, ``ca_key_unknown``,
    ``ca_key_expired``, ``static_data``); ``weak_keys`` names keys with a ROCA fingerprint.
    """

    method: str | None
    status: str
    reason: str = ""
    steps: tuple[Step, ...] = ()
    weak_keys: tuple[str, ...] = ()
    ca_index: int | None = None
    cryptogram: bytes = b""
    icc_dynamic_number: bytes = b""
    dac: bytes = b""
    missing: bool = field(default=False)

    @property
    def passed(self) -> bool:
        """Whether the method was performed and every check held."""
        return self.status == "passed"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "method": self.method,
            "status": self.status,
            "reason": self.reason,
            "caIndex": f"{self.ca_index:02X}" if self.ca_index is not None else None,
            "weakKeys": list(self.weak_keys),
            "steps": [{"step": s.name, "ok": s.ok, "detail": s.detail} for s in self.steps],
        }


NOT_PERFORMED = OdaResult(None, "not_performed", "no method supported by both card and terminal")


def choose_method(aip: bytes, capabilities: bytes, kernel: str, card: Mapping[int, bytes]) -> str | None:
    """The method to perform (Book 3 §10.3; Book C-3 Annex C for fDDA on the Visa path)."""
    a = aip[0] if aip else 0
    c = capabilities[2] if len(capabilities) >= 3 else 0
    if kernel == "visa":
        return "fdda" if a & AIP_DDA and c & CAP_DDA and 0x9F4B in card else None
    if a & AIP_CDA and c & CAP_CDA:
        return "cda"
    if a & AIP_DDA and c & CAP_DDA:
        return "dda"
    if a & AIP_SDA and c & CAP_SDA:
        return "sda"
    return None


def tvr(base: bytes, result: OdaResult) -> bytes:
    """``base`` TVR with byte 1 set from ``result`` (Book 3 §10.3 and Annex C5)."""
    out = bytearray(base.ljust(5, b"\x00")[:5])
    if result.status == "not_performed":
        out[0] |= TVR_NOT_PERFORMED
        return bytes(out)
    if result.method == "sda":
        out[0] |= TVR_SDA_SELECTED
    if result.missing:
        out[0] |= TVR_ICC_DATA_MISSING
    if result.status == "failed" and result.method:
        out[0] |= _FAILED_BIT[result.method]
    return bytes(out)


def tsi(base: bytes, result: OdaResult) -> bytes:
    """``base`` TSI with "offline data authentication was performed" when it was (Annex C6)."""
    out = bytearray(base.ljust(2, b"\x00")[:2])
    if result.status != "not_performed":
        out[0] |= TSI_ODA_PERFORMED
    return bytes(out)


def static_data(records: Iterable[tuple[int, bytes]], card: Mapping[int, bytes]) -> bytes | None:
    """The static data to be authenticated (Book 3 §10.3), or ``None`` if it cannot be built.

    ``records`` are (SFI, record data as read) of the records the AFL marks for ODA: for SFI 1-10
    the value of the 70 template, for SFI 11-30 the whole record. Then the values the SDA Tag
    List (9F4A) names, which may only be the AIP (82).
    """
    out = bytearray()
    for sfi, raw in records:
        if sfi <= 10:
            try:
                nodes = decode(raw)
            except APDUError:
                return None
            if len(nodes) != 1 or nodes[0].tag != 0x70:
                return None
            out += nodes[0].value
        else:
            out += raw
    tag_list = card.get(0x9F4A, b"")
    if tag_list:
        if tag_list != b"\x82" or 0x82 not in card:
            return None
        out += card[0x82]
    return bytes(out)


def fdda_terminal_data(card: Mapping[int, bytes], terminal: Mapping[int, bytes]) -> bytes:
    """What the card signs in fDDA (Book C-3 Annex C): UN, and for version 01 amount, currency, 9F69."""
    un = terminal.get(0x9F37, b"")
    cad = card.get(0x9F69, b"")
    if cad[:1] == b"\x01":
        return un + terminal.get(0x9F02, b"") + terminal.get(0x5F2A, b"") + cad
    return un


_BAD_STATIC = "an ODA record is not a 70 template, or the SDA tag list (9F4A) is not 82"


class _Failed(Exception):
    def __init__(self, reason: str, missing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.missing = missing


class _Run:
    """The state of one authentication: its steps, its weak-key findings."""

    def __init__(self, table: CaKeyTable, card: Mapping[int, bytes], today: str) -> None:
        self.table, self.card, self.today = table, card, today
        self.steps: list[Step] = []
        self.weak: list[str] = []
        self.ca_index: int | None = None

    def ok(self, name: str, detail: str = "") -> None:
        self.steps.append(Step(name, True, detail))

    def need(self, *tags: int) -> list[bytes]:
        absent = [f"{t:02X}" for t in tags if not self.card.get(t)]
        if absent:
            self.steps.append(Step("data present", False, "missing " + ", ".join(absent)))
            raise _Failed("icc_data_missing", missing=True)
        return [self.card[t] for t in tags]

    def check(self, name: str, call: Any) -> Any:
        try:
            value = call()
        except OdaError as exc:
            self.steps.append(Step(name, False, str(exc)))
            raise _Failed(getattr(exc.reason, "value", str(exc.reason))) from None
        return value

    def weak_key(self, name: str, key: RsaPublicKey) -> None:
        if oda.roca_fingerprint(key.modulus):
            self.weak.append(name)
            self.steps.append(Step(f"{name} key ROCA check", False, "the modulus has the ROCA fingerprint"))
        else:
            self.ok(f"{name} key ROCA check", "no ROCA fingerprint")

    def pan(self) -> str:
        try:
            pan = card_pan(self.card)
        except PanMismatch as exc:
            pan = exc.pan   # the certificate certifies the Application PAN (5A)
        if pan:
            return pan
        self.steps.append(Step("data present", False, "missing 5A (PAN)"))
        raise _Failed("icc_data_missing", missing=True)

    def issuer_key(self) -> RsaPublicKey:
        rid = self.card.get(0x4F) or self.card.get(0x84) or b""
        (index,) = self.need(0x8F)
        self.ca_index = index[0]
        cert, exponent = self.need(0x90, 0x9F32)
        ca = self.table.get(rid[:5], index[0])
        if ca is None:
            missing = f"no key {rid[:5].hex().upper()} index {index.hex().upper()}"
            self.steps.append(Step("CA public key", False, missing))
            raise _Failed("ca_key_unknown")
        if ca.expired(self.today):
            expired = f"index {index.hex().upper()} expired {ca.expiry}"
            self.steps.append(Step("CA public key", False, expired))
            raise _Failed("ca_key_expired")
        self.ok("CA public key", f"{rid[:5].hex().upper()} index {index.hex().upper()}, "
                                 f"{ca.public.length * 8} bits, {ca.kind}")
        pan = self.pan()
        got = self.check("issuer certificate (90)", lambda: oda.recover_issuer_key(
            ca.public, cert, self.card.get(0x92, b""), exponent, pan=pan, today=self.today))
        self.ok("issuer certificate (90)", f"issuer {got.issuer_identifier}, expires {got.expiry[:2]}/"
                                           f"{got.expiry[2:]}, {got.key.length * 8} bits")
        self.weak_key("issuer", got.key)
        return got.key  # type: ignore[no-any-return]

    def icc_key_for(self, static: bytes | None, sdad: bytes) -> RsaPublicKey:
        """The ICC key, once the signed dynamic data (9F4B) it is to verify is known to be there."""
        icc = self.icc_key(static)
        if not sdad:
            self.steps.append(Step("data present", False, "missing 9F4B (signed dynamic data)"))
            raise _Failed("icc_data_missing", missing=True)
        return icc

    def icc_key(self, static: bytes | None) -> RsaPublicKey:
        issuer = self.issuer_key()
        cert, exponent = self.need(0x9F46, 0x9F47)
        if static is None:
            self.steps.append(Step("static data", False, _BAD_STATIC))
            raise _Failed("static_data")
        pan = self.pan()
        got = self.check("ICC certificate (9F46)", lambda: oda.recover_icc_key(
            issuer, cert, self.card.get(0x9F48, b""), exponent, pan=pan, static_data=static,
            today=self.today))
        self.ok("ICC certificate (9F46)", f"PAN matches, expires {got.expiry[:2]}/{got.expiry[2:]}, "
                                          f"{got.key.length * 8} bits")
        self.weak_key("ICC", got.key)
        return got.key  # type: ignore[no-any-return]

    def result(self, method: str, **kw: Any) -> OdaResult:
        return OdaResult(method, "passed", steps=tuple(self.steps), weak_keys=tuple(self.weak),
                         ca_index=self.ca_index, **kw)

    def failure(self, method: str, exc: _Failed) -> OdaResult:
        return OdaResult(method, "failed", exc.reason, tuple(self.steps), tuple(self.weak), self.ca_index,
                         missing=exc.missing)


def perform_sda(table: CaKeyTable, card: Mapping[int, bytes], static: bytes | None, today: str) -> OdaResult:
    """Static data authentication (Book 2 §5): issuer key, then signed static data (93)."""
    run = _Run(table, card, today)
    try:
        issuer = run.issuer_key()
        (ssad,) = run.need(0x93)
        if static is None:
            run.steps.append(Step("static data", False, "an ODA record is not a 70 template"))
            raise _Failed("static_data")
        dac = run.check("signed static data (93)", lambda: oda.recover_static_data(issuer, ssad, static))
        run.ok("signed static data (93)", f"data authentication code {dac.hex().upper()}")
    except _Failed as exc:
        return run.failure("sda", exc)
    return run.result("sda", dac=dac)


def perform_dynamic(
    table: CaKeyTable, card: Mapping[int, bytes], static: bytes | None, today: str, *,
    sdad: bytes, terminal_data: bytes, method: str = "dda",
) -> OdaResult:
    """DDA or fDDA (Book 2 §6.5; Book C-3 Annex C): the chain, then the signature over ``terminal_data``."""
    run = _Run(table, card, today)
    try:
        icc = run.icc_key_for(static, sdad)
        fmt = oda.FORMAT_FDDA if method == "fdda" else oda.FORMAT_SDAD
        dd = run.check("signed dynamic data (9F4B)",
                       lambda: oda.recover_dynamic_data(icc, sdad, terminal_data, fmt=fmt))
        run.ok("signed dynamic data (9F4B)",
               f"signed over {len(terminal_data)} bytes of terminal data; ICC dynamic number "
               f"{dd.icc_dynamic_number.hex().upper()}")
    except _Failed as exc:
        return run.failure(method, exc)
    return run.result(method, icc_dynamic_number=dd.icc_dynamic_number)


def perform_cda(
    table: CaKeyTable, card: Mapping[int, bytes], static: bytes | None, today: str, *,
    sdad: bytes, unpredictable_number: bytes, cid: bytes, transaction_hash: bytes,
) -> OdaResult:
    """CDA (Book 2 §6.6): the chain, then the signature; the cryptogram comes out of it."""
    run = _Run(table, card, today)
    try:
        icc = run.icc_key_for(static, sdad)
        got = run.check("CDA signature (9F4B)", lambda: oda.recover_cda(
            icc, sdad, unpredictable_number=unpredictable_number, cid=cid, transaction_hash=transaction_hash))
        run.ok("CDA signature (9F4B)", f"CID {got.cid.hex().upper()} matches; transaction data hash matches; "
                                       f"cryptogram {got.cryptogram.hex().upper()} recovered")
    except _Failed as exc:
        return run.failure("cda", exc)
    return run.result("cda", cryptogram=got.cryptogram, icc_dynamic_number=got.icc_dynamic_number)


# -- re-checking a recorded session -----------------------------------------------------------


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
    from apdu.dol import split_dol_data

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
            transaction_hash=oda.cda_transaction_hash(pdol_data, cdol_data, objects)), tuple(notes))
    if ia_sdad:
        return SessionCheck(kernel, perform_dynamic(table, card, static, date, sdad=ia_sdad,
                                                    terminal_data=ddol_data), tuple(notes))
    if card.get(0x93):
        return SessionCheck(kernel, perform_sda(table, card, static, date), tuple(notes))
    if card.get(0x9F46):
        notes.append("no dynamic signature in the session: the certificate chain alone is checked")
        run = _Run(table, card, date)
        try:
            run.icc_key(static)
        except _Failed as exc:
            return SessionCheck(kernel, run.failure("dda", exc), tuple(notes))
        return SessionCheck(kernel, OdaResult("dda", "not_performed", "no signature to check",
                                              tuple(run.steps), tuple(run.weak), run.ca_index), tuple(notes))
    return SessionCheck(kernel, NOT_PERFORMED, tuple(notes))


def _oda_flags(afl: bytes) -> set[tuple[int, int]]:
    out: set[tuple[int, int]] = set()
    for i in range(0, len(afl) - len(afl) % 4, 4):
        sfi, first, count = afl[i] >> 3, afl[i + 1], afl[i + 3]
        out.update((sfi, r) for r in range(first, first + count))
    return out
