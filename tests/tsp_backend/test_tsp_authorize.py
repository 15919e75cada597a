"""POST /api/authorize and /api/payments/in-app: an hce card tapped on the kernel, verified by the TSP."""

from __future__ import annotations

import dataclasses
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cryptogram.cvn import profile as cvn_profile
from tests.tsp_backend.tsp_helpers import Wallet, make_wallet, transaction_count
from tests.tsp_backend.tsp_pay_helpers import (
    FlaskHost,
    applet,
    in_app_emv,
    in_app_request,
    provision_profile,
    tap,
)
from tsp_backend.services.networks import NETWORKS


@pytest.mark.parametrize(
    ("pan", "network"),
    [
        ("4111111111111111", "visa"),  # risk.py test table, green
        ("5555555555554444", "mastercard"),  # risk.py test table, green
        ("378282246310005", "amex"),  # risk.py test table, green
        ("6011111111111117", "discover"),  # risk.py test table, green
    ],
)
def test_approved_tap_on_every_network(wallet: Wallet, host: FlaskHost, pan: str, network: str) -> None:
    """A tap with a freshly provisioned token is approved with an auth code and a verifiable ARPC."""
    _, profile = provision_profile(wallet, pan)
    card = applet(profile)
    result = tap(card, 1250, host)
    answer = result.outcome.host
    assert answer is not None and answer.approved, answer
    assert answer.response_code == "00" and len(answer.auth_code) == 6 and answer.network == network
    cvn = cvn_profile(profile["cvn"])
    luk = next(
        bytes.fromhex(k["key"]) for k in profile["luks"] if k["index"] == card.last_cryptogram.luk_index
    )
    data = dict(result.outcome.data)
    expected = cvn.issuer_authentication_data(luk, data, data[0x9F26], arc=b"00")
    assert answer.arpc == expected


def test_tampered_amount_is_declined_59(wallet: Wallet, host: FlaskHost) -> None:
    """A request whose amount differs from the cryptogram's is suspected fraud."""
    _, profile = provision_profile(wallet)
    host.tamper = {"amount": 1}
    answer = tap(applet(profile), 1250, host).outcome.host
    assert answer is not None and (answer.approved, answer.response_code) == (False, "59")
    assert "amount" in answer.reason


def test_tampered_emv_amount_fails_the_cryptogram(wallet: Wallet, host: FlaskHost) -> None:
    """Changing 9F02 inside the EMV block breaks the cryptogram: 59, no ARPC."""
    _, profile = provision_profile(wallet)
    result = tap(applet(profile), 1250, None)
    emv = result.outcome.authorization_data.hex().upper().replace("9F0206000000001250", "9F0206000000000001")
    body = {"emv": emv, "amount": 1, "currency": "EUR", "merchant": {"id": "M-1"}, "channel": "contactless"}
    doc = host.post(body, str(uuid.uuid4())).get_json()
    assert (doc["approved"], doc["responseCode"], doc["arpc"]) == (False, "59", None)
    assert "cryptogram" in doc["reason"]


def test_replayed_cryptogram_is_declined_59(wallet: Wallet, host: FlaskHost) -> None:
    """The same cryptogram sent again under a new Idempotency-Key is a replay."""
    _, profile = provision_profile(wallet)
    assert tap(applet(profile), 1250, host).outcome.host.approved  # type: ignore[union-attr]
    doc = host.post(host.requests[-1], str(uuid.uuid4())).get_json()
    assert (doc["approved"], doc["responseCode"]) == (False, "59") and "replay" in doc["reason"]


def test_same_idempotency_key_replays_the_answer(app: Flask, wallet: Wallet, host: FlaskHost) -> None:
    """A retry with the same key gets the first answer, marked as replayed, and no new row."""
    _, profile = provision_profile(wallet)
    body = tap(applet(profile), 1250, None)
    request = {"emv": body.outcome.authorization_data.hex(), "amount": 1250, "currency": "EUR"}
    first = host.post(request, "key-1")
    second = host.post(request, "key-1")
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert first.get_json() == second.get_json() and first.get_json()["approved"]
    assert transaction_count(app) == 1


