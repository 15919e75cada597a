"""Device pickup (POST /api/cards/{id}/profile): a device fetches a card added elsewhere."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.tsp_backend.tsp_helpers import PASSWORD, Wallet, make_wallet, new_device_key
from tests.tsp_backend.tsp_pay_helpers import FlaskHost, applet, provision_profile, tap, terminal_key
from tsp_backend.models import AuditEvent, KeyBatch, User

PROBLEMS = "https://hcekit.dev/problems/"
GREEN_VISA = "4111111111111111"  # tsp_backend.services.risk: green
GREEN_MASTERCARD = "5555555555554444"  # tsp_backend.services.risk: green


def add_without_profile(app: Flask, wallet: Wallet, pan: str = GREEN_VISA) -> int:
    """Provision as the web form does (``deliver=False``): an ACTIVE token and no key issued."""
    svc = app.extensions["hcekit"]
    with svc.sessions_factory() as session:
        user = session.get(User, wallet.user_id)
        assert user is not None
        result = svc.provisioner.provision(
            session, user, wallet.device_id, pan, "12/30", "123", deliver=False
        )
        assert result.sealed_profile is None and result.card.status == "ACTIVE"
        session.commit()
        return int(result.card.id)


def pickup(wallet: Wallet, card_id: int, body: dict[str, Any] | None = None, key: str | None = None) -> Any:
    """POST /api/cards/{id}/profile for the wallet's device unless ``body`` says otherwise."""
    payload = {"deviceId": wallet.device_id} if body is None else body
    return wallet.post(f"/api/cards/{card_id}/profile", payload, key=key or str(uuid.uuid4()))


def second_device(wallet: Wallet, name: str = "tablet") -> tuple[int, Any]:
    """Register another device of the same user; its id and private key."""
    key, public = new_device_key()
    response = wallet.post("/api/devices", {"name": name, "publicKey": public})
    assert response.status_code == 201
    return int(response.get_json()["id"]), key


def batches(app: Flask, card_id: int) -> list[tuple[int, int, int]]:
    """(first_index, count, not_after) of every key batch of a card."""
    with app.extensions["hcekit"].sessions_factory() as session:
        rows = session.execute(
            select(KeyBatch.first_index, KeyBatch.count, KeyBatch.not_after)
            .where(KeyBatch.card_id == card_id)
            .order_by(KeyBatch.id)
        )
        return [(int(r[0]), int(r[1]), int(r[2])) for r in rows]


def test_web_added_card_is_picked_up_by_its_device(app: Flask, wallet: Wallet) -> None:
    """A card activated without a profile reaches its device: first keys 1–5, sealed to that device."""
    card_id = add_without_profile(app, wallet)
    assert batches(app, card_id) == []
    response = pickup(wallet, card_id)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["card"]["id"] == card_id and body["movedFrom"] is None
    profile = wallet.open(body["profile"])
    assert [k["index"] for k in profile["luks"]] == [1, 2, 3, 4, 5]
    assert profile["token_ref"] == body["card"]["tokenRef"] and profile["atc"] == 0
    assert GREEN_VISA not in response.get_data(as_text=True)


def test_picked_up_profile_pays(wallet: Wallet, app: Flask, client: FlaskClient) -> None:
    """The picked-up profile makes cryptograms the service approves."""
    card_id = add_without_profile(app, wallet)
    profile = wallet.open(pickup(wallet, card_id).get_json()["profile"])
    answer = tap(applet(profile), 1250, FlaskHost(client, terminal_key(wallet))).outcome.host
    assert answer is not None and answer.approved, answer


def test_pickup_again_continues_indexes_and_atc(wallet: Wallet, client: FlaskClient) -> None:
    """A second pickup on the same device gets the next key indexes and the highest ATC seen."""
    card_id, profile = provision_profile(wallet)
    host = FlaskHost(client, terminal_key(wallet))
    assert tap(applet(profile), 1250, host).outcome.host.approved  # type: ignore[union-attr]
    again = wallet.open(pickup(wallet, card_id).get_json()["profile"])
    assert [k["index"] for k in again["luks"]] == [6, 7, 8, 9, 10]
    assert again["atc"] == 1
    answer = tap(applet(again), 700, host).outcome.host
    assert answer is not None and answer.approved, answer


def test_pickup_is_idempotent(app: Flask, wallet: Wallet) -> None:
    """The same Idempotency-Key replays the first answer and issues no second batch."""
    card_id = add_without_profile(app, wallet)
    first = pickup(wallet, card_id, key="pickup-once")
    second = pickup(wallet, card_id, key="pickup-once")
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert second.get_json() == first.get_json()
    assert len(batches(app, card_id)) == 1


def test_pickup_needs_an_idempotency_key(app: Flask, wallet: Wallet) -> None:
    """Without Idempotency-Key the route answers 400 idempotency-key-missing."""
    card_id = add_without_profile(app, wallet)
    response = wallet.post(f"/api/cards/{card_id}/profile", {"deviceId": wallet.device_id})
    assert response.status_code == 400
    assert response.get_json()["type"] == PROBLEMS + "idempotency-key-missing"


def test_second_user_gets_404(app: Flask, client: FlaskClient, wallet: Wallet) -> None:
    """Another user can neither pick up the card nor name the owner's device."""
    card_id = add_without_profile(app, wallet)
    mallory = make_wallet(client)
    for body in ({"deviceId": mallory.device_id}, {"deviceId": wallet.device_id}):
        response = pickup(mallory, card_id, body)
        assert response.status_code == 404, body
        assert response.content_type == "application/problem+json"
    own = add_without_profile(app, mallory, GREEN_MASTERCARD)
    assert pickup(mallory, own, {"deviceId": wallet.device_id}).status_code == 404
    assert batches(app, card_id) == []


