"""The wallet pages in a real headless Chromium (Debian's ``chromium``) driven by Playwright.

The service runs on a loopback port in a thread; the browser registers, logs in, registers a
device, adds a green and a yellow test card (the yellow one with the code from the simulated
outbox), suspends and reactivates a card and logs out. A screenshot of the card list is saved
to ``/tmp/hcekit-web.png``.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from sqlalchemy import select

from cryptogram.sealing import point_bytes
from tests.integration.browser import (
    GREEN_PAN,
    YELLOW_PAN,
    add_card,
    base_url,
    page,
    register,
    served_app,
    service,
    sign_up_with_passkey,
    submit_card,
    transactions,
    virtual_authenticator,
    watch_problems,
)
from tsp_backend.models import User
from tsp_backend.services.webpay import PaymentIntent

pytestmark = pytest.mark.integration

__all__ = ["base_url", "page", "served_app", "service"]

SCREENSHOT = Path("/tmp/hcekit-web.png")


def _public_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return base64.b64encode(point_bytes(key.public_key())).decode()


def _no_pan(html: str) -> None:
    for pan in (GREEN_PAN, YELLOW_PAN):
        spaced = " ".join(pan[i : i + 4] for i in range(0, len(pan), 4))
        assert pan not in html and spaced not in html


def test_wallet_journey_in_chromium(page: Any) -> None:
    """Register, log in, add a green and a yellow card, suspend and reactivate, log out."""
    problems = watch_problems(page)
    register(page, "chromium@example.com")
    assert "Your account is ready" in page.content()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["hcekit_session"]["httpOnly"] and cookies["hcekit_session"]["sameSite"] == "Lax"
    assert page.evaluate("document.cookie") == ""

    page.goto("/wallet/devices")
    page.fill("#device-name", "Pixel 8")
    page.fill("#public-key", _public_key())
    page.click("#register-device")
    page.wait_for_url(re.compile(r"/wallet/devices$"))
    assert "Pixel 8" in page.inner_text("#devices")

    page.goto("/wallet/cards/add")
    autocomplete = {"#pan": "cc-number", "#expiry": "cc-exp", "#cvv": "cc-csc"}
    for field, token in autocomplete.items():
        assert page.get_attribute(field, "autocomplete") == token
    submit_card(page, "4111 1111 1111 1111", "12/30", "123")
    green_url = page.url
    assert not green_url.endswith("/verify")
    assert "Visa card ending 1111 added" in page.content()
    assert page.inner_text("#status") == "Active"
    _no_pan(page.content())

    submit_card(page, YELLOW_PAN, "11/29", "456")
    verify_url = page.url
    assert verify_url.endswith("/verify")
    _no_pan(page.content())
    page.click("#outbox-link")
    page.wait_for_url(re.compile(r"/wallet/outbox$"))
    code = page.inner_text("#outbox tbody tr:first-child code.otp").strip()
    assert re.fullmatch(r"\d{6}", code)
    page.goto(verify_url)
    page.fill("#code", code)
    page.click("#verify")
    page.wait_for_url(re.compile(r"/wallet/cards/\d+$"))
    assert page.inner_text("#status") == "Active"
    assert "Verified" in page.content()

    page.goto(green_url)
    page.click("#suspend")
    page.wait_for_load_state()
    assert page.inner_text("#status") == "Suspended"
    page.click("#reactivate")
    page.wait_for_load_state()
    assert page.inner_text("#status") == "Active"
    page.click("#default")
    page.wait_for_load_state()
    assert "is now the default" in page.content()

    page.goto("/wallet/cards")
    tiles = page.locator("#cards .card-tile")
    assert tiles.count() == 2
    listed = page.inner_text("#cards")
    assert "•••• 1111" in listed and "•••• 1881" in listed and "Default" in listed
    assert listed.count("Default") == 1 and "On phone “Pixel 8”" in listed
    _no_pan(page.content())
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000

    page.goto(green_url)
    page.click("#card-transactions")
    page.wait_for_url(re.compile(r"/wallet/transactions\?card=\d+$"))
    assert "No transactions yet" in page.content()

    page.click("#logout")
    page.wait_for_url(re.compile(r"/wallet/login$"))
    assert "You are logged out" in page.content()
    page.goto("/wallet/cards")
    assert re.search(r"/wallet/login\?next=", page.url)
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems


# --- the browser as a device: passkey, payment sheet ---------------------------------------------


def open_sheet(page: Any) -> None:
    """From the demo shop to the payment sheet ("Pay with hcekit")."""
    page.goto("/shop/")
    page.click("#pay-with-hcekit")
    page.wait_for_url(re.compile(r"/wallet/pay\?"))


def test_sign_up_and_add_a_card_with_only_the_browser(page: Any) -> None:
    """A passkey makes the browser a device; a card needing a one-time code is added and verified."""
    problems = watch_problems(page)
    _, authenticator = virtual_authenticator(page)
    sign_up_with_passkey(page, "passkey@example.com")
    assert page.locator("#device_id option:checked").inner_text() == "Chromium"
    add_card(page, YELLOW_PAN, "11/29", "456")
    _no_pan(page.content())
    page.goto("/wallet/devices")
    assert "Chromium" in page.inner_text("#devices")
    page.goto("/wallet/cards")
    assert "•••• 1881" in page.inner_text("#cards") and "On this browser" in page.inner_text("#cards")
    cdp = page.context.new_cdp_session(page)
    creds = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(creds) == 1 and creds[0]["rpId"] == "localhost"
    assert not [p for p in problems if "Refused" in p or "Content Security Policy" in p], problems


def test_pay_from_the_shop_double_click_pays_once(page: Any) -> None:
    """/shop/ → sheet → Pay (double-clicked): one approved web transaction, back at the shop."""
    problems = watch_problems(page)
    virtual_authenticator(page)
    sign_up_with_passkey(page, "shopper@example.com")
    add_card(page, GREEN_PAN, "12/30", "123")
    open_sheet(page)
    assert page.inner_text("#sheet-amount") == "14.50 EUR"
    assert "Corner Coffee Roasters" in page.inner_text("#sheet-merchant")
    assert page.get_attribute("#pay", "data-state") == "idle"
    page.dblclick("#pay")
    page.wait_for_selector("#sheet-activity li[data-state=approved]")
    assert page.get_attribute("#pay", "data-state") == "success"
    page.wait_for_url(re.compile(r"/shop/\?paid=1$"))
    assert "Thank you" in page.inner_text("#shop-paid")
    items = transactions(page)
    assert len(items) == 1, items
    assert items[0]["status"] == "approved" and items[0]["channel"] == "web" and items[0]["amount"] == 1450
    assert not [p for p in problems if "Refused" in p or "Content Security Policy" in p], problems


def test_suspended_card_is_refused_by_the_sheet(page: Any) -> None:
    """A suspended card is not offered; the sheet says no card can pay and has no Pay button."""
    watch_problems(page)
    virtual_authenticator(page)
    sign_up_with_passkey(page, "suspended@example.com")
    card_url = add_card(page, GREEN_PAN, "12/30", "123")
    page.goto(card_url)
    page.click("#suspend")
    page.wait_for_load_state()
    assert page.inner_text("#status") == "Suspended"
    open_sheet(page)
    assert page.locator("#pay").count() == 0
    assert "No card on this browser can pay" in page.inner_text("#sheet-no-card")
    card_id = int(card_url.rsplit("/", 1)[1])
    refused = page.request.post(
        "/wallet/pay/options",
        data={"cardId": card_id, "amount": 1450, "currency": "EUR", "merchantId": "m"},
        headers={"X-CSRF-Token": page.get_attribute('meta[name="csrf-token"]', "content")},
    )
    assert refused.status == 409 and refused.headers["content-type"] == "application/problem+json"
    assert transactions(page) == []


def test_declined_payment_is_rolled_back_visibly(page: Any) -> None:
    """The optimistic row turns into "Declined · not charged" with a plain reason; the sheet stays."""
    watch_problems(page)
    virtual_authenticator(page)
    sign_up_with_passkey(page, "declined@example.com")
    add_card(page, "4000000000000614", "12/30", "123")  # issuer limit 1,000 minor units
    open_sheet(page)
    page.click("#pay")
    row = page.wait_for_selector("#sheet-activity li[data-state=rolled-back]")
    assert "Declined · not charged" in row.inner_text()
    message = page.inner_text("#sheet-error")
    assert "above this card's limit" in message and "61" not in message
    assert page.get_attribute("#pay", "data-state") == "idle"
    assert "/wallet/pay" in page.url
    items = transactions(page)
    assert [(t["status"], t["type"]) for t in items] == [("declined", "web")]


CONFIRM_TWICE = """
async ([cardId, key]) => {
  const api = await import("/wallet/static/api.js");
  const intent = {
    cardId, amount: 999, currency: "EUR", merchantId: "hcekit-demo-shop", merchantName: "Corner",
  };
  async function signed() {
    const options = await api.postJSON("/wallet/pay/options", intent);
    const credential = await navigator.credentials.get({publicKey: api.requestOptions(options.publicKey)});
    return {...intent, sheet: options.sheet, credential: api.credentialJSON(credential)};
  }
  const bodies = [await signed(), await signed()];
  const send = (body) => fetch("/wallet/pay/confirm", {
    method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": api.csrfToken(), "Idempotency-Key": key},
    body: JSON.stringify(body),
  }).then(async (r) => [r.status, r.headers.get("Idempotent-Replayed"), await r.json()]);
  const answers = await Promise.all(bodies.map(send));
  answers.push(await send(bodies[1]));
  return answers;
}
"""


def test_one_idempotency_key_pays_once_on_the_server(page: Any) -> None:
    """Two confirmed ceremonies sent at once under one Idempotency-Key: one transaction; the other
    is a replay, or 409 in flight if it came while the first ran; sent again, it is a replay."""
    watch_problems(page)
    virtual_authenticator(page)
    sign_up_with_passkey(page, "twice@example.com")
    card_url = add_card(page, GREEN_PAN, "12/30", "123")
    card_id = int(card_url.rsplit("/", 1)[1])
    *answers, again = page.evaluate(CONFIRM_TWICE, [card_id, "intent-7f3a9c1e-0001"])
    paid = [a for a in answers if a[0] == 200 and a[1] is None]
    assert len(paid) == 1
    other = next(a for a in answers if a is not paid[0])
    if other[0] == 409:
        assert other[2]["type"].endswith("/idempotency-request-in-flight")
    else:
        assert other[:2] == [200, "true"] and other[2]["transactionId"] == paid[0][2]["transactionId"]
    assert again[:2] == [200, "true"] and again[2]["transactionId"] == paid[0][2]["transactionId"]
    items = transactions(page)
    assert len(items) == 1 and items[0]["status"] == "approved" and items[0]["amount"] == 999


def test_sheet_keeps_its_key_while_the_payment_is_in_flight(page: Any, served_app: Flask) -> None:
    """Pay while the sheet's key is still held by a first request: the sheet says so at once and
    keeps the key; pressed again once the first is gone, it pays once."""
    virtual_authenticator(page)
    sign_up_with_passkey(page, "inflight@example.com")
    add_card(page, GREEN_PAN, "12/30", "123")
    open_sheet(page)
    sheet = page.eval_on_selector("#sheet", "e => ({...e.dataset})")
    card_id = int(page.input_value("#sheet-card"))
    amount, currency = int(sheet["amount"]), sheet["currency"]
    intent = PaymentIntent(card_id, amount, currency, sheet["merchantId"], sheet["merchantName"])
    svc = served_app.extensions["hcekit"]
    with svc.sessions_factory() as session:
        user_id = session.scalar(select(User.id).where(User.email == "inflight@example.com"))
    fingerprint = svc.idempotency.fingerprint(json.loads(intent.canonical()))
    claim = svc.idempotency.begin(f"user:{user_id}", "POST /wallet/pay/confirm", sheet["key"], fingerprint)
    page.click("#pay")
    page.wait_for_selector("#sheet-error:has-text('still being processed')")
    assert page.get_attribute("#pay", "data-state") == "idle"
    assert transactions(page) == []
    svc.idempotency.release(claim)
    page.click("#pay")
    page.wait_for_selector("#sheet-activity li[data-state=approved]")
    items = transactions(page)
    assert len(items) == 1 and items[0]["status"] == "approved"


def test_card_form_checks_in_the_page_and_focuses_the_first_invalid_field(page: Any) -> None:
    """A wrong check digit and a past expiry are caught before sending: aria-invalid, message, focus."""
    virtual_authenticator(page)
    sign_up_with_passkey(page, "form@example.com")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if r.method == "POST" else None)
    page.fill("#pan", "4111 1111 1111 1112")
    page.fill("#expiry", "01/20")
    page.fill("#cvv", "12")
    page.click("#add")
    assert page.url.endswith("/wallet/cards/add") and requests == []
    for field in ("#pan", "#expiry", "#cvv"):
        assert page.get_attribute(field, "aria-invalid") == "true"
    assert page.evaluate("() => document.activeElement.id") == "pan"
    assert "isn't valid" in page.inner_text("#pan-error") and "expired" in page.inner_text("#expiry-error")
    assert page.get_attribute("#pan", "aria-describedby") == "pan-error"
    page.fill("#pan", GREEN_PAN)
    assert page.get_attribute("#pan", "aria-invalid") is None and page.inner_text("#pan-error") == ""
    page.fill("#expiry", "12/30")
    page.fill("#cvv", "123")
    page.click("#add")
    page.wait_for_url(re.compile(r"/wallet/cards/\d+$"))
