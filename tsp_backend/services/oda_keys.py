"""The token service as a card issuer for offline data authentication: certify a card's RSA key.

A cloud-based card is online-only and needs no certificate; but to test a terminal's offline data
authentication end to end with keys the project made itself (EMV 4.4 Book 2 §5-§6), the service
can give each card profile it delivers an ICC key pair and its certificate chain:

    certification authority (held here) ──certifies──▶ issuer key (held here)
    issuer key ──certifies──▶ a fresh ICC key for this card, bound to its PAN, expiry and AIP

By default the CA and issuer are the published *hcekit test CA* and test issuer
(:mod:`cryptogram.testkeys`, CA index E1 under every RID), which the terminal's CA key table
lists as test keys: cards certified here authenticate at hcekit's terminal and are declined by
any real acquirer. ``HCEKIT_ODA_CA_KEY`` / ``HCEKIT_ODA_ISSUER_KEY`` (PEM files) and
``HCEKIT_ODA_CA_INDEX`` name other keys. Whether profiles get a chain at all is
``Config.oda_profiles`` (``HCEKIT_ODA=1``): off by default, as real tokenized cards have none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptogram.oda import ODA_AIP, issue_card
from cryptogram.rsa import RsaPrivateKey, generate_private_key
from cryptogram.testkeys import TEST_CA_INDEX, oda_test_key

__all__ = ["OdaIssuer", "certify_profile"]

ICC_KEY_BITS = 1024
"""The card key size: a 128-byte signature keeps the Visa GPO response within one short APDU."""


@dataclass(frozen=True, slots=True, repr=False)
class OdaIssuer:
    """The CA and issuer keys the service certifies cards with, and the CA's index (8F)."""

    ca: RsaPrivateKey
    issuer: RsaPrivateKey
    ca_index: int = TEST_CA_INDEX

    def __repr__(self) -> str:
        return f"OdaIssuer(ca_index={self.ca_index:02X})"

    @classmethod
    def test(cls) -> OdaIssuer:
        """The published hcekit test CA and test issuer."""
        return cls(oda_test_key("ca"), oda_test_key("issuer"))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OdaIssuer:
        """The keys named by ``HCEKIT_ODA_CA_KEY``/``HCEKIT_ODA_ISSUER_KEY``, else the test keys."""
        if not env.get("HCEKIT_ODA_CA_KEY") and not env.get("HCEKIT_ODA_ISSUER_KEY"):
            return cls.test()
        ca = RsaPrivateKey.from_pem(Path(env["HCEKIT_ODA_CA_KEY"]).read_bytes())
        issuer = RsaPrivateKey.from_pem(Path(env["HCEKIT_ODA_ISSUER_KEY"]).read_bytes())
        return cls(ca, issuer, int(env.get("HCEKIT_ODA_CA_INDEX", f"{TEST_CA_INDEX:02X}"), 16))

    def certify(self, profile: dict[str, Any], *, icc: RsaPrivateKey | None = None) -> dict[str, Any]:
        """``profile`` with the ODA AIP of its kernel and an ``oda`` chain for a fresh ICC key."""
        kernel = profile["kernel"]
        aip = ODA_AIP[kernel]
        chain = issue_card(
            ca=self.ca, ca_index=self.ca_index, issuer=self.issuer,
            icc=icc or generate_private_key(ICC_KEY_BITS, 3), pan=profile["pan"], expiry=profile["expiry"],
            psn=profile["psn"], country=profile["issuer_country"], aip=aip,
        )
        return {**profile, "aip": aip.hex().upper(), "oda": chain.to_dict()}


def certify_profile(profile: dict[str, Any], issuer: OdaIssuer | None = None) -> dict[str, Any]:
    """``profile`` certified by ``issuer`` (default: the test CA and issuer)."""
    return (issuer or OdaIssuer.test()).certify(profile)
