"""The web payment's token cryptogram: checked against pyemv, authorized on the common path once."""

from __future__ import annotations

import datetime as dt
import uuid
import warnings
from typing import Any

import pyemv
import pytest
from cryptography.utils import CryptographyDeprecationWarning
from flask import Flask

from apdu.tlv import decode, walk
from cryptogram.cvn import profile as cvn_profile
from tests.tsp_backend.tsp_helpers import Wallet
from tsp_backend.api.payments import payments
from tsp_backend.models import Card
from tsp_backend.services.authorization import AuthorizationRequest, AuthorizationResult, IdempotentRequest
from tsp_backend.services.webpay import PaymentIntent, WebCryptograms, token_cryptogram, unpredictable_number

LUK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
UN = bytes.fromhex("A1B2C3D4")


def _tags(block: bytes) -> dict[int, bytes]:
    return {n.tag: n.value for n in walk(decode(block)) if not n.constructed}


def _pyemv(call: Any, *args: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return call(*args)


@pytest.mark.parametrize("name", ["visa18", "visa22", "mc16"])
def test_token_cryptogram_matches_pyemv(name: str) -> None:
    """The ARQC of the web block equals pyemv's over the same elements (an independent MAC)."""
    cvn = cvn_profile(name)
    block = token_cryptogram(
        cvn, LUK, token_pan="4895370012003478", psn="00", expiry="3012", atc=7, luk_index=3,
        amount=1450, currency=978, date="261201", unpredictable=UN,
    )
    t = _tags(block)
    assert t[0x9F02].hex() == "000000001450" and t[0x5F2A].hex() == "0978" and t[0x9F37] == UN
    assert t[0x9F36] == b"\x00\x07" and t[0x9F27] == b"\x80" and cvn.parse_iad(t[0x9F10]).luk_index == 3
    order = (0x9F02, 0x9F03, 0x9F1A, 0x95, 0x5F2A, 0x9A, 0x9C, 0x9F37, 0x82, 0x9F36)
    common = b"".join(t[tag] for tag in order)
    if name == "mc16":
        session_key = _pyemv(pyemv.kd.derive_common_sk, LUK, t[0x9F36] + b"\x00\x00" + UN)
        data = common + t[0x9F10][2:8]
    else:
        session_key = _pyemv(pyemv.kd.derive_common_sk, LUK, t[0x9F36] + bytes(6))
        data = common + t[0x9F10]
    expected = _pyemv(pyemv.ac.generate_ac, session_key, data, pyemv.ac.PaddingType.EMV)
    assert t[0x9F26] == expected


def test_challenge_binds_every_field_of_the_intent() -> None:
    """Changing the card, amount, currency or merchant changes the challenge (and so the UN)."""
    base = PaymentIntent(1, 1450, "EUR", "shop", "Shop")
    nonce = bytes(16)
    others = [
        PaymentIntent(2, 1450, "EUR", "shop", "Shop"),
        PaymentIntent(1, 1451, "EUR", "shop", "Shop"),
        PaymentIntent(1, 1450, "USD", "shop", "Shop"),
        PaymentIntent(1, 1450, "EUR", "shop2", "Shop"),
    ]
    assert len({base.challenge(nonce), *(o.challenge(nonce) for o in others)}) == 5
    assert unpredictable_number(base.challenge(nonce)) == base.challenge(nonce)[:4]


def _authorize(
    app: Flask, card_id: int, intent: PaymentIntent, emv: bytes | None = None
) -> tuple[bytes, Any]:
    svc = app.extensions["hcekit"]
    with app.app_context():
        session = svc.sessions_factory()
        try:
            card = session.get(Card, card_id)
            assert card is not None
            if emv is None:
                emv = WebCryptograms(svc.config, svc.store).make(
                    session, card, intent, UN, dt.datetime.now(dt.timezone.utc)
                )
            answer = payments().authorizer.authorize(
                session,
                AuthorizationRequest(
                    emv=emv, amount=intent.amount, currency=intent.currency, channel="web",
                    merchant_id=intent.merchant_id, card_id=card_id,
                ),
                IdempotentRequest("test", "POST /test", str(uuid.uuid4()), "fingerprint"),
                actor="test",
            )
            assert answer.result is not None
            result: AuthorizationResult = answer.result
        finally:
            session.close()
    return emv, result


def test_web_cryptogram_authorizes_once_and_binds_the_amount(app: Flask, wallet: Wallet) -> None:
    """Made by the service, the block is approved; replayed it is refused (59); another amount is 59."""
    response = wallet.provision("4111111111111111")
    assert response.status_code == 201
    card_id = int(response.get_json()["card"]["id"])
    intent = PaymentIntent(card_id, 1450, "EUR", "hcekit-demo-shop")
    emv, first = _authorize(app, card_id, intent)
    assert first.approved and first.status == "approved", first
    _, replay = _authorize(app, card_id, intent, emv)
    assert not replay.approved and replay.response_code == "59" and "replay" in replay.reason
    _, changed = _authorize(app, card_id, PaymentIntent(card_id, 9999, "EUR", "hcekit-demo-shop"), emv)
    assert not changed.approved and changed.response_code == "59"
    _, second = _authorize(app, card_id, intent)
    assert second.approved, second


def test_auth_me_is_the_seed_name_of_me(wallet: Wallet) -> None:
    """GET /api/auth/me answers as GET /api/me does."""
    seed = wallet.get("/api/auth/me")
    assert seed.status_code == 200 and seed.get_json() == wallet.get("/api/me").get_json()


def test_transaction_types_are_nfc_in_app_web(app: Flask, wallet: Wallet) -> None:
    """The API names a web payment's type ``web`` and a tap's ``nfc`` (the channel stays)."""
    from terminal.testing import CardTerminalPair
    from tests.tsp_backend.tsp_pay_helpers import FlaskHost, applet, provision_profile, terminal_key

    card_id, profile = provision_profile(wallet, "4242424242424242")
    host = FlaskHost(wallet.client, terminal_key(wallet))
    tap = CardTerminalPair(applet(profile).process, date=dt.date.today().strftime("%y%m%d")).tap(
        500, "EUR", host=host
    )
    assert tap.outcome.outcome.value == "approved"
    _, web = _authorize(app, card_id, PaymentIntent(card_id, 700, "EUR", "hcekit-demo-shop"))
    assert web.approved
    items = wallet.get("/api/transactions").get_json()["items"]
    found = {(t["type"], t["channel"], t["amount"]) for t in items}
    assert found == {("nfc", "contactless", 500), ("web", "web", 700)}


def test_a_browser_device_gets_no_card_profile(app: Flask, wallet: Wallet) -> None:
    """Provisioning to a browser device through the API is a 400 problem, never a 500."""
    from tsp_backend.models import Device

    with app.extensions["hcekit"].sessions_factory() as session, session.begin():
        browser = Device(
            user_id=wallet.user_id, name="Chromium", public_key=b"", key_id="passkey:x", kind="browser"
        )
        session.add(browser)
        session.flush()
        browser_id = browser.id
    refused = wallet.provision("4111111111111111", device_id=browser_id)
    assert refused.status_code == 400, refused.get_data(as_text=True)
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.get_json()["field"] == "deviceId"
    listed = wallet.get("/api/cards").get_json()
    assert (listed["items"] if isinstance(listed, dict) else listed) == []


@pytest.mark.parametrize("path", ["/wallet/passkey/options", "/wallet/passkey", "/wallet/pay/options",
                                  "/wallet/pay/confirm"])
def test_page_json_endpoints_take_only_json(client: Any, path: str) -> None:
    """A form post to the pages' JSON endpoints is a 415 problem (no cross-site form reaches them)."""
    response = client.post(path, data={"cardId": "1"})
    assert response.status_code == 415
    assert response.headers["Content-Type"] == "application/problem+json"
    assert client.post(path, json={}).status_code == 401