def test_suspended_token_is_declined_57(wallet: Wallet, host: FlaskHost) -> None:
    """A suspended token may not pay."""
    card_id, profile = provision_profile(wallet)
    assert wallet.post(f"/api/cards/{card_id}/suspend", {"reason": "CUSTOMER_REQUEST"}).status_code == 200
    answer = tap(applet(profile), 1250, host).outcome.host
    assert answer is not None and answer.response_code == "57" and "SUSPENDED" in answer.reason


def test_unknown_token_is_declined_like_a_forged_cryptogram(wallet: Wallet, host: FlaskHost) -> None:
    """A token PAN nobody issued gets the answer of a cryptogram that does not verify: 59, no network."""
    _, profile = provision_profile(wallet)
    unknown = tap(applet(profile, pan="4895370000000007"), 1250, host).outcome.host
    forged = tap(applet(profile, luks=[{**luk, "key": "00" * 16} for luk in profile["luks"]]), 1250, host)
    assert forged.outcome.host is not None and unknown is not None
    seen = [(a.approved, a.response_code, a.reason, a.network) for a in (unknown, forged.outcome.host)]
    assert seen == [(False, "59", "the cryptogram does not verify", "")] * 2


def test_expired_luk_is_declined_54(app: Flask, wallet: Wallet, host: FlaskHost) -> None:
    """A cryptogram made with a limited-use key past its not_after is an expired card."""
    _, profile = provision_profile(wallet)
    from hce.applet import CardApplet
    from hce.profile import CardProfile

    card = CardApplet(CardProfile.from_dict(profile))  # no clock: the card does not see the expiry
    app.extensions["hcekit_payments"].authorizer.clock = lambda: time.time() + 40 * 24 * 3600
    answer = tap(card, 1250, host).outcome.host
    assert answer is not None and answer.response_code == "54" and "limited-use key" in answer.reason


def test_exhausted_luk_is_declined_65(wallet: Wallet, host: FlaskHost) -> None:
    """A key that made max_uses cryptograms is refused even if the card keeps using it."""
    _, profile = provision_profile(wallet)
    greedy = [{**luk, "max_uses": 1000} for luk in profile["luks"]]
    card = applet(profile, luks=greedy)
    max_uses = profile["luks"][0]["max_uses"]
    codes = [tap(card, 100, host).outcome.host.response_code for _ in range(max_uses + 1)]  # type: ignore[union-attr]
    assert codes[:max_uses] == ["00"] * max_uses and codes[-1] == "65"


def test_wrong_channel_is_declined_57(wallet: Wallet, host: FlaskHost) -> None:
    """A token limited to in-app payments may not be tapped."""
    card_id, profile = provision_profile(wallet)
    response = wallet.client.put(
        f"/api/cards/{card_id}/controls", json={"channels": ["in_app"]}, headers=wallet.headers
    )
    assert response.status_code == 200 and response.get_json()["channels"] == ["in_app"]
    answer = tap(applet(profile), 1250, host).outcome.host
    assert answer is not None and answer.response_code == "57" and "contactless" in answer.reason


def test_blocked_mcc_is_declined_57(wallet: Wallet, host: FlaskHost) -> None:
    """A token may block merchant categories."""
    card_id, profile = provision_profile(wallet)
    wallet.client.put(
        f"/api/cards/{card_id}/controls", json={"blockedMccs": ["5814"]}, headers=wallet.headers
    )
    answer = tap(applet(profile), 1250, host).outcome.host
    assert answer is not None and answer.response_code == "57"


