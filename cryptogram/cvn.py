"""Cryptogram versions (CVNs) as profiles: which data, in which order, under which key.

A cryptogram version number names everything the card and the issuer must agree on to make and
check an application cryptogram: how the ICC master key is derived, how the session key is
derived from it, which data elements enter the MAC and in which order, how they are padded,
how the Issuer Application Data (9F10) is laid out, and how the ARPC is computed. Each
:class:`CVN` holds those choices as data, so the card (``hce``) and the issuer
(``tsp_backend``) call the same :meth:`CVN.generate` and :meth:`CVN.verify`.

The profiles, from the public descriptions of VIS 1.6 Appendix D/F and M/Chip 4 (as pyemv's
``pyemv.cvn`` module and open issuer tools document them; the CVN byte is hex, so "CVN 18"
is ``12`` and "CVN 22" is ``22``)::

    name    CVN  MK      session key        AC data after the 10 common elements   pad  ARPC
    visa10  0A   A       none (MK itself)   CVR (IAD bytes 4–7)                    1    1, MK
    visa18  12   A/B     EMV common (ATC)   the whole IAD                          2    2, SK
    visa22  22   A/B     EMV common (ATC)   the whole IAD (32-byte format 2)       2    2, SK
    mc16    10   A       Mastercard (ATC,UN) CVR (IAD bytes 3–8)                   2    1, MK
    mc17    11   A       Mastercard (ATC,UN) CVR ‖ counters (IAD bytes 3–8, 11–18) 2    1, MK

The 10 common elements, in order: 9F02 amount, 9F03 amount other, 9F1A terminal country,
95 TVR, 5F2A currency, 9A date, 9C type, 9F37 unpredictable number, 82 AIP, 9F36 ATC
(EMV 4.4 Book 2 §8.1.1, the minimum set, in the order VIS and M/Chip use).

The classic pitfall: for Visa CVN 18 and 22 the MAC covers the *whole* IAD (9F10), not only the
CVR (jmeter-iso8583#30, jPOS#573) — a verifier that takes only the CVR never matches.

Issuer Application Data layouts (:meth:`CVN.build_iad`, :meth:`CVN.parse_iad`)::

    Visa format 0/1/3 (CVN 10, 18), 7 bytes:  06 ‖ DKI ‖ CVN ‖ CVR(4)
      with issuer discretionary data, 32 bytes: 06 ‖ DKI ‖ CVN ‖ CVR(4) ‖ 0F ‖ IDD(15) ‖ 00×9
    Visa format 2 (CVN 22), 32 bytes:         1F ‖ CVN ‖ DKI ‖ CVR(5) ‖ IDD(24)
    Mastercard M/Chip, 18 bytes:              DKI ‖ CVN ‖ CVR(6) ‖ DAC/IDN(2) ‖ counters(8)

Where the limited-use key index travels (see :mod:`cryptogram.luk`): in Visa layouts, in the
issuer discretionary data — IDD byte 1 (the option ID) is ``01`` and IDD bytes 2–3 hold the
index, big-endian; in the Mastercard layout, in the DAC/IDN field (IAD bytes 9–10,
big-endian), which a card without SDA or CDA-based IDN leaves free. The index is 1 to 65535;
0 (or IDD option 0) means "no limited-use key": the card uses its ICC master key.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from cryptogram.ac import arpc_method1, arpc_method2, generate_ac
from cryptogram.derive import (
    derive_icc_mk_a,
    derive_icc_mk_b,
    derive_session_key_emv,
    derive_session_key_mastercard,
)
from cryptogram.errors import InvalidInput

__all__ = [
    "COMMON_ELEMENTS",
    "CVN",
    "IAD",
    "PROFILES",
    "ArqcResult",
    "profile",
    "profile_for_iad",
]

COMMON_ELEMENTS: tuple[int, ...] = (0x9F02, 0x9F03, 0x9F1A, 0x95, 0x5F2A, 0x9A, 0x9C, 0x9F37, 0x82, 0x9F36)
"""The data elements every profile puts first, in order (EMV 4.4 Book 2 §8.1.1)."""

ELEMENT_LENGTHS: dict[int, int] = {
    0x9F02: 6, 0x9F03: 6, 0x9F1A: 2, 0x95: 5, 0x5F2A: 2, 0x9A: 3, 0x9C: 1, 0x9F37: 4, 0x82: 2, 0x9F36: 2,
}
"""The length each common element must have (EMV 4.4 Book 3 Annex A)."""

ELEMENT_NAMES: dict[int, str] = {
    0x9F02: "Amount, Authorised", 0x9F03: "Amount, Other", 0x9F1A: "Terminal Country Code",
    0x95: "Terminal Verification Results", 0x5F2A: "Transaction Currency Code", 0x9A: "Transaction Date",
    0x9C: "Transaction Type", 0x9F37: "Unpredictable Number", 0x82: "Application Interchange Profile",
    0x9F36: "Application Transaction Counter", 0x9F10: "Issuer Application Data",
}
"""Names of the elements a profile reads, for messages and ``--json`` output."""

_MAX_LUK_INDEX = 0xFFFF
_IDD_OPTION_LUK = 0x01


@dataclass(frozen=True)
class IAD:
    """Issuer Application Data (9F10) taken apart (VIS 1.6 Appendix F; M/Chip 4).

    ``layout`` is ``"visa"`` (format 0/1/3), ``"visa2"`` (format 2) or ``"mastercard"``;
    ``idd`` the Visa issuer discretionary data, ``counters`` the Mastercard counters field,
    ``luk_index`` the limited-use key index (``None`` when the card used its master key).
    """

    cvn: int
    dki: int
    cvr: bytes
    luk_index: int | None = None
    layout: str = "visa"
    idd: bytes = b""
    counters: bytes = b""


@dataclass(frozen=True)
class ArqcResult:
    """An application cryptogram with the exact input it covers and the key that made it.

    The session key is left out of ``repr`` so that a logged result never shows it.
    """

    cryptogram: bytes
    input_data: bytes
    session_key: bytes = field(repr=False)


def _element(tlvs: Mapping[int, bytes], tag: int) -> bytes:
    value = tlvs.get(tag)
    if value is None:
        raise InvalidInput(f"missing data element {tag:02X} ({ELEMENT_NAMES.get(tag, 'unknown')})")
    expected = ELEMENT_LENGTHS.get(tag)
    if expected is not None and len(value) != expected:
        raise InvalidInput(f"data element {tag:02X} must be {expected} bytes, got {len(value)}")
    return bytes(value)


@functools.cache
def _expected_lengths(elements: tuple[int, ...]) -> tuple[int, ...] | None:
    """The length each element must have, in order; ``None`` when one has no fixed length."""
    if any(tag not in ELEMENT_LENGTHS for tag in elements):
        return None
    return tuple(ELEMENT_LENGTHS[tag] for tag in elements)


def _check_luk_index(luk_index: int | None) -> None:
    if luk_index is not None and not 1 <= luk_index <= _MAX_LUK_INDEX:
        raise InvalidInput(f"limited-use key index must be 1 to {_MAX_LUK_INDEX}, got {luk_index}")


def _byte(value: int, what: str) -> int:
    if not 0 <= value <= 0xFF:
        raise InvalidInput(f"{what} must fit in one byte, got {value}")
    return value


@dataclass(frozen=True)
class CVN:
    """One cryptogram version: the choices that make an ARQC reproducible (module docstring).

    ``mk_option`` is the ICC master key derivation (``"a"``, or ``"b"`` which equals A for PANs
    of up to 16 digits); ``session_key_method`` is ``"none"`` (the MK is the AC key),
    ``"emv"`` (EMV 4.4 Book 2 A1.3.1) or ``"mastercard"`` (ATC and UN); ``iad_data`` says which
    part of 9F10 follows the common elements (``"cvr"``, ``"iad"``, ``"cvr+counters"``);
    ``arpc_key`` is ``"mk"`` or ``"session"``.
    """

    name: str
    number: int
    network: Literal["visa", "mastercard"]
    description: str
    mk_option: Literal["a", "b"]
    session_key_method: Literal["none", "emv", "mastercard"]
    iad_data: Literal["cvr", "iad", "cvr+counters"]
    padding: int
    arpc_method: int
    arpc_key: Literal["mk", "session"]
    iad_layout: Literal["visa", "visa2", "mastercard"]
    cvr_length: int
    elements: tuple[int, ...] = COMMON_ELEMENTS

    # ------------------------------------------------------------------ keys

    def derive_icc_mk(self, imk: bytes, pan: str, psn: str = "00") -> bytes:
        """The ICC master key for this profile (EMV 4.4 Book 2 Annex A1.4, option A or B)."""
        if self.mk_option == "a":
            return derive_icc_mk_a(imk, pan, psn)
        return derive_icc_mk_b(imk, pan, psn)

    def session_key(self, icc_mk: bytes, tlvs: Mapping[int, bytes]) -> bytes:
        """The key that makes the AC: the MK itself, or a session key from 9F36 (and 9F37)."""
        if self.session_key_method == "none":
            return bytes(icc_mk)
        atc = _element(tlvs, 0x9F36)
        if self.session_key_method == "emv":
            return derive_session_key_emv(icc_mk, atc)
        return derive_session_key_mastercard(icc_mk, atc, _element(tlvs, 0x9F37))

    # ------------------------------------------------------------------ cryptogram

    def iad_part(self, iad: bytes) -> bytes:
        """The part of the IAD (9F10) that this profile puts into the cryptogram input."""
        if self.iad_data == "iad":
            return bytes(iad)
        parsed = self.parse_iad(iad)
        if self.iad_data == "cvr":
            return parsed.cvr
        return parsed.cvr + parsed.counters

    def input_data(self, tlvs: Mapping[int, bytes]) -> bytes:
        """The exact bytes the MAC covers, before padding, from a tag → value mapping."""
        try:
            values = [tlvs[tag] for tag in self.elements]
        except KeyError:
            values = [_element(tlvs, tag) for tag in self.elements]
        expected = _expected_lengths(self.elements)
        if expected is None or tuple(map(len, values)) != expected:
            for tag, value in zip(self.elements, values, strict=True):
                if len(value) != ELEMENT_LENGTHS.get(tag, len(value)):
                    _element(tlvs, tag)
        return b"".join(values) + self.iad_part(_element(tlvs, 0x9F10))

    def generate(self, icc_mk: bytes, tlvs: Mapping[int, bytes]) -> ArqcResult:
        """Make the application cryptogram (ARQC, TC or AAC: EMV 4.4 Book 2 §8.1)."""
        data = self.input_data(tlvs)
        key = self.session_key(icc_mk, tlvs)
        return ArqcResult(generate_ac(key, data, self.padding), data, key)

    def verify(self, icc_mk: bytes, tlvs: Mapping[int, bytes], cryptogram: bytes) -> bool:
        """Whether ``cryptogram`` is the one the card should have made (constant-time compare)."""
        expected = generate_ac(self.session_key(icc_mk, tlvs), self.input_data(tlvs), self.padding)
        return hmac.compare_digest(expected, bytes(cryptogram))

    # ------------------------------------------------------------------ issuer response

    def arpc(
        self,
        icc_mk: bytes,
        tlvs: Mapping[int, bytes],
        arqc: bytes,
        *,
        arc: bytes = b"00",
        csu: bytes | None = None,
        proprietary_auth_data: bytes = b"",
    ) -> bytes:
        """The ARPC (EMV 4.4 Book 2 §8.2) by this profile's method and key.

        Method 1 uses ``arc``, the 2-byte Authorisation Response Code (8A, ``b"00"`` =
        approved); method 2 uses ``csu``, the 4-byte Card Status Update (four zero bytes when
        not given) and optional proprietary authentication data.
        """
        key = bytes(icc_mk) if self.arpc_key == "mk" else self.session_key(icc_mk, tlvs)
        if self.arpc_method == 1:
            return arpc_method1(key, arqc, arc)
        return arpc_method2(key, arqc, bytes(4) if csu is None else csu, proprietary_auth_data)

    def issuer_authentication_data(
        self,
        icc_mk: bytes,
        tlvs: Mapping[int, bytes],
        arqc: bytes,
        *,
        arc: bytes = b"00",
        csu: bytes | None = None,
        proprietary_auth_data: bytes = b"",
    ) -> bytes:
        """The value of tag 91: ARPC ‖ ARC (method 1) or ARPC ‖ CSU ‖ data (method 2)."""
        arpc = self.arpc(icc_mk, tlvs, arqc, arc=arc, csu=csu, proprietary_auth_data=proprietary_auth_data)
        if self.arpc_method == 1:
            return arpc + bytes(arc)
        return arpc + (bytes(4) if csu is None else bytes(csu)) + bytes(proprietary_auth_data)

    # ------------------------------------------------------------------ IAD

    def build_iad(
        self, cvr: bytes, *, dki: int = 1, luk_index: int | None = None, counters: bytes | None = None
    ) -> bytes:
        """The Issuer Application Data (9F10) this profile's card sends (module docstring).

        ``cvr`` is the Card Verification Results (4 bytes for Visa format 0/1/3, 5 for format 2,
        6 for Mastercard); ``counters`` the 8-byte Mastercard counters field (default
        ``00…00FF``, no offline counters).
        """
        if len(cvr) != self.cvr_length:
            raise InvalidInput(f"CVR must be {self.cvr_length} bytes for {self.name}, got {len(cvr)}")
        _check_luk_index(luk_index)
        dki = _byte(dki, "derivation key index")
        index = (luk_index or 0).to_bytes(2, "big")
        if self.iad_layout == "mastercard":
            field_counters = bytes(7) + b"\xff" if counters is None else bytes(counters)
            if len(field_counters) != 8:
                raise InvalidInput("Mastercard counters must be 8 bytes")
            return bytes((dki, self.number)) + bytes(cvr) + index + field_counters
        option = _IDD_OPTION_LUK if luk_index is not None else 0
        if self.iad_layout == "visa2":
            idd = bytes((option,)) + index + bytes(21)
            return bytes((0x1F, self.number, dki)) + bytes(cvr) + idd
        head = bytes((0x06, dki, self.number)) + bytes(cvr)
        if luk_index is None:
            return head
        return head + b"\x0f" + bytes((option,)) + index + bytes(12) + bytes(9)

    def parse_iad(self, iad: bytes) -> IAD:
        """Take this profile's Issuer Application Data apart (the inverse of :meth:`build_iad`)."""
        return _parse_iad(bytes(iad), self.iad_layout)


