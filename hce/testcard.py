"""The built-in test card: a documented test token with published test keys, for each kernel.

``hcekit emulate`` with no profile uses these, so a tap works out of the box and any issuer
simulator that knows the same published key can verify the cryptograms.

The keys are test material, public on purpose -- never use them for anything real:

* Issuer master key (for the AC): ``0123456789ABCDEFFEDCBA9876543210``, the double-length
  test key of the EMV examples that open-source EMV libraries use in their documentation and
  tests (e.g. knovichikhin/pyemv's doctests of ``derive_icc_mk_a``).
* Visa test PAN ``4761739001010010``, PSN ``01``: the PAN of Visa's ADVT test card #1, printed in
  public terminal-certification logs. Kernel 3 (qVSDC), CVN 18.
* Mastercard test PAN ``5413330089010012``, PSN ``01``: a Luhn-valid number in the 541333 range
  of Mastercard's M-TIP test cards. Kernel 2 (M/Chip), CVN 16.

The token master key is the ICC master key of the test PAN (:meth:`cryptogram.cvn.CVN.derive_icc_mk`:
option A, or B which is the same for 16 digits), and the card's limited-use keys are derived from
it at start-up with :func:`cryptogram.luk.derive_luk_batch` -- exactly what the issuer side
re-derives to verify.

>>> p = builtin_profile_dict("mastercard", now=1_700_000_000)
>>> p["pan"], p["cvn"], len(p["luks"]), p["luks"][0]["not_after"] - 1_700_000_000
('5413330089010012', 'mc16', 5, 2592000)
"""

from __future__ import annotations

from typing import Any

from cryptogram.cvn import profile as cvn_profile
from cryptogram.luk import derive_luk_batch
from cryptogram.oda import ODA_AIP, issue_card
from cryptogram.testkeys import TEST_CA_INDEX, oda_test_key
from hce.profile import CardProfile

__all__ = ["TEST_CARDS", "TEST_IMK", "builtin_profile", "builtin_profile_dict"]

TEST_IMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
"""The published test issuer master key (module docstring)."""

LUK_COUNT = 5
LUK_MAX_USES = 100
LUK_LIFETIME = 30 * 24 * 3600

#: The static part of each test card's profile.
TEST_CARDS: dict[str, dict[str, Any]] = {
    "visa": {
        "version": 1, "kernel": "visa", "token_ref": "DNITHE000000000000000001",
        "pan": "4761739001010010", "psn": "01", "expiry": "3012",
        "aid": "A0000000031010", "label": "VISA TEST", "priority": 1, "kernel_id": "03",
        "cvn": "visa18", "dki": 1, "issuer_country": "0840", "currency": "0840",
        "cvm_limit": 5000, "atc": 0, "device_cvm": False,
    },
    "mastercard": {
        "version": 1, "kernel": "mastercard", "token_ref": "MCTOKEN000000000000000001",
        "pan": "5413330089010012", "psn": "01", "expiry": "3012",
        "aid": "A0000000041010", "label": "MASTERCARD TEST", "priority": 1, "kernel_id": "02",
        "cvn": "mc16", "dki": 1, "issuer_country": "0840", "currency": "0840",
        "cvm_limit": 5000, "atc": 0, "device_cvm": False,
    },
}


def builtin_profile_dict(
    kernel: str = "visa", *, now: int, device_cvm: bool = False, oda: bool = False,
    magstripe: bool = False,
) -> dict[str, Any]:
    """The test card of ``kernel`` as a profile dict, its LUK batch valid for 30 days from ``now``.

    With ``oda`` the card also holds an ICC key certified by the test issuer under the hcekit
    test CA (:mod:`cryptogram.testkeys`), and signs fDDA (Visa) or CDA (Mastercard).
    """
    if kernel not in TEST_CARDS:
        raise ValueError(f"kernel must be one of {', '.join(TEST_CARDS)}, got {kernel!r}")
    data = dict(TEST_CARDS[kernel])
    cvn = cvn_profile(data["cvn"])
    token_mk = cvn.derive_icc_mk(TEST_IMK, data["pan"], data["psn"])
    batch = derive_luk_batch(token_mk, 1, LUK_COUNT, max_uses=LUK_MAX_USES, not_after=int(now) + LUK_LIFETIME)
    data["luks"] = [luk.to_dict() for luk in batch]
    data["device_cvm"] = device_cvm
    data["magstripe"] = magstripe
    if oda:
        data["aip"] = ODA_AIP[kernel].hex().upper()
        data["oda"] = issue_card(
            ca=oda_test_key("ca"), ca_index=TEST_CA_INDEX, issuer=oda_test_key("issuer"),
            icc=oda_test_key(f"icc-{kernel}"), pan=data["pan"], expiry=data["expiry"], psn=data["psn"],
            country=data["issuer_country"], aip=bytes.fromhex(data["aip"]),
        ).to_dict()
    return data


def builtin_profile(
    kernel: str = "visa", *, now: int, device_cvm: bool = False, oda: bool = False,
    magstripe: bool = False,
) -> CardProfile:
    """The validated :class:`~hce.profile.CardProfile` of the test card of ``kernel``."""
    return CardProfile.from_dict(
        builtin_profile_dict(kernel, now=now, device_cvm=device_cvm, oda=oda, magstripe=magstripe))
