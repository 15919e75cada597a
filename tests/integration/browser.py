"""What the Chromium tests share: the service on loopback, a Chromium page, and the wallet's forms.

The service is :class:`tsp_backend.testing.LoopbackTSP` (SQLite, development mode, rate limits
on as by default), reached as ``localhost`` so that WebAuthn sees a secure context. Chromium is
Debian's ``/usr/bin/chromium`` driven by Playwright; a test skips, saying why, when either is
missing. Test modules import the fixtures :func:`service`, :func:`base_url` and :func:`page` (and
:func:`served_app` where a test reaches into the application) from here.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tsp_backend.testing import LoopbackTSP

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
GREEN_PAN, YELLOW_PAN = "4111111111111111", "4012888888881881"
PASSWORD = "correct horse battery"
VIEWPORT = {"width": 1100, "height": 760}


@contextlib.contextmanager
def loopback_service(directory: Path) -> Iterator[LoopbackTSP]:
    """The token service on a loopback port with its data in ``directory``, rate limits on."""
    with LoopbackTSP(directory, ratelimit_enabled=True) as tsp:
        yield tsp


@contextlib.contextmanager
def chromium(**context_options: Any) -> Iterator[Any]:
    """A Playwright browser context of Debian's Chromium (skips when it or Playwright is missing)."""
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium (Debian package chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (pip install playwright)"
    )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(**context_options)
            yield context
            context.close()
        finally:
            browser.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[LoopbackTSP]:
    """The service on a loopback port (:func:`loopback_service`)."""
    with loopback_service(tmp_path) as tsp:
        yield tsp


@pytest.fixture
def served_app(service: LoopbackTSP) -> Flask:
    """The Flask application behind :func:`base_url`, for a test that reaches into its services."""
    return service.app


@pytest.fixture
def base_url(service: LoopbackTSP) -> str:
    """The service as ``http://localhost:<port>``."""
    return service.url.replace("127.0.0.1", "localhost")


@pytest.fixture
def page(base_url: str) -> Iterator[Any]:
    """A Chromium page on the service."""
    with chromium(base_url=base_url, viewport=VIEWPORT) as context:
        yield context.new_page()


def submit_form(page: Any, path: str, fields: dict[str, str], button: str, lands_on: str) -> None:
    """Open the form at ``path``, fill ``fields`` (selector: value), press ``button`` and wait for
    the page whose URL matches ``lands_on``."""
    page.goto(path)
    for selector, value in fields.items():
        page.fill(selector, value)
    page.click(button)
    page.wait_for_url(re.compile(lands_on))


def register(page: Any, email: str) -> None:
    """Create an account in the register form; the page is then the set-up page."""
    fields = {"#email": email, "#password": PASSWORD, "#password2": PASSWORD}
    submit_form(page, "/wallet/register", fields, "#register", r"/wallet/setup$")


def log_in(page: Any, email: str) -> None:
    """Log in with the form; the page is then the card list."""
    submit_form(page, "/wallet/login", {"#email": email, "#password": PASSWORD}, "#login", r"/wallet/cards$")


def virtual_authenticator(page: Any) -> tuple[Any, str]:
    """A DevTools virtual platform authenticator with user verification (WebAuthn domain)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def create_passkey(page: Any) -> None:
    """On the set-up page: make this browser a device with a passkey; the page is then "add a card"."""
    page.fill("#device-name", "Chromium")
    page.click("#create-passkey")
    page.wait_for_url(re.compile(r"/wallet/cards/add$"))


def sign_up_with_passkey(page: Any, email: str) -> None:
    """Create an account and make this browser a device with a passkey, in the pages only."""
    register(page, email)
    create_passkey(page)


def submit_card(page: Any, pan: str, expiry: str, cvv: str) -> None:
    """Fill and send the add-card form; the page is then the card's page or its verify page."""
    fields = {"#pan": pan, "#expiry": expiry, "#cvv": cvv}
    submit_form(page, "/wallet/cards/add", fields, "#add", r"/wallet/cards/\d+(/verify)?$")


def add_card(page: Any, pan: str, expiry: str, cvv: str) -> str:
    """Add a card on this browser; a card that needs a code is verified from the outbox."""
    submit_card(page, pan, expiry, cvv)
    if page.url.endswith("/verify"):
        verify_url = page.url
        page.click("#outbox-link")
        code = page.inner_text("#outbox tbody tr:first-child code.otp").strip()
        submit_form(page, verify_url, {"#code": code}, "#verify", r"/wallet/cards/\d+$")
    assert page.inner_text("#status") == "Active"
    return str(page.url)


def watch_problems(page: Any) -> list[str]:
    """Console errors and uncaught page errors, collected; dialogs are accepted."""
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("dialog", lambda dialog: dialog.accept())
    return problems


def transactions(page: Any) -> list[dict[str, Any]]:
    """The signed-in user's transactions through the JSON API (the page's cookie)."""
    items: list[dict[str, Any]] = page.request.get("/api/transactions").json()["items"]
    return items
