"""The token service certifies the cards it provisions for offline data authentication (optional).

With ``Config.oda_profiles`` the sealed card profile carries an ICC key certified by the test
issuer under the hcekit test CA; the device's card then signs, and a terminal authenticates it
with nothing but its CA key table. Without it the profile has no chain (cloud cards are
online-only).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cryptogram.oda_recover import recover_icc_key, recover_issuer_key
from cryptogram.rsa import RsaPublicKey
from cryptogram.testkeys import oda_test_key
from hce.applet import CardApplet
from hce.profile import CardProfile
from terminal.outcome import Outcome
from terminal.testing import CardTerminalPair
from tests.tsp_backend.tsp_helpers import dispose, make_config, make_wallet
from tsp_backend.app import create_app
from tsp_backend.services.oda_keys import OdaIssuer, certify_profile


@pytest.fixture
def oda_app(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Flask]:
    application = create_app(make_config(backend, tmp_path, request, oda_profiles=True))
    application.testing = True
    yield application
    dispose(application)


@pytest.mark.parametrize(("pan", "kernel", "method"), [
    ("4111111111111111", "visa", "fdda"),
    ("5555555555554444", "mastercard", "cda"),
])
def test_provisioned_card_authenticates_offline(oda_app: Flask, pan: str, kernel: str, method: str) -> None:
    """A card provisioned with ODA on signs its taps, and the terminal's check passes."""
    client: FlaskClient = oda_app.test_client()
    wallet = make_wallet(client)
    response = wallet.provision(pan)
    assert response.status_code == 201, response.get_json()
    data = wallet.open(response.get_json()["profile"])
    assert data["kernel"] == kernel and "oda" in data
    out = CardTerminalPair(CardApplet(CardProfile.from_dict(data)).process).tap(1250).outcome
    assert out.outcome is Outcome.ONLINE_REQUEST
    assert out.oda is not None and (out.oda.method, out.oda.status) == (method, "passed")


def test_profiles_have_no_chain_by_default(wallet) -> None:  # type: ignore[no-untyped-def]
    """Without oda_profiles the profile is online-only: no chain, no ODA bits in the AIP."""
    data = wallet.open(wallet.provision("4111111111111111").get_json()["profile"])
    assert "oda" not in data and "aip" not in data


def test_certificates_bind_the_token_pan_and_expiry() -> None:
    """The issued ICC certificate names the token PAN and the card's expiry; the issuer is the test issuer."""
    profile = {"kernel": "mastercard", "pan": "5413330089010012", "expiry": "3012", "psn": "00",
               "issuer_country": "0840"}
    chain = certify_profile(profile)["oda"]
    ca = oda_test_key("ca").public
    issuer = recover_issuer_key(ca, bytes.fromhex(chain["issuer_certificate"]),
                                bytes.fromhex(chain["issuer_remainder"]), b"\x03",
                                pan=profile["pan"], today="250101")
    assert issuer.key == oda_test_key("issuer").public
    record = bytes.fromhex(chain["static_record"])
    icc = recover_icc_key(issuer.key, bytes.fromhex(chain["icc_certificate"]),
                          bytes.fromhex(chain["icc_remainder"]), bytes.fromhex(chain["icc_exponent"]),
                          pan=profile["pan"], static_data=record[2:] + bytes.fromhex("1B80"), today="250101")
    assert (icc.pan, icc.expiry) == ("5413330089010012", "1230")
    assert isinstance(icc.key, RsaPublicKey) and icc.key.length == 128
    assert repr(OdaIssuer.test()) == "OdaIssuer(ca_index=E1)"
