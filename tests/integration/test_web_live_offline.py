"""The open wallet page in Chromium: a tap appears live; offline it shows what it saved; signing
out empties every cache."""

from __future__ import annotations

import base64
import re
import time
import uuid
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cryptogram.sealing import open_sealed, point_bytes
from hce.applet import CardApplet
from hce.profile import CardProfile
from terminal.host import AuthorizationClient
from terminal.testing import CardTerminalPair
from tests.integration.test_web_chromium import (
    GREEN_PAN,
    PASSWORD,
    add_card,
    base_url,
    page,
    sign_up_with_passkey,
    virtual_authenticator,
)

pytestmark = pytest.mark.integration

__all__ = ["base_url", "page"]


def _phone_wallet(base: str, email: str) -> tuple[str, dict[str, Any]]:
    """Through the API: an account with a phone, a card on it (its opened profile) and a terminal key."""
    with httpx.Client(base_url=base, timeout=10) as http:
        creds = {"email": email, "password": PASSWORD}
        assert http.post("/api/auth/register", json=creds).status_code == 201
        token = http.post("/api/auth/login", json=creds).json()["token"]
        http.cookies.clear()
        auth = {"Authorization": f"Bearer {token}"}
        key = ec.generate_private_key(ec.SECP256R1())
        public = base64.b64encode(point_bytes(key.public_key())).decode()
        device = http.post("/api/devices", json={"name": "Pixel 8", "publicKey": public}, headers=auth).json()
        card = http.post(
            "/api/cards",
            json={"pan": GREEN_PAN, "expiry": "12/30", "cvv": "123", "deviceId": device["id"]},
            headers={**auth, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert card.status_code == 201, card.text
        api_key = http.post("/api/terminals", json={"name": "T-1"}, headers=auth).json()["apiKey"]
    return str(api_key), open_sealed(key, card.json()["profile"])


def _log_in(page: Any, email: str) -> None:
    page.goto("/wallet/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(re.compile(r"/wallet/cards$"))


def test_a_tap_shows_live_in_an_open_wallet(page: Any, base_url: str) -> None:
    """A tap authorized through /api/authorize with a terminal key appears in the open list unreloaded."""
    api_key, profile = _phone_wallet(base_url, "live@example.com")
    _log_in(page, "live@example.com")
    with page.expect_response(lambda r: "/wallet/events" in r.url):
        page.goto("/wallet/transactions")
    assert page.locator("#transactions li").count() == 0
    page.evaluate("() => { window.loadedAt = performance.timeOrigin; }")
    card = CardApplet(CardProfile.from_dict(profile), clock=time.time)
    with AuthorizationClient(base_url, api_key) as host:
        result = CardTerminalPair(card.process, date=time.strftime("%y%m%d")).tap(1250, "EUR", host=host)
    tapped = time.time()
    assert result.outcome.outcome.value == "approved", result.outcome.reason
    row = page.wait_for_selector('#transactions li[data-status="approved"]')
    shown = page.evaluate("() => performance.timeOrigin + performance.now()") / 1000
    assert "12.50 EUR" in row.inner_text() and "•••• 1111" in row.inner_text()
    assert "Contactless" in row.inner_text() and "UTC" in row.inner_text()
    print(f"live: the tap appeared {1000 * (shown - tapped):.0f} ms after its answer")
    assert page.evaluate("() => location.pathname") == "/wallet/transactions"


def test_offline_shows_saved_cards_and_transactions_then_sign_out_clears(page: Any) -> None:
    """Offline: cached cards and transactions with a notice and disabled actions; sign-out empties caches."""
    virtual_authenticator(page)
    sign_up_with_passkey(page, "offline@example.com")
    add_card(page, GREEN_PAN, "12/30", "123")
    page.goto("/shop/")
    page.click("#pay-with-hcekit")
    page.click("#pay")
    page.wait_for_url(re.compile(r"/shop/\?paid=1$"))
    page.goto("/wallet/cards")
    page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
    page.reload()
    page.goto("/wallet/transactions")
    page.goto("/wallet/cards")
    page.wait_for_function("() => caches.keys().then(async (k) => k.length === 1 && "
                           "(await (await caches.open(k[0])).keys()).length >= 9)")

    page.context.set_offline(True)
    page.goto("/wallet/cards")
    page.wait_for_selector("#offline-notice", state="visible")
    assert "•••• 1111" in page.inner_text("#cards")
    assert page.get_attribute("a.button[data-needs-online]", "aria-disabled") == "true"
    assert "Corner Coffee Roasters" in page.inner_text("#transactions")
    page.goto("/wallet/transactions")
    page.wait_for_selector("#offline-notice", state="visible")
    assert "14.50 EUR" in page.inner_text("#transactions")

    page.context.set_offline(False)
    page.wait_for_function("() => !document.getElementById('offline-notice') || "
                           "document.getElementById('offline-notice').hidden")
    page.wait_for_load_state()
    page.click("#logout")
    page.wait_for_url(re.compile(r"/wallet/login$"))
    assert page.evaluate("() => caches.keys()") == []