def test_cvm_limit_is_the_card_profiles(
    wallet: Wallet, host: FlaskHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limit the service enforces is the one the card's profile carries (one definition)."""
    monkeypatch.setitem(NETWORKS, "visa", dataclasses.replace(NETWORKS["visa"], cvm_limit=10_000))
    _, profile = provision_profile(wallet)
    assert profile["cvm_limit"] == 10_000
    answer = tap(applet(profile), 6000, host).outcome.host
    assert answer is not None and answer.approved, answer
    answer = tap(applet(profile, cvm_limit=1_000_000, atc=50), 12_000, host).outcome.host
    assert answer is not None and answer.response_code == "1A"


def test_atc_window(wallet: Wallet, host: FlaskHost) -> None:
    """An ATC more than 100 above or 32 below the highest seen is refused (59), on both forms."""
    _, profile = provision_profile(wallet)
    first = tap(applet(profile, atc=80), 1250, host).outcome.host
    assert first is not None and first.approved, first
    above = tap(applet(profile, atc=80 + 101), 1250, host).outcome.host
    assert above is not None and above.response_code == "59"
    assert above.reason == "the ATC jumped too far above the highest seen"
    below = tap(applet(profile, atc=80 - 33), 1250, host).outcome.host
    assert below is not None and below.response_code == "59"
    assert below.reason == "the ATC is too far below the highest seen"
    inside = tap(applet(profile, atc=80 - 32), 1250, host).outcome.host
    assert inside is not None and inside.approved, inside
    edge = tap(applet(profile, atc=81 + 99), 1250, host).outcome.host
    assert edge is not None and edge.approved, edge


def test_above_cvm_limit_without_device_cvm_is_1a(wallet: Wallet, host: FlaskHost) -> None:
    """Above the CVM limit the phone must have verified its holder (CTQ byte 2 bit 8)."""
    _, profile = provision_profile(wallet)
    answer = tap(applet(profile, cvm_limit=1_000_000), 6000, host).outcome.host
    assert answer is not None and answer.response_code == "1A"
    answer = tap(applet(profile, device_cvm=True, atc=50), 6000, host).outcome.host
    assert answer is not None and answer.approved


@pytest.mark.parametrize(
    ("pan", "amount", "code"),
    [
        ("4000000000009995", 1250, "51"),  # issuers.py test table: balance 0
        ("4000000000000127", 1250, "05"),  # issuers.py test table: do not honour
        ("4000000000000614", 1250, "61"),  # issuers.py test table: per-transaction limit 1,000
    ],
)
def test_issuer_declines(wallet: Wallet, host: FlaskHost, pan: str, amount: int, code: str) -> None:
    """The issuer's rules decline with their codes, with an ARPC."""
    _, profile = provision_profile(wallet, pan)
    answer = tap(applet(profile), amount, host).outcome.host
    assert answer is not None and (answer.approved, answer.response_code) == (False, code)
    assert answer.arpc


def test_issuer_velocity_is_65(wallet: Wallet, host: FlaskHost) -> None:
    """The third request in an hour on the velocity test account is 65."""
    _, profile = provision_profile(wallet, "4000000000000655")
    card = applet(profile)
    codes = [tap(card, 100, host).outcome.host.response_code for _ in range(3)]  # type: ignore[union-attr]
    assert codes == ["00", "00", "65"]


def test_authorize_needs_a_terminal_key_and_an_idempotency_key(client: FlaskClient, host: FlaskHost) -> None:
    """No key is 401, no Idempotency-Key is 400, a bad body is 400 — all problems."""
    body = {"emv": "9F2608AABBCCDDEEFF0011", "amount": 1, "currency": "EUR"}
    assert client.post("/api/authorize", json=body).status_code == 401
    response = client.post("/api/authorize", json=body, headers={"Authorization": f"Bearer {host.api_key}"})
    assert response.status_code == 400 and response.mimetype == "application/problem+json"
    bad = host.post({**body, "currency": "EURO"}, "k")
    assert bad.status_code == 400 and bad.get_json()["type"].endswith("request-validation")


def test_garbage_emv_is_format_error(host: FlaskHost) -> None:
    """EMV data that is not BER-TLV is declined 30."""
    doc = host.post({"emv": "9F26FF", "amount": 1, "currency": "EUR"}, "k").get_json()
    assert doc["responseCode"] == "30"


def test_in_app_payment(wallet: Wallet) -> None:
    """An in-app PaymentRequest with the card's cryptogram is approved and shows in the history."""
    card_id, profile = provision_profile(wallet)
    card = applet(profile)
    request = in_app_request(card_id, 1999, in_app_emv(card, 1999), "M-42", merchantName="Example Shop")
    response = wallet.post("/api/payments/in-app", request, key=str(uuid.uuid4()))
    doc = response.get_json()
    assert response.status_code == 200 and doc["approved"] and doc["network"] == "visa", doc
    history = wallet.get(f"/api/transactions?cardId={card_id}").get_json()
    assert history["items"][0]["id"] == doc["transactionId"]
    assert history["items"][0]["channel"] == "in_app" and history["items"][0]["status"] == "approved"
    other_id, _ = provision_profile(wallet, "5555555555554444")
    mismatch = {**request, "cardId": other_id, "emv": in_app_emv(card, 1999)}
    assert (
        wallet.post("/api/payments/in-app", mismatch, key=str(uuid.uuid4())).get_json()["responseCode"]
        == "14"
    )


def test_in_app_needs_session_and_own_card(client: FlaskClient, wallet: Wallet) -> None:
    """Without a session it is 401; with someone else's card 404."""
    card_id, _profile = provision_profile(wallet)
    request = {"cardId": card_id, "amount": 100, "currency": "EUR", "merchantId": "M", "emv": "00"}
    assert (
        client.post("/api/payments/in-app", json=request, headers={"Idempotency-Key": "k"}).status_code == 401
    )
    other = make_wallet(client)
    assert other.post("/api/payments/in-app", request, key="k").status_code == 404


def test_in_app_channel_control(wallet: Wallet) -> None:
    """A token limited to contactless may not pay in an app (57)."""
    card_id, profile = provision_profile(wallet)
    wallet.client.put(
        f"/api/cards/{card_id}/controls", json={"channels": ["contactless"]}, headers=wallet.headers
    )
    request = in_app_request(card_id, 100, in_app_emv(applet(profile), 100))
    assert wallet.post("/api/payments/in-app", request, key="k").get_json()["responseCode"] == "57"


def test_history_pages_newest_first_and_is_private(
    client: FlaskClient, wallet: Wallet, host: FlaskHost
) -> None:
    """Cursor pagination walks every transaction once, newest first; another user sees none."""
    _, profile = provision_profile(wallet)
    card = applet(profile)
    ids = [tap(card, 100 + i, host).outcome.host.transaction_id for i in range(5)]  # type: ignore[union-attr]
    seen: list[str] = []
    cursor = ""
    while True:
        page = wallet.get(f"/api/transactions?limit=2&cursor={cursor}").get_json()
        seen += [item["id"] for item in page["items"]]
        if not page["nextCursor"]:
            break
        cursor = page["nextCursor"]
    assert seen == ids[::-1]
    other = make_wallet(client)
    assert other.get("/api/transactions").get_json()["items"] == []
    assert other.get(f"/api/transactions/{ids[0]}").status_code == 404
    assert wallet.get(f"/api/transactions/{ids[0]}").get_json()["amount"] == 100
    assert wallet.get("/api/transactions?cursor=!!").status_code == 400


def test_twenty_parallel_requests_with_one_key_make_one_transaction(
    app: Flask, wallet: Wallet, host: FlaskHost
) -> None:
    """The same Idempotency-Key sent 20 times at once yields one transaction row."""
    _, profile = provision_profile(wallet)
    result = tap(applet(profile), 1250, None)
    body = {"emv": result.outcome.authorization_data.hex(), "amount": 1250, "currency": "EUR"}

    def send(_i: int) -> tuple[int, Any]:
        response = FlaskHost(app.test_client(), host.api_key).post(body, "same-key")
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(send, range(20)))
    assert {status for status, _ in answers} <= {200, 409}
    approved = [doc for status, doc in answers if status == 200]
    assert approved and all(doc == approved[0] for doc in approved) and approved[0]["approved"]
    assert transaction_count(app) == 1
