"""The device's client of the token service, against the real service on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hce.errors import HCEError
from hce.tspclient import TSPClient, TSPProblem, login_with_device, request_card, store_card, sync_cards
from hce.wallet import Wallet, WalletError
from tsp_backend.testing import LoopbackTSP

PASSWORD = "password-123"


@pytest.fixture(scope="module")
def tsp() -> Iterator[LoopbackTSP]:
    """One token service for the module."""
    with LoopbackTSP() as server:
        yield server


def test_problem_document_becomes_tspproblem(tsp: LoopbackTSP) -> None:
    """A refusal is a TSPProblem with the HTTP status, the problem type and its title and detail."""
    with TSPClient(tsp.url) as client, pytest.raises(TSPProblem) as caught:
        client.post("/api/auth/login", {"email": "nobody@example.com", "password": "wrong-password"})
    assert caught.value.status == 401
    assert caught.value.slug == caught.value.type.rsplit("/", 1)[-1] != "about:blank"
    assert str(caught.value).startswith("Invalid credentials")
    assert isinstance(caught.value, HCEError)


def test_unreachable_service_is_status_zero() -> None:
    """No answer at all is a TSPProblem with status 0 that names the host."""
    with TSPClient("http://127.0.0.1:9") as client, pytest.raises(TSPProblem) as caught:
        client.get("/healthz")
    assert caught.value.status == 0
    assert "http://127.0.0.1:9" in str(caught.value)


def test_request_card_needs_a_device(tmp_path: Path, tsp: LoopbackTSP) -> None:
    """A wallet without a registered device is refused before anything is sent."""
    wallet = Wallet.open(tmp_path / "w")
    with TSPClient(tsp.url) as client, pytest.raises(WalletError, match="no registered device"):
        request_card(client, wallet, "4111111111111111", "12/30", "123")


def test_login_provision_and_sync(tmp_path: Path, tsp: LoopbackTSP) -> None:
    """Log in registers the device once; a green card opens into the wallet; a second wallet of
    the same account sees it only elsewhere until moved."""
    phone = Wallet.open(tmp_path / "phone")
    with TSPClient(tsp.url) as client:
        client.post("/api/auth/register", {"email": "client@example.com", "password": PASSWORD})
        first = login_with_device(client, phone, "client@example.com", PASSWORD, device_name="phone")
        again = login_with_device(client, phone, "client@example.com", PASSWORD, device_name="phone")
        assert first["newDevice"] and not again["newDevice"]
        assert again["deviceId"] == first["deviceId"] == phone.device_id
        answer = request_card(client, phone, "4111111111111111", "12/30", "123")
        card = store_card(phone, answer["card"], answer["profile"])
        assert card.status == "ACTIVE" and card.default and phone.card().id == card.id
    tablet = Wallet.open(tmp_path / "tablet")
    with TSPClient(tsp.url) as client:
        login_with_device(client, tablet, "client@example.com", PASSWORD, device_name="tablet")
        left = sync_cards(client, tablet)
        assert left["added"] == [] and "--move" in left["skipped"][0]["reason"]
        moved = sync_cards(client, tablet, move=True)
        assert [c["id"] for c in moved["added"]] == [card.id]
    assert tablet.card().id == card.id


def test_sync_lists_a_card_whose_scripts_the_service_refuses(
    tmp_path: Path, tsp: LoopbackTSP, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A card whose issuer scripts cannot be taken (the service answers a problem) is listed under
    ``failed`` with the service's reason, and the sync still reports the rest."""
    from tsp_backend.errors import Conflict
    from tsp_backend.services.issuer_actions import IssuerActions

    phone = Wallet.open(tmp_path / "phone")
    with TSPClient(tsp.url) as client:
        client.post("/api/auth/register", {"email": "refused-scripts@example.com", "password": PASSWORD})
        login_with_device(client, phone, "refused-scripts@example.com", PASSWORD, device_name="phone")
        answer = request_card(client, phone, "4111111111111111", "12/30", "123")
        card = store_card(phone, answer["card"], answer["profile"])
        assert sync_cards(client, phone)["failed"] == []

        def refuse(*_args: object) -> None:
            raise Conflict("the scripts are being rebound")

        monkeypatch.setattr(IssuerActions, "deliver", staticmethod(refuse))
        report = sync_cards(client, phone)
    assert report["scripts"] == []
    assert [(row["id"], row["last4"]) for row in report["failed"]] == [(card.id, card.last4)]
    assert "issuer scripts" in report["failed"][0]["reason"]
    assert "being rebound" in report["failed"][0]["reason"]