def test_lost_device_is_refused(app: Flask, wallet: Wallet) -> None:
    """A device marked lost cannot pick up a card (409 device-lost)."""
    card_id = add_without_profile(app, wallet)
    tablet, _ = second_device(wallet)
    other = add_without_profile(app, wallet, GREEN_MASTERCARD)
    assert wallet.post(f"/api/devices/{tablet}/lost").status_code == 200
    refused = pickup(wallet, card_id, {"deviceId": tablet, "move": True})
    assert refused.status_code == 409 and refused.get_json()["type"] == PROBLEMS + "device-lost"
    assert pickup(wallet, other).status_code == 200


def test_suspended_card_is_not_delivered(app: Flask, wallet: Wallet) -> None:
    """Only ACTIVE tokens are delivered; a suspended one is 409 invalid-state-transition."""
    card_id = add_without_profile(app, wallet)
    wallet.post(f"/api/cards/{card_id}/suspend", {"reason": "CUSTOMER_REQUEST"})
    refused = pickup(wallet, card_id)
    assert refused.status_code == 409
    assert refused.get_json()["type"] == PROBLEMS + "invalid-state-transition"


def test_pickups_share_the_replenishment_limit(wallet: Wallet) -> None:
    """Provisioning, pickups and replenishments together make at most four batches a day (429)."""
    card_id, _ = provision_profile(wallet)
    assert pickup(wallet, card_id).status_code == 200
    assert wallet.post(f"/api/cards/{card_id}/keys").status_code == 200
    assert pickup(wallet, card_id).status_code == 200
    refused = pickup(wallet, card_id)
    assert refused.status_code == 429
    assert refused.get_json()["type"] == PROBLEMS + "key-replenishment-limit"
    assert wallet.post(f"/api/cards/{card_id}/keys").status_code == 429


def test_device_id_comes_from_the_bound_session(app: Flask, wallet: Wallet) -> None:
    """A device-bound session picks up for its device by default and may not name another."""
    card_id = add_without_profile(app, wallet)
    tablet, _ = second_device(wallet)
    login = wallet.client.post(
        "/api/auth/login", json={"email": wallet.email, "password": PASSWORD, "deviceId": wallet.device_id}
    ).get_json()
    wallet.client.delete_cookie("hcekit_session")
    bound = Wallet(
        wallet.client, wallet.email, login["token"], wallet.user_id, wallet.device_id, wallet.device_key, ""
    )
    assert pickup(bound, card_id, {}).status_code == 200
    other = pickup(bound, card_id, {"deviceId": tablet, "move": True})
    assert other.status_code == 403 and other.get_json()["type"] == PROBLEMS + "forbidden"


def test_unbound_session_must_name_the_device(app: Flask, wallet: Wallet) -> None:
    """A session bound to no device must send deviceId (422: the body is valid, the session decides)."""
    card_id = add_without_profile(app, wallet)
    refused = pickup(wallet, card_id, {})
    assert refused.status_code == 422 and refused.get_json()["field"] == "deviceId"
    assert refused.get_json()["type"] == PROBLEMS + "unprocessable"


def test_move_needs_consent_and_retires_the_old_keys(wallet: Wallet, client: FlaskClient, app: Flask) -> None:
    """A card on another device moves only with move=true; the old device's keys stop working."""
    card_id, old_profile = provision_profile(wallet)
    tablet, tablet_key = second_device(wallet)
    refused = pickup(wallet, card_id, {"deviceId": tablet})
    assert refused.status_code == 409
    assert refused.get_json()["type"] == PROBLEMS + "card-on-another-device"
    assert refused.get_json()["deviceId"] == wallet.device_id
    moved = pickup(wallet, card_id, {"deviceId": tablet, "move": True})
    assert moved.status_code == 200, moved.get_json()
    body = moved.get_json()
    assert body["movedFrom"] == wallet.device_id and body["card"]["deviceId"] == tablet
    assert body["card"]["default"] is False
    from cryptogram.sealing import open_sealed

    new_profile = open_sealed(tablet_key, body["profile"])
    host = FlaskHost(client, terminal_key(wallet))
    stale = tap(applet(old_profile), 1250, host).outcome.host
    assert stale is not None and not stale.approved and stale.response_code == "54"
    fresh = tap(applet(new_profile), 1250, host).outcome.host
    assert fresh is not None and fresh.approved, fresh


def test_card_of_a_lost_device_moves_to_a_new_one(wallet: Wallet) -> None:
    """A token suspended because its device was lost is reactivated on the device it moves to."""
    card_id, _ = provision_profile(wallet)
    tablet, _ = second_device(wallet)
    assert wallet.post(f"/api/devices/{wallet.device_id}/lost").status_code == 200
    without = pickup(wallet, card_id, {"deviceId": tablet})
    assert without.status_code == 409
    moved = pickup(wallet, card_id, {"deviceId": tablet, "move": True})
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["card"]["status"] == "ACTIVE"
    assert moved.get_json()["card"]["statusReason"] == "DEVICE_FOUND"


@pytest.mark.parametrize("outcome", ["success", "refused"])
def test_pickups_are_audited(app: Flask, wallet: Wallet, outcome: str) -> None:
    """Each pickup, granted or refused, leaves a card.pickup audit row without key material."""
    card_id = add_without_profile(app, wallet)
    if outcome == "refused":
        wallet.post(f"/api/cards/{card_id}/suspend", {"reason": "CUSTOMER_REQUEST"})
    pickup(wallet, card_id)
    with app.extensions["hcekit"].sessions_factory() as session:
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "card.pickup")))
        count = session.scalar(select(func.count()).select_from(AuditEvent))
    assert [r.outcome for r in rows] == [outcome] and count
    assert rows[0].target == f"card:{card_id}"
