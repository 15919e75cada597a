"""Provisioning, ID&V and the lifecycle routes, on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from sqlalchemy import select

from apdu.pan import luhn_valid
from tests.tsp_backend.tsp_helpers import Wallet
from tsp_backend.models import AuditEvent
from tsp_backend.services.networks import NETWORKS

PROBLEMS = "https://hcekit.dev/problems/"


@pytest.mark.parametrize(
    ("pan", "network", "kernel"),
    [
        ("4111111111111111", "visa", "visa"),  # risk.py table, green
        ("5555555555554444", "mastercard", "mastercard"),  # risk.py table, green
        ("2223000048400011", "mastercard", "mastercard"),  # risk.py table, green, 2-series BIN
        ("378282246310005", "amex", "mastercard"),  # risk.py table, green
        ("6011111111111117", "discover", "visa"),  # risk.py table, green
    ],
)
def test_green_card_is_active_with_sealed_profile(
    wallet: Wallet, pan: str, network: str, kernel: str
) -> None:
    """A green PAN gives an ACTIVE token and a profile sealed to the device, with a token PAN."""
    response = wallet.provision(pan)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["decision"] == "APPROVED"
    assert body["card"]["status"] == "ACTIVE" and body["card"]["network"] == network
    profile = wallet.open(body["profile"])
    assert profile["kernel"] == kernel
    assert profile["pan"].startswith(NETWORKS[network].token_bin) and luhn_valid(profile["pan"])
    assert profile["pan"] != pan and len(profile["luks"]) == 5
    assert profile["luks"][0]["index"] == 1 and len(profile["luks"][0]["key"]) == 32


def test_yellow_card_needs_the_outbox_code(wallet: Wallet) -> None:
    """A yellow PAN waits INACTIVE until the code from the outbox is verified."""
    response = wallet.provision("4012888888881881")
    assert response.status_code == 202
    card = response.get_json()["card"]
    assert card["status"] == "INACTIVE" and response.get_json()["verification"]["methods"]
    verified = wallet.post(f"/api/cards/{card['id']}/verify", {"code": wallet.outbox_code(card["id"])})
    assert verified.status_code == 200
    assert verified.get_json()["card"]["status"] == "ACTIVE"
    assert wallet.open(verified.get_json()["profile"])["token_ref"] == card["tokenRef"]


def test_wrong_codes_exhaust_attempts_and_deactivate(wallet: Wallet) -> None:
    """Three wrong codes deactivate the token; the counter survives each refusal."""
    card_id = wallet.provision("5105105105105100").get_json()["card"]["id"]
    code = wallet.outbox_code(card_id)
    wrong = "000000" if code != "000000" else "111111"
    first = wallet.post(f"/api/cards/{card_id}/verify", {"code": wrong})
    assert first.status_code == 422 and first.get_json()["attemptsRemaining"] == 2
    wallet.post(f"/api/cards/{card_id}/verify", {"code": wrong})
    last = wallet.post(f"/api/cards/{card_id}/verify", {"code": wrong})
    assert last.get_json()["type"] == PROBLEMS + "verification-attempts-exhausted"
    assert wallet.get(f"/api/cards/{card_id}").get_json()["status"] == "DEACTIVATED"
    again = wallet.post(f"/api/cards/{card_id}/verify", {"code": code})
    assert again.status_code == 409


def test_resend_gives_a_new_code(wallet: Wallet) -> None:
    """Asking for a method sends a new code to the outbox."""
    card_id = wallet.provision("371449635398431").get_json()["card"]["id"]
    response = wallet.post(f"/api/cards/{card_id}/verify", {"method": "otp_email"})
    assert response.status_code == 202
    assert wallet.get("/api/dev/outbox").get_json()[0]["channel"] == "email"


@pytest.mark.parametrize(
    "pan", ["4000000000000002", "5200828282828210", "340000000000009", "6011000000000004"]
)
def test_red_card_is_declined_and_nothing_stored(wallet: Wallet, pan: str) -> None:
    """A red PAN is refused with provisioning-declined and leaves no card."""
    response = wallet.provision(pan)
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert response.get_json()["type"] == PROBLEMS + "provisioning-declined"
    assert wallet.get("/api/cards").get_json()["items"] == []


@pytest.mark.parametrize(
    ("pan", "expiry", "cvv", "field"),
    [
        ("4111111111111112", "12/30", "123", "pan"),  # Luhn fails
        ("411111111111111", "12/30", "123", "pan"),  # 15 digits is no Visa length
        ("9111111111111111", "12/30", "123", "pan"),  # no network
        ("4111111111111111", "12/20", "123", "expiry"),  # expired
        ("4111111111111111", "13/30", "123", "expiry"),  # month 13
        ("4111111111111111", "12/30", "1234", "cvv"),  # a Visa CVV has 3 digits
        ("378282246310005", "12/30", "123", "cvv"),  # Amex CVV has 4 digits
    ],
)
def test_invalid_card_details_are_refused(
    wallet: Wallet, pan: str, expiry: str, cvv: str, field: str
) -> None:
    """PAN, expiry and CVV format errors are card-invalid problems naming the field."""
    response = wallet.provision(pan, expiry=expiry, cvv=cvv)
    assert response.status_code == 422
    assert response.get_json()["type"] == PROBLEMS + "card-invalid"
    assert response.get_json()["field"] == field


def test_schema_errors_are_request_validation(wallet: Wallet) -> None:
    """A body missing fields is a 400 request-validation problem listing them."""
    response = wallet.post("/api/cards", {"pan": "4111111111111111"}, key="k-schema")
    assert response.status_code == 400
    fields = {e["field"] for e in response.get_json()["errors"]}
    assert {"expiry", "cvv", "deviceId"} <= fields


def test_same_card_twice_on_one_device_conflicts(wallet: Wallet) -> None:
    """The vault fingerprint finds the card again: a second token on the same device is refused."""
    assert wallet.provision().status_code == 201
    second = wallet.provision()
    assert second.status_code == 409 and second.get_json()["type"] == PROBLEMS + "already-exists"


def test_suspend_reactivate_delete(wallet: Wallet) -> None:
    """The seed lifecycle routes follow the transition table and refuse the rest with 409."""
    card_id = wallet.provision().get_json()["card"]["id"]
    assert wallet.post(f"/api/cards/{card_id}/suspend", {"reason": "CUSTOMER_REQUEST"}).get_json()[
        "status"
    ] == ("SUSPENDED")
    assert wallet.post(f"/api/cards/{card_id}/suspend", {"reason": "CUSTOMER_REQUEST"}).status_code == 409
    bad = wallet.post(f"/api/cards/{card_id}/reactivate", {"reason": "DEVICE_FOUND"})
    assert bad.status_code == 400 and bad.get_json()["field"] == "reason"
    assert wallet.post(f"/api/cards/{card_id}/reactivate", {"reason": "CUSTOMER_REQUEST"}).get_json()[
        "status"
    ] == ("ACTIVE")
    assert wallet.delete(f"/api/cards/{card_id}").get_json()["status"] == "DEACTIVATED"
    assert wallet.get("/api/cards").get_json()["items"] == []
    assert wallet.post(f"/api/cards/{card_id}/reactivate", {}).status_code == 409


def test_card_list_cache_follows_changes(wallet: Wallet) -> None:
    """GET /api/cards reflects every change at once (cache dropped after commit)."""
    card_id = wallet.provision().get_json()["card"]["id"]
    assert wallet.get("/api/cards").get_json()["items"][0]["status"] == "ACTIVE"
    wallet.post(f"/api/cards/{card_id}/suspend", {"reason": "SUSPECTED_FRAUD"})
    assert wallet.get("/api/cards").get_json()["items"][0]["status"] == "SUSPENDED"


def test_default_card_is_unique_per_device(wallet: Wallet) -> None:
    """PUT default moves the default flag; only ACTIVE cards may hold it."""
    first = wallet.provision("4111111111111111").get_json()["card"]["id"]
    second = wallet.provision("5555555555554444").get_json()["card"]["id"]
    assert wallet.put(f"/api/cards/{first}/default").get_json()["default"] is True
    assert wallet.put(f"/api/cards/{second}/default").get_json()["default"] is True
    defaults = {c["id"]: c["default"] for c in wallet.get("/api/cards").get_json()["items"]}
    assert defaults == {first: False, second: True}
    wallet.post(f"/api/cards/{first}/suspend", {"reason": "CUSTOMER_REQUEST"})
    assert wallet.put(f"/api/cards/{first}/default").status_code == 409


def test_key_replenishment_is_bounded(wallet: Wallet) -> None:
    """Each batch continues the LUK indexes; the fifth batch in a day is refused with 429."""
    card_id = wallet.provision().get_json()["card"]["id"]
    indexes = []
    for _ in range(3):
        response = wallet.post(f"/api/cards/{card_id}/keys")
        assert response.status_code == 200
        indexes.append([k["index"] for k in wallet.open(response.get_json()["keys"])["luks"]])
    assert indexes == [[6, 7, 8, 9, 10], [11, 12, 13, 14, 15], [16, 17, 18, 19, 20]]
    refused = wallet.post(f"/api/cards/{card_id}/keys")
    assert refused.status_code == 429 and refused.get_json()["type"] == PROBLEMS + "key-replenishment-limit"


def test_device_lost_suspends_tokens_and_revokes_sessions(wallet: Wallet) -> None:
    """Marking a device lost suspends its ACTIVE tokens and ends the sessions opened on it."""
    card_id = wallet.provision().get_json()["card"]["id"]
    bound = wallet.client.post(
        "/api/auth/login",
        json={"email": wallet.email, "password": "correct horse battery", "deviceId": wallet.device_id},
    ).get_json()["token"]
    bound_headers = {"Authorization": f"Bearer {bound}"}
    assert wallet.client.get("/api/me", headers=bound_headers).status_code == 200
    response = wallet.post(f"/api/devices/{wallet.device_id}/lost")
    assert response.status_code == 200
    assert response.get_json()["cards"] == [{"id": card_id, "status": "SUSPENDED"}]
    assert wallet.client.get("/api/me", headers=bound_headers).status_code == 401
    refused = wallet.post(f"/api/cards/{card_id}/reactivate", {"reason": "CUSTOMER_REQUEST"})
    assert refused.get_json()["type"] == PROBLEMS + "device-lost"
    assert wallet.provision("5555555555554444").get_json()["type"] == PROBLEMS + "device-lost"


def test_network_outage_is_503_and_releases_the_key(app, wallet: Wallet) -> None:  # type: ignore[no-untyped-def]
    """A failing token service answers 503 network-unavailable, and a retry with the same key works."""
    simulator = app.extensions["hcekit"].networks.simulators["visa"]
    simulator.error_rate = 1.0
    failed = wallet.provision(key="retry-me")
    assert failed.status_code == 503 and failed.get_json()["type"] == PROBLEMS + "network-unavailable"
    simulator.error_rate = 0.0
    assert wallet.provision(key="retry-me").status_code == 201


def test_device_lost_is_audited_with_the_cards_it_suspended(app: Flask, wallet: Wallet) -> None:
    """Marking a device lost leaves one device.lost audit row naming the device and its cards."""
    card_id = wallet.provision().get_json()["card"]["id"]
    assert wallet.post(f"/api/devices/{wallet.device_id}/lost").status_code == 200
    with app.extensions["hcekit"].sessions_factory() as session:
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "device.lost")))
    assert len(rows) == 1
    row = rows[0]
    assert (row.actor, row.target, row.outcome) == (
        f"user:{wallet.user_id}", f"device:{wallet.device_id}", "success"
    )
    assert json.loads(row.detail or "{}")["cards"] == [card_id]