def _luk_from_idd(idd: bytes) -> int | None:
    if len(idd) >= 3 and idd[0] == _IDD_OPTION_LUK:
        return int.from_bytes(idd[1:3], "big") or None
    return None


def _parse_iad(iad: bytes, layout: str) -> IAD:
    if layout == "mastercard":
        if len(iad) != 18:
            raise InvalidInput(f"Mastercard IAD must be 18 bytes, got {len(iad)}")
        index = int.from_bytes(iad[8:10], "big")
        return IAD(iad[1], iad[0], iad[2:8], index or None, "mastercard", b"", iad[10:18])
    if layout == "visa2":
        if len(iad) != 32 or iad[0] != 0x1F:
            raise InvalidInput(f"Visa format 2 IAD must be 32 bytes starting 1F, got {len(iad)} bytes")
        idd = iad[8:]
        return IAD(iad[1], iad[2], iad[3:8], _luk_from_idd(idd), "visa2", idd)
    if len(iad) < 7 or iad[0] != 0x06:
        raise InvalidInput(f"Visa format 0/1/3 IAD must be 7 or more bytes starting 06, got {len(iad)} bytes")
    idd = b""
    if len(iad) > 7:
        idd_length = iad[7]
        if idd_length > 15 or 8 + idd_length > len(iad) or any(iad[8 + idd_length :]):
            raise InvalidInput("Visa IAD issuer discretionary data does not match its length byte")
        idd = iad[8 : 8 + idd_length]
    return IAD(iad[2], iad[1], iad[3:7], _luk_from_idd(idd), "visa", idd)


