"""Passkey ceremonies refuse answers that do not verify (W3C WebAuthn Level 3 §7.1, §7.2).

The answers that do verify come from Chromium's virtual authenticator in
``tests/integration/test_web_chromium.py``; these are the refusals, at the service.
"""

from __future__ import annotations

import base64

import pytest
from flask import Flask

from tests.tsp_backend.tsp_helpers import Wallet
from tsp_backend.models import Device, Passkey, User
from tsp_backend.services.passkeys import PasskeyRefused, RelyingParty, register, verify_assertion

RP = RelyingParty(rp_id="localhost", origin="http://localhost:5000")
CREDENTIAL_ID = b"\x01" * 16
RAW_ID = base64.urlsafe_b64encode(CREDENTIAL_ID).rstrip(b"=").decode()
FORGED = {"id": RAW_ID, "rawId": RAW_ID, "type": "public-key",
          "response": {"clientDataJSON": "e30", "attestationObject": "AA", "authenticatorData": "AA",
                       "signature": "AA"}}


def test_a_registration_that_does_not_verify_is_refused_and_spends_its_challenge(
    app: Flask, wallet: Wallet
) -> None:
    services = app.extensions["hcekit"]
    services.store.set(f"passkey:reg:{wallet.user_id}", b"c" * 32, 60)
    with services.sessions_factory() as session:
        user = session.get(User, wallet.user_id)
        with pytest.raises(PasskeyRefused, match="could not be verified"):
            register(session, services.store, RP, user, "Chromium", FORGED)
        with pytest.raises(PasskeyRefused, match="has expired"):
            register(session, services.store, RP, user, "Chromium", FORGED)
        assert session.query(Passkey).count() == 0


def test_an_assertion_that_does_not_verify_is_refused_and_keeps_the_counter(
    app: Flask, wallet: Wallet
) -> None:
    services = app.extensions["hcekit"]
    with services.sessions_factory() as session, session.begin():
        device = Device(user_id=wallet.user_id, name="Chromium", public_key=b"", key_id="passkey:t",
                        status="ACTIVE", kind="browser")
        session.add(device)
        session.flush()
        session.add(Passkey(user_id=wallet.user_id, device_id=device.id, credential_id=CREDENTIAL_ID,
                            public_key=b"\xa5\x01\x02", sign_count=7))
    with services.sessions_factory() as session:
        with pytest.raises(PasskeyRefused, match="could not be verified"):
            verify_assertion(session, RP, wallet.user_id, FORGED, b"c" * 32)
        assert session.query(Passkey).one().sign_count == 7
