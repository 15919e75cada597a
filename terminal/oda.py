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
from typing import Any, NoReturn

from apdu.errors import APDUError, PanMismatch
from apdu.pan import card_pan
from apdu.tlv import decode
from cryptogram import oda
from cryptogram.errors import OdaError
from cryptogram.oda_recover import (
    recover_cda,
    recover_dynamic_data,
    recover_icc_key,
    recover_issuer_key,
    recover_static_data,
)
from cryptogram.rsa import RsaPublicKey, roca_fingerprint
from terminal.capk import CaKeyTable

__all__ = [
    "NOT_PERFORMED",
    "OdaResult",
    "Step",
    "check_chain",
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

    def fail(self, name: str, detail: str, reason: str) -> NoReturn:
        self.steps.append(Step(name, False, detail))
        raise _Failed(reason)

    def absent(self, what: str) -> NoReturn:
        self.steps.append(Step("data present", False, "missing " + what))
        raise _Failed("icc_data_missing", missing=True)

    def need(self, *tags: int) -> list[bytes]:
        absent = [f"{t:02X}" for t in tags if not self.card.get(t)]
        if absent:
            self.absent(", ".join(absent))
        return [self.card[t] for t in tags]

    def check(self, name: str, call: Any) -> Any:
        try:
            value = call()
        except OdaError as exc:
            self.steps.append(Step(name, False, str(exc)))
            raise _Failed(getattr(exc.reason, "value", str(exc.reason))) from None
        return value

    def weak_key(self, name: str, key: RsaPublicKey) -> None:
        if roca_fingerprint(key.modulus):
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
        self.absent("5A (PAN)")

    def issuer_key(self) -> RsaPublicKey:
        rid = self.card.get(0x4F) or self.card.get(0x84) or b""
        (index,) = self.need(0x8F)
        self.ca_index = index[0]
        cert, exponent = self.need(0x90, 0x9F32)
        ca = self.table.get(rid[:5], index[0])
        if ca is None:
            self.fail("CA public key", f"no key {rid[:5].hex().upper()} index {index.hex().upper()}",
                      "ca_key_unknown")
        if ca.expired(self.today):
            self.fail("CA public key", f"index {index.hex().upper()} expired {ca.expiry}", "ca_key_expired")
        self.ok("CA public key", f"{rid[:5].hex().upper()} index {index.hex().upper()}, "
                                 f"{ca.public.length * 8} bits, {ca.kind}")
        pan = self.pan()
        got = self.check("issuer certificate (90)", lambda: recover_issuer_key(
            ca.public, cert, self.card.get(0x92, b""), exponent, pan=pan, today=self.today))
        self.ok("issuer certificate (90)", f"issuer {got.issuer_identifier}, expires {got.expiry[:2]}/"
                                           f"{got.expiry[2:]}, {got.key.length * 8} bits")
        self.weak_key("issuer", got.key)
        return got.key  # type: ignore[no-any-return]

    def icc_key(self, static: bytes | None) -> RsaPublicKey:
        issuer = self.issuer_key()
        cert, exponent = self.need(0x9F46, 0x9F47)
        if static is None:
            self.fail("static data", _BAD_STATIC, "static_data")
        pan = self.pan()
        got = self.check("ICC certificate (9F46)", lambda: recover_icc_key(
            issuer, cert, self.card.get(0x9F48, b""), exponent, pan=pan, static_data=static,
            today=self.today))
        self.ok("ICC certificate (9F46)", f"PAN matches, expires {got.expiry[:2]}/{got.expiry[2:]}, "
                                          f"{got.key.length * 8} bits")
        self.weak_key("ICC", got.key)
        return got.key  # type: ignore[no-any-return]

    def signer(self, static: bytes | None, sdad: bytes) -> RsaPublicKey:
        """The ICC key that signed ``sdad`` (9F4B), once the chain and the signature's presence hold."""
        icc = self.icc_key(static)
        if not sdad:
            self.absent("9F4B (signed dynamic data)")
        return icc

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
            run.fail("static data", "an ODA record is not a 70 template", "static_data")
        dac = run.check("signed static data (93)", lambda: recover_static_data(issuer, ssad, static))
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
        icc = run.signer(static, sdad)
        fmt = oda.FORMAT_FDDA if method == "fdda" else oda.FORMAT_SDAD
        dd = run.check("signed dynamic data (9F4B)",
                       lambda: recover_dynamic_data(icc, sdad, terminal_data, fmt=fmt))
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
        icc = run.signer(static, sdad)
        got = run.check("CDA signature (9F4B)", lambda: recover_cda(
            icc, sdad, unpredictable_number=unpredictable_number, cid=cid, transaction_hash=transaction_hash))
        run.ok("CDA signature (9F4B)", f"CID {got.cid.hex().upper()} matches; transaction data hash matches; "
                                       f"cryptogram {got.cryptogram.hex().upper()} recovered")
    except _Failed as exc:
        return run.failure("cda", exc)
    return run.result("cda", cryptogram=got.cryptogram, icc_dynamic_number=got.icc_dynamic_number)


def check_chain(table: CaKeyTable, card: Mapping[int, bytes], static: bytes | None, today: str) -> OdaResult:
    """The certificate chain alone (Book 2 §6.3, §6.4), when there is no dynamic signature to check.

    A chain that holds is ``not_performed`` (nothing was signed); one that does not is a DDA failure.
    """
    run = _Run(table, card, today)
    try:
        run.icc_key(static)
    except _Failed as exc:
        return run.failure("dda", exc)
    return OdaResult("dda", "not_performed", "no signature to check", tuple(run.steps), tuple(run.weak),
                     run.ca_index)