_VISA18 = CVN(
    name="visa18", number=0x12, network="visa",
    description="Visa CVN 18 (VIS 1.6): EMV session key, whole IAD, ARPC method 2",
    mk_option="b", session_key_method="emv", iad_data="iad", padding=2,
    arpc_method=2, arpc_key="session", iad_layout="visa", cvr_length=4,
)
_MC16 = CVN(
    name="mc16", number=0x10, network="mastercard",
    description="Mastercard CVN 16 (M/Chip 4): Mastercard SKD, CVR, ARPC method 1 with MK",
    mk_option="a", session_key_method="mastercard", iad_data="cvr", padding=2,
    arpc_method=1, arpc_key="mk", iad_layout="mastercard", cvr_length=6,
)

PROFILES: dict[str, CVN] = {
    "visa10": CVN(
        name="visa10", number=0x0A, network="visa",
        description="Visa CVN 10 (VIS): MK as AC key, CVR only, zero padding, ARPC method 1",
        mk_option="a", session_key_method="none", iad_data="cvr", padding=1,
        arpc_method=1, arpc_key="mk", iad_layout="visa", cvr_length=4,
    ),
    "visa18": _VISA18,
    "visa22": replace(
        _VISA18, name="visa22", number=0x22,
        description="Visa CVN 22 (VIS 1.6, IAD format 2): as CVN 18 with the 32-byte IAD",
        iad_layout="visa2", cvr_length=5,
    ),
    "mc16": _MC16,
    "mc17": replace(
        _MC16, name="mc17", number=0x11,
        description="Mastercard CVN 17 (M/Chip 4): as CVN 16 with the counters in the AC",
        iad_data="cvr+counters",
    ),
}
"""Every cryptogram version hcekit knows, by name."""


def profile(name: str) -> CVN:
    """The profile called ``name`` (``"visa10"``, ``"visa18"``, ``"visa22"``, ``"mc16"``, ``"mc17"``)."""
    try:
        return PROFILES[name.lower()]
    except KeyError:
        raise InvalidInput(f"unknown cryptogram version {name!r} (known: {', '.join(PROFILES)})") from None


def profile_for_iad(iad: bytes, network: str) -> CVN:
    """The profile a card used, read from the CVN byte of its IAD (9F10) for ``network``.

    >>> profile_for_iad(bytes.fromhex("06011203A0B800"), "visa").name
    'visa18'
    """
    data = bytes(iad)
    if network == "mastercard":
        number = data[1] if len(data) == 18 else -1
    elif network == "visa":
        number = data[1] if data[:1] == b"\x1f" else (data[2] if len(data) >= 7 else -1)
    else:
        raise InvalidInput(f"network must be 'visa' or 'mastercard', got {network!r}")
    for candidate in PROFILES.values():
        if candidate.network == network and candidate.number == number:
            return candidate
    raise InvalidInput(f"no {network} cryptogram version matches this IAD")
