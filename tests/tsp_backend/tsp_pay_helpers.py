"""Helpers of the authorization tests: a provisioned hce card, a terminal key, taps through the API."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from flask.testing import FlaskClient

from hce.applet import CardApplet
from hce.profile import CardProfile
from terminal.host import parse_answer
from terminal.outcome import HostAnswer
from terminal.tap import TapResult
from terminal.testing import CardTerminalPair
from tests.tsp_backend.tsp_helpers import Wallet


def terminal_key(wallet: Wallet, name: str = "T-1") -> str:
    """A new terminal API key (dev mode lets any user make one)."""
    response = wallet.post("/api/terminals", {"name": name})
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["apiKey"])


def provision_profile(wallet: Wallet, pan: str = "4111111111111111") -> tuple[int, dict[str, Any]]:
    """Provision a green card; its id and the opened card profile."""
    response = wallet.provision(pan)
    assert response.status_code == 201, response.get_json()
    doc = response.get_json()
    return int(doc["card"]["id"]), wallet.open(doc["profile"])


def applet(profile: dict[str, Any], **overrides: Any) -> CardApplet:
    """An hce card for a profile (with field overrides), on the wall clock for key expiry."""
    return CardApplet(CardProfile.from_dict({**profile, **overrides}), clock=time.time)


@dataclass
class FlaskHost:
    """An authorizer posting to ``/api/authorize`` through a Flask test client; keeps every request."""

    client: FlaskClient
    api_key: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    tamper: dict[str, Any] = field(default_factory=dict)

    def authorize(self, body: dict[str, Any]) -> HostAnswer:
        """Send ``body`` (with :attr:`tamper` applied) under a fresh Idempotency-Key."""
        sent = {**body, **self.tamper}
        self.requests.append(sent)
        response = self.post(sent, str(uuid.uuid4()))
        assert response.status_code == 200, response.get_json()
        return parse_answer(response.get_json())

    def post(self, body: dict[str, Any], key: str) -> Any:
        """POST one request with ``key``."""
        headers = {"Authorization": f"Bearer {self.api_key}", "Idempotency-Key": key}
        return self.client.post("/api/authorize", json=body, headers=headers)


def tap(card: CardApplet, amount: int, host: Any, currency: str = "EUR") -> TapResult:
    """One tap of ``amount`` on an in-memory terminal, sent to ``host``."""
    pair = CardTerminalPair(card.process, date=time.strftime("%y%m%d"))
    return pair.tap(amount, currency, host=host)


def in_app_emv(card: CardApplet, amount: int, currency: str = "EUR") -> str:
    """The field-55 block the wallet's card makes for an in-app payment (a tap with no host)."""
    result = tap(card, amount, None, currency)
    assert result.outcome.outcome.value == "online_request", result.outcome.reason
    return result.outcome.authorization_data.hex().upper()


def in_app_request(
    card_id: int, amount: int, emv: str, merchant_id: str = "M", **fields: Any
) -> dict[str, Any]:
    """The body of POST /api/payments/in-app: ``amount`` EUR on ``card_id`` with the field-55 ``emv``
    (``fields``, such as ``merchantName``, go before it)."""
    head = {"cardId": card_id, "amount": amount, "currency": "EUR", "merchantId": merchant_id}
    return {**head, **fields, "emv": emv}
