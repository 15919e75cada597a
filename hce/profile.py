"""The card profile: what a tokenized payment card is, as the wallet loads it.

The profile is a JSON object produced by the token service provider (``tsp_backend`` builds
the same dict) and validated here with pydantic. Hex is uppercase, digits are strings::

    {"version": 1, "kernel": "visa", "token_ref": "DNITHE…", "pan": "4761739001010010",
     "psn": "01", "expiry": "3012", "aid": "A0000000031010", "label": "VISA CREDIT",
     "priority": 1, "kernel_id": "03", "cvn": "visa18", "dki": 1,
     "issuer_country": "0840", "currency": "0840", "cvm_limit": 5000, "atc": 0,
     "luks": [{"index": 1, "key": "<32 hex>", "max_uses": 10, "not_after": 1798761600}],
     "device_cvm": false}

Optional overrides (``aip``, ``afl``, ``pdol``, ``cdol1``, ``ctq``, ``ffi``, ``app_version``)
default per kernel, from :data:`KERNEL_DEFAULTS`:

``visa`` (EMV Contactless Book C-3, Kernel 3, qVSDC online path; Visa VCPS 2.2)
    AIP ``0000`` (online only, no offline data authentication: an HCE card holds no private
    key); AFL ``08010100`` (SFI 1 record 1, not for ODA); PDOL ``9F66 04 9F02 06 9F03 06
    9F1A 02 95 05 5F2A 02 9A 03 9C 01 9F37 04``; CTQ ``0000`` (byte 2 bit 8 set per tap when
    the consumer device CVM was performed); Form Factor Indicator ``23420000`` (version 1,
    consumer mobile phone; passcode capable, cloud-based payment credentials);
    application version ``0096``.

``mastercard`` (EMV Contactless Book C-2, Kernel 2, M/Chip)
    AIP ``1A80`` (byte 1: cardholder verification, terminal risk management and on-device
    cardholder verification supported -- bit 2, Book C-2 Annex A; byte 2: EMV mode supported;
    no CDA); AFL ``08010200``
    (SFI 1 records 1-2); no PDOL (GPO data is ``83 00``); CDOL1 ``9F02 06 9F03 06 9F1A 02
    95 05 5F2A 02 9A 03 9C 01 9F37 04 9F35 01 9F45 02 9F4C 08 9F34 03`` (43 bytes);
    application version ``0002``.

Optional ``magstripe`` (Mastercard only): the card runs in mag-stripe mode (Book C-2): its AIP
says EMV mode is not supported (byte 2 bit 8 clear), GPO points at one record of mag-stripe data
(Track 1 and 2 templates, PCVC3/PUNATC/NATC, UDOL), and COMPUTE CRYPTOGRAPHIC CHECKSUM answers
CVC3 for both tracks under the current limited-use key (:mod:`cryptogram.cvc3`).

Optional ``oda`` (:class:`cryptogram.oda.CardCertificates` as a dict): the card's RSA key and
certificate chain, issued by the token service. With it the card signs -- fDDA in the Visa GPO
response, CDA in the Mastercard GENERATE AC response -- and serves the certificates in SFI 3 and
the signed static record in SFI 2 (the AFL grows by ``10010101 18010400``). The issuer sets the
``aip`` it certified (Visa byte 1 bit 6 DDA, Mastercard bit 1 CDA). Cloud-based cards are
online-only and have none.

:class:`CardProfile` is the validated, frozen value the applet reads; errors are
:class:`~hce.errors.ProfileError` and name the field, never its value (a profile carries a
PAN and keys).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from apdu.pan import luhn_valid
from cryptogram.errors import InvalidInput
from cryptogram.oda import CardCertificates
from hce.errors import ProfileError

__all__ = [
    "KERNEL_DEFAULTS",
    "CardProfile",
    "LimitedUseKeySpec",
    "luhn_valid",
]

#: Per-kernel defaults of the optional fields (hex), documented in the module docstring.
KERNEL_DEFAULTS: dict[str, dict[str, str]] = {
    "visa": {
        "aip": "0000",
        "afl": "08010100",
        "pdol": "9F66049F02069F03069F1A0295055F2A029A039C019F3704",
        "cdol1": "",
        "ctq": "0000",
        "ffi": "23420000",
        "app_version": "0096",
    },
    "mastercard": {
        "aip": "1A80",
        "afl": "08010200",
        "pdol": "",
        "cdol1": "9F02069F03069F1A0295055F2A029A039C019F37049F35019F45029F4C089F3403",
        "ctq": "",
        "ffi": "",
        "app_version": "0002",
    },
}

_HEX = re.compile(r"^(?:[0-9A-F]{2})*$")


def _hex_field(value: str | None, *, name: str, min_bytes: int = 0, max_bytes: int = 252) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _HEX.match(value):
        raise ValueError(f"{name} must be uppercase hex with an even number of digits")
    if not min_bytes <= len(value) // 2 <= max_bytes:
        raise ValueError(f"{name} must be {min_bytes}..{max_bytes} bytes")
    return value


#: The hex fields of a profile: field -> (name in error messages, fewest bytes, most bytes).
#: ``aid`` and ``kernel_id`` are required; the others are the optional overrides.
_HEX_FIELDS: dict[str, tuple[str, int, int]] = {
    "aid": ("aid", 5, 16),
    "kernel_id": ("kernel_id", 1, 8),
    "aip": ("field", 2, 2),
    "app_version": ("field", 2, 2),
    "ctq": ("ctq", 0, 2),
    "ffi": ("ffi", 0, 32),
    "afl": ("afl", 0, 252),
    "pdol": ("dol", 0, 252),
    "cdol1": ("dol", 0, 252),
}


class _LukModel(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    index: int = Field(ge=1, le=0xFFFF)
    key: str
    max_uses: int = Field(ge=1)
    not_after: int = Field(ge=0)

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        checked = _hex_field(value, name="key", min_bytes=16, max_bytes=16)
        assert checked is not None
        return checked


class _ProfileModel(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    version: Literal[1]
    kernel: Literal["visa", "mastercard"]
    token_ref: str = Field(min_length=1, max_length=64)
    pan: str = Field(pattern=r"^\d{12,19}$")
    psn: str = Field(pattern=r"^\d{2}$")
    expiry: str = Field(pattern=r"^\d{2}(0[1-9]|1[0-2])$")
    aid: str
    label: str = Field(min_length=1, max_length=16, pattern=r"^[\x20-\x7E]+$")
    priority: int = Field(ge=1, le=15)
    kernel_id: str
    cvn: Literal["visa10", "visa18", "visa22", "mc16", "mc17"]
    dki: int = Field(ge=0, le=0xFF)
    issuer_country: str = Field(pattern=r"^\d{4}$")
    currency: str = Field(pattern=r"^\d{4}$")
    cvm_limit: int = Field(ge=0, le=999_999_999_999)
    atc: int = Field(ge=0, le=0xFFFF)
    luks: list[_LukModel]
    device_cvm: bool = False
    aip: str | None = None
    afl: str | None = None
    pdol: str | None = None
    cdol1: str | None = None
    ctq: str | None = None
    ffi: str | None = None
    app_version: str | None = None
    oda: dict[str, str] | None = None
    magstripe: bool = False

    @field_validator("pan")
    @classmethod
    def _pan(cls, value: str) -> str:
        if not luhn_valid(value):
            raise ValueError("pan fails the Luhn check")
        return value

    @field_validator(*_HEX_FIELDS)
    @classmethod
    def _hex(cls, value: str | None, info: ValidationInfo) -> str | None:
        assert info.field_name is not None
        name, min_bytes, max_bytes = _HEX_FIELDS[info.field_name]
        return _hex_field(value, name=name, min_bytes=min_bytes, max_bytes=max_bytes)

    @field_validator("afl")
    @classmethod
    def _afl_entries(cls, value: str | None) -> str | None:
        if value and len(value) % 8:
            raise ValueError("afl is a list of 4-byte entries (EMV 4.4 Book 3 §10.2)")
        return value


@dataclass(frozen=True, slots=True)
class LimitedUseKeySpec:
    """A limited-use key as the profile carries it: index, 16-byte key, use budget, expiry.

    ``not_after`` is Unix seconds; the key may be used while ``now <= not_after``.
    """

    index: int
    key: bytes
    max_uses: int
    not_after: int

    def __repr__(self) -> str:
        return f"LimitedUseKeySpec(index={self.index}, key=<16 bytes>, max_uses={self.max_uses}, " \
               f"not_after={self.not_after})"


@dataclass(frozen=True, slots=True)
class CardProfile:
    """A validated card profile (see the module docstring); bytes fields are already decoded.

    ``repr`` never shows the PAN or keys.
    """

    kernel: str
    token_ref: str
    pan: str
    psn: str
    expiry: str
    aid: bytes
    label: str
    priority: int
    kernel_id: bytes
    cvn: str
    dki: int
    issuer_country: str
    currency: str
    cvm_limit: int
    atc: int
    luks: tuple[LimitedUseKeySpec, ...]
    device_cvm: bool
    aip: bytes
    afl: bytes
    pdol: bytes
    cdol1: bytes
    ctq: bytes
    ffi: bytes
    app_version: bytes
    version: int = 1
    oda: CardCertificates | None = None
    magstripe: bool = False

    def __repr__(self) -> str:
        return (f"CardProfile(kernel={self.kernel!r}, token_ref={self.token_ref!r}, "
                f"pan=<masked>, aid={self.aid.hex().upper()}, cvn={self.cvn!r}, luks={len(self.luks)})")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CardProfile:
        """Validate a profile dict; raise :class:`ProfileError` naming the bad fields.

        >>> from hce.testcard import builtin_profile_dict
        >>> CardProfile.from_dict(builtin_profile_dict("visa", now=0)).kernel
        'visa'
        >>> CardProfile.from_dict({"version": 1})
        Traceback (most recent call last):
        ...
        hce.errors.ProfileError: invalid card profile: kernel: Field required; ...
        """
        if not isinstance(data, Mapping):
            raise ProfileError("a card profile is a JSON object")
        try:
            model = _ProfileModel.model_validate(dict(data))
        except ValidationError as exc:
            problems = [
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            ]
            shown = "; ".join(problems[:3]) + ("; ..." if len(problems) > 1 else "")
            raise ProfileError(f"invalid card profile: {shown}") from None
        defaults = KERNEL_DEFAULTS[model.kernel]
        oda = None
        if model.oda is not None:
            try:
                oda = CardCertificates.from_dict(model.oda)
            except InvalidInput:
                raise ProfileError("invalid card profile: oda: not a certificate chain and key") from None

        def pick(name: str) -> bytes:
            value = getattr(model, name)
            return bytes.fromhex(defaults[name] if value is None else value)

        return cls(
            version=model.version,
            kernel=model.kernel,
            token_ref=model.token_ref,
            pan=model.pan,
            psn=model.psn,
            expiry=model.expiry,
            aid=bytes.fromhex(model.aid),
            label=model.label,
            priority=model.priority,
            kernel_id=bytes.fromhex(model.kernel_id),
            cvn=model.cvn,
            dki=model.dki,
            issuer_country=model.issuer_country,
            currency=model.currency,
            cvm_limit=model.cvm_limit,
            atc=model.atc,
            luks=tuple(
                LimitedUseKeySpec(k.index, bytes.fromhex(k.key), k.max_uses, k.not_after)
                for k in model.luks
            ),
            device_cvm=model.device_cvm,
            aip=pick("aip"),
            afl=pick("afl"),
            pdol=pick("pdol"),
            cdol1=pick("cdol1"),
            ctq=pick("ctq"),
            ffi=pick("ffi"),
            app_version=pick("app_version"),
            oda=oda,
            magstripe=model.magstripe and model.kernel == "mastercard",
        )

    @classmethod
    def from_json(cls, text: str) -> CardProfile:
        """Parse and validate a profile from JSON text."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProfileError(f"a card profile must be JSON: {exc.msg} (line {exc.lineno})") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> CardProfile:
        """Read and validate a profile file."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ProfileError(f"cannot read card profile {path}: {exc.strerror}") from None
        return cls.from_json(text)

    def to_dict(self) -> dict[str, Any]:
        """The profile as the JSON object of the module docstring (overrides made explicit)."""
        return {
            "version": self.version,
            "kernel": self.kernel,
            "token_ref": self.token_ref,
            "pan": self.pan,
            "psn": self.psn,
            "expiry": self.expiry,
            "aid": self.aid.hex().upper(),
            "label": self.label,
            "priority": self.priority,
            "kernel_id": self.kernel_id.hex().upper(),
            "cvn": self.cvn,
            "dki": self.dki,
            "issuer_country": self.issuer_country,
            "currency": self.currency,
            "cvm_limit": self.cvm_limit,
            "atc": self.atc,
            "luks": [
                {"index": k.index, "key": k.key.hex().upper(), "max_uses": k.max_uses,
                 "not_after": k.not_after}
                for k in self.luks
            ],
            "device_cvm": self.device_cvm,
            "aip": self.aip.hex().upper(),
            "afl": self.afl.hex().upper(),
            "pdol": self.pdol.hex().upper(),
            "cdol1": self.cdol1.hex().upper(),
            "ctq": self.ctq.hex().upper(),
            "ffi": self.ffi.hex().upper(),
            "app_version": self.app_version.hex().upper(),
            **({"oda": self.oda.to_dict()} if self.oda is not None else {}),
            **({"magstripe": True} if self.magstripe else {}),
        }

    def with_device_cvm(self, verified: bool) -> CardProfile:
        """The same profile with the wallet's consumer-device-CVM flag set or cleared."""
        return replace(self, device_cvm=verified)
