"""The wallet's web pages through the Flask test client: cookies, CSRF, isolation, card values."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.tsp_backend.tsp_helpers import PASSWORD, dispose, make_config, new_device_key
from tsp_backend.app import create_app
from tsp_backend.models import AuditEvent
from tsp_backend.web.security import CONTENT_SECURITY_POLICY

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_IDEMPOTENCY = re.compile(r'name="idempotency_key" value="([^"]+)"')
_counter = iter(range(1, 10_000))


def csrf_of(response: Any) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF.search(response.get_data(as_text=True))
    assert match, "no CSRF field on the page"
    return match.group(1)


@dataclass
class Browser:
    """A signed-in user driving the pages through one test client (one cookie jar)."""

    client: FlaskClient
    email: str
    device_id: int

    def csrf(self) -> str:
        """The session's CSRF token, read from a page."""
        return csrf_of(self.client.get("/wallet/devices"))

    def post(self, path: str, data: dict[str, str] | None = None, *, csrf: str | None = None) -> Any:
        """POST a form with the session's CSRF token."""
        form = {"csrf_token": self.csrf() if csrf is None else csrf, **(data or {})}
        return self.client.post(path, data=form)

    def card_form(self) -> dict[str, str]:
        """The hidden fields of a freshly drawn card form."""
        page = self.client.get("/wallet/cards/add")
        key = _IDEMPOTENCY.search(page.get_data(as_text=True))
        assert key
        return {
            "csrf_token": csrf_of(page),
            "idempotency_key": key.group(1),
            "device_id": str(self.device_id),
        }

    def add_card(self, pan: str = "4111111111111111", expiry: str = "12/30", cvv: str = "123") -> Any:
        """Submit the card form once."""
        return self.client.post(
            "/wallet/cards/add", data={**self.card_form(), "pan": pan, "expiry": expiry, "cvv": cvv}
        )

    def api_cards(self) -> list[dict[str, Any]]:
        """The card list as the JSON API sees it (cookie-authenticated GET)."""
        cards: list[dict[str, Any]] = self.client.get("/api/cards").get_json()["items"]
        return cards


def log_in_page(
    client: FlaskClient,
    email: str,
    password: str = PASSWORD,
    *,
    form_page: str = "/wallet/login",
    **extra: str,
) -> Any:
    """Send the login form with the CSRF token of ``form_page`` (any visitor page carries one)."""
    page = client.get(form_page)
    return client.post(
        "/wallet/login", data={"csrf_token": csrf_of(page), "email": email, "password": password, **extra}
    )


def sign_up(client: FlaskClient, email: str | None = None) -> Browser:
    """Register (which signs in) through the pages, and register a phone device."""
    email = email or f"web{next(_counter)}@example.com"
    page = client.get("/wallet/register")
    created = client.post(
        "/wallet/register",
        data={"csrf_token": csrf_of(page), "email": email, "password": PASSWORD, "password2": PASSWORD},
    )
    assert created.status_code == 303 and created.location.endswith("/wallet/setup")
    _, public = new_device_key()
    page = client.get("/wallet/devices")
    added = client.post(
        "/wallet/devices", data={"csrf_token": csrf_of(page), "name": "Pixel", "public_key": public}
    )
    assert added.status_code == 303
    device_id = client.get("/api/me").get_json()["devices"][0]["id"]
    return Browser(client, email, device_id)


def set_cookies(response: Any) -> dict[str, str]:
    """Set-Cookie header values by cookie name."""
    return {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")}


def test_visitor_pages_render_with_security_headers(client: FlaskClient) -> None:
    """Login and registration pages render with CSP, framing refusal and no-store."""
    for path in ("/wallet/login", "/wallet/register"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
        assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Cache-Control"] == "no-store"


def test_root_and_wallet_index_lead_to_login(client: FlaskClient) -> None:
    """A visitor arriving at / or /wallet/ is sent to the login page."""
    assert client.get("/").location == "/wallet/"
    assert client.get("/wallet/").location.endswith("/wallet/login")


def test_pages_have_no_inline_script_or_style(client: FlaskClient) -> None:
    """Every page's scripts are external files, with no inline handlers or style attributes."""
    browser = sign_up(client)
    browser.add_card()
    card = browser.api_cards()[0]["id"]
    paths = [
        "/wallet/cards",
        "/wallet/cards/add",
        f"/wallet/cards/{card}",
        "/wallet/devices",
        "/wallet/outbox",
        "/wallet/transactions",
        "/wallet/nowhere",
    ]
    for path in paths:
        html = client.get(path).get_data(as_text=True)
        assert re.findall(r"<script(?![^>]*\bsrc=)", html) == [], path
        assert re.findall(r"\son[a-z]+=", html) == [], path
        assert " style=" not in html and "<style" not in html, path


def test_session_cookie_is_httponly_and_samesite_lax(client: FlaskClient) -> None:
    """The session cookie and the signed page cookie are httpOnly, SameSite=Lax, not Secure by default."""
    page = client.get("/wallet/login")
    assert "HttpOnly" in set_cookies(page)["hcekit_web"] and "SameSite=Lax" in set_cookies(page)["hcekit_web"]
    browser = sign_up(client)
    client.delete_cookie("hcekit_session")
    login = log_in_page(client, browser.email)
    cookie = set_cookies(login)["hcekit_session"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert "Path=/" in cookie


def test_secure_flag_when_configured(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """With secure cookies configured, both cookies carry Secure."""
    app = create_app(make_config(backend, tmp_path, request, secure_cookies=True))
    try:
        client = app.test_client()
        page = client.get("/wallet/register")
        assert "Secure" in set_cookies(page)["hcekit_web"]
        created = client.post(
            "/wallet/register",
            data={
                "csrf_token": csrf_of(page),
                "email": "s@example.com",
                "password": PASSWORD,
                "password2": PASSWORD,
            },
        )
        assert "Secure" in set_cookies(created)["hcekit_session"]
    finally:
        dispose(app)


def test_login_regenerates_the_session(client: FlaskClient) -> None:
    """Logging in again issues a new session token and revokes the one the browser held."""
    browser = sign_up(client)
    old = client.get_cookie("hcekit_session")
    assert old is not None
    login = log_in_page(client, browser.email, form_page="/wallet/register")
    new = client.get_cookie("hcekit_session")
    assert login.status_code == 303 and new is not None and new.value != old.value
    stale = client.get("/api/cards", headers={"Authorization": f"Bearer {old.value}"})
    assert stale.status_code == 401


def test_wrong_password_rerenders_without_password(client: FlaskClient) -> None:
    """A failed login answers 401 with the form and never echoes the password."""
    browser = sign_up(client)
    client.delete_cookie("hcekit_session")
    response = log_in_page(client, browser.email, "Wrong-pass-42")
    assert response.status_code == 401
    body = response.get_data(as_text=True)
    assert "Email or password is wrong" in body and "Wrong-pass-42" not in body


@pytest.mark.parametrize("path", ["/wallet/login", "/wallet/register"])
def test_visitor_forms_refuse_missing_or_forged_csrf(client: FlaskClient, path: str) -> None:
    """Login and registration without the page's CSRF token answer a 403 page and do nothing."""
    client.get(path)
    form = {"email": "x@example.com", "password": PASSWORD, "password2": PASSWORD}
    for token in (None, "forged"):
        data = form if token is None else {**form, "csrf_token": token}
        response = client.post(path, data=data)
        assert response.status_code == 403
        assert response.mimetype == "text/html"
        assert "This form has expired" in response.get_data(as_text=True)
    assert client.get_cookie("hcekit_session") is None


def test_signed_in_forms_refuse_missing_or_wrong_csrf(client: FlaskClient) -> None:
    """Every signed-in form answers 403 without the session's CSRF token and changes nothing."""
    browser = sign_up(client)
    browser.add_card()
    card = browser.api_cards()[0]["id"]
    posts = [
        "/wallet/cards/add",
        f"/wallet/cards/{card}/suspend",
        f"/wallet/cards/{card}/reactivate",
        f"/wallet/cards/{card}/remove",
        f"/wallet/cards/{card}/default",
        f"/wallet/cards/{card}/verify",
        f"/wallet/cards/{card}/resend",
        "/wallet/devices",
        f"/wallet/devices/{browser.device_id}/lost",
        "/wallet/logout",
    ]
    for path in posts:
        for token in ("", "not-the-token"):
            response = browser.post(
                path, {"pan": "4242424242424242", "expiry": "12/30", "cvv": "123"}, csrf=token
            )
            assert response.status_code == 403, path
    assert [c["status"] for c in browser.api_cards()] == ["ACTIVE"]
    assert client.get("/api/me").get_json()["devices"][0]["status"] == "ACTIVE"


def test_visitor_is_sent_to_login_and_back(client: FlaskClient) -> None:
    """A page that needs a session redirects to the login page, which returns there afterwards."""
    browser = sign_up(client)
    client.delete_cookie("hcekit_session")
    response = client.get("/wallet/devices")
    assert response.status_code == 303
    assert response.location.endswith("/wallet/login?next=/wallet/devices")
    page = client.get("/wallet/login?next=/wallet/devices")
    assert 'name="next" value="/wallet/devices"' in page.get_data(as_text=True)
    login = log_in_page(client, browser.email, form_page="/wallet/login", next="/wallet/devices")
    assert login.location == "/wallet/devices"


def test_login_refuses_an_open_redirect(client: FlaskClient) -> None:
    """A ``next`` that leaves the wallet is replaced by the card list."""
    browser = sign_up(client)
    login = log_in_page(client, browser.email, form_page="/wallet/register", next="https://evil.example/wallet/")
    assert login.location == "/wallet/cards"


def test_second_user_gets_404_on_every_page(app: Flask) -> None:
    """Another user's card and device pages and actions answer 404 and change nothing."""
    alice = sign_up(app.test_client())
    alice.add_card()
    alice.add_card("4012888888881881")
    card, pending = (c["id"] for c in alice.api_cards())
    mallory = sign_up(app.test_client())
    gets = [f"/wallet/cards/{card}", f"/wallet/cards/{pending}/verify"]
    for path in gets:
        response = mallory.client.get(path)
        assert response.status_code == 404, path
        assert response.mimetype == "text/html"
    posts = [
        f"/wallet/cards/{card}/suspend",
        f"/wallet/cards/{card}/reactivate",
        f"/wallet/cards/{card}/remove",
        f"/wallet/cards/{card}/default",
        f"/wallet/cards/{pending}/verify",
        f"/wallet/cards/{pending}/resend",
        f"/wallet/devices/{alice.device_id}/lost",
    ]
    for path in posts:
        assert mallory.post(path, {"code": "000000"}).status_code == 404, path
    form = {**mallory.card_form(), "device_id": str(alice.device_id)}
    refused = mallory.client.post(
        "/wallet/cards/add", data={**form, "pan": "5555555555554444", "expiry": "12/30", "cvv": "123"}
    )
    assert refused.status_code == 404
    assert mallory.api_cards() == []
    assert [c["status"] for c in alice.api_cards()] == ["ACTIVE", "INACTIVE"]


def test_double_submit_creates_one_card(client: FlaskClient) -> None:
    """The same card form sent twice (same hidden Idempotency-Key) makes one card and one redirect."""
    browser = sign_up(client)
    form = {**browser.card_form(), "pan": "4111 1111 1111 1111", "expiry": "12/30", "cvv": "123"}
    first, second = client.post("/wallet/cards/add", data=form), client.post("/wallet/cards/add", data=form)
    assert first.status_code == second.status_code == 303
    assert first.location == second.location
    assert len(browser.api_cards()) == 1


def _scrub(blob: str) -> str:
    """A page or header block without its random parts (tokens, keys, token digits, ids)."""
    blob = re.sub(r'value="[A-Za-z0-9_-]{20,}"', "", blob)
    blob = re.sub(r"(?m)^Set-Cookie: .*$", "", blob)
    blob = re.sub(r"•••• \d{4}", "", blob)
    return re.sub(r"(cards|card-id=\"|#)\d+", "", blob)


def test_card_numbers_never_echoed(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    """PAN and CVV appear in no redirect, flash, re-rendered form or log line; expiry only in its field."""
    caplog.set_level(logging.DEBUG)
    browser = sign_up(client)
    pan, cvv = "4000000000000002", "987"
    expiry = f"07/{(dt.date.today().year + 7) % 100:02d}"
    seen: list[str] = []
    for number in (pan, "4111111111111112", "4242424242424242"):
        response = browser.add_card(number, expiry, cvv)
        seen += [response.get_data(as_text=True), response.location or "", str(response.headers)]
        if response.status_code == 303:
            seen.append(client.get(response.location).get_data(as_text=True))
    seen += [client.get("/wallet/cards").get_data(as_text=True), caplog.text]
    assert any("This card number isn&#39;t valid" in blob for blob in seen)
    scrubbed = [_scrub(blob).replace(f'value="{expiry}"', "") for blob in seen]
    for value in (pan, "4111111111111112", "4242424242424242", "4242 4242 4242 4242", cvv, expiry):
        assert all(value not in blob for blob in scrubbed), value


def test_declined_form_comes_back_empty_with_a_new_key(client: FlaskClient) -> None:
    """A declined card re-renders the form without number or CVV, a fresh key and a plain reason."""
    browser = sign_up(client)
    form = {**browser.card_form(), "pan": "4000000000000002", "expiry": "12/30", "cvv": "123"}
    response = client.post("/wallet/cards/add", data=form)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Your bank didn&#39;t approve adding this card" in html
    new_key = _IDEMPOTENCY.search(html)
    assert new_key and new_key.group(1) != form["idempotency_key"]
    assert 'autocomplete="cc-number"' in html and 'autocomplete="cc-csc"' in html
    assert 'value="4000' not in html and 'value="123"' not in html
    assert 'value="12/30"' in html


def test_yellow_card_with_the_outbox_code(client: FlaskClient) -> None:
    """A yellow card goes to the code page; a wrong code counts down, the outbox code activates it."""
    browser = sign_up(client)
    response = browser.add_card("4012888888881881")
    assert response.status_code == 303 and response.location.endswith("/verify")
    card = browser.api_cards()[0]
    assert card["status"] == "INACTIVE"
    page = client.get(response.location).get_data(as_text=True)
    assert "/wallet/outbox" in page and "3 attempts left" in page
    outbox = client.get("/wallet/outbox").get_data(as_text=True)
    code = re.search(r'<code class="otp">(\d{6})</code>', outbox)
    assert code
    wrong = "000000" if code.group(1) != "000000" else "111111"
    missed = browser.post(f"/wallet/cards/{card['id']}/verify", {"code": wrong})
    assert missed.status_code == 422 and "2 attempts left" in missed.get_data(as_text=True)
    resend = browser.post(f"/wallet/cards/{card['id']}/resend", {"method": "otp_email"})
    assert resend.status_code == 303
    outbox = client.get("/wallet/outbox").get_data(as_text=True)
    code = re.search(r'<code class="otp">(\d{6})</code>', outbox)
    assert code
    done = browser.post(f"/wallet/cards/{card['id']}/verify", {"code": code.group(1)})
    assert done.status_code == 303 and done.location == f"/wallet/cards/{card['id']}"
    assert browser.api_cards()[0]["status"] == "ACTIVE"


def test_lifecycle_through_the_card_page(client: FlaskClient) -> None:
    """Suspend, reactivate, make default and remove work from the card page."""
    browser = sign_up(client)
    browser.add_card()
    card = browser.api_cards()[0]["id"]
    detail = client.get(f"/wallet/cards/{card}").get_data(as_text=True)
    assert "Suspend" in detail and "cards sync" not in detail
    assert browser.post(f"/wallet/cards/{card}/suspend", {"reason": "CUSTOMER_REQUEST"}).status_code == 303
    assert browser.api_cards()[0]["status"] == "SUSPENDED"
    assert "Reactivate" in client.get(f"/wallet/cards/{card}").get_data(as_text=True)
    assert browser.post(f"/wallet/cards/{card}/reactivate", {"reason": "CUSTOMER_REQUEST"}).status_code == 303
    assert browser.post(f"/wallet/cards/{card}/default").status_code == 303
    listed = browser.api_cards()[0]
    assert listed["status"] == "ACTIVE" and listed["default"] is True
    assert '<span class="default-marker">Default</span>' in client.get("/wallet/cards").get_data(as_text=True)
    again = browser.post(f"/wallet/cards/{card}/reactivate", {"reason": "CUSTOMER_REQUEST"})
    assert again.status_code == 303
    refused = client.get(again.location).get_data(as_text=True)
    assert "That change isn&#39;t possible for this card right now." in refused
    assert "ACTIVE" not in refused.split("<main", 1)[1]
    assert browser.post(f"/wallet/cards/{card}/remove").location == "/wallet/cards"
    assert browser.api_cards() == []
    assert client.get(f"/wallet/cards/{card}").status_code == 404


def test_web_card_waits_for_the_device(app: Flask, client: FlaskClient) -> None:
    """A card added on the web for a phone issues no keys; its page says the phone fetches it."""
    from sqlalchemy import func, select

    from tsp_backend.models import KeyBatch

    browser = sign_up(client)
    browser.add_card()
    card = browser.api_cards()[0]
    assert card["status"] == "ACTIVE"
    page = client.get(f"/wallet/cards/{card['id']}").get_data(as_text=True)
    assert "fetches this card with its own keys" in page and "hcekit cards sync" not in page
    assert client.get(f"/wallet/cards/{card['id']}/profile").status_code == 404
    with app.extensions["hcekit"].sessions_factory() as session:
        assert session.scalar(select(func.count()).select_from(KeyBatch)) == 0


def test_device_lost_suspends_its_cards(app: Flask, client: FlaskClient) -> None:
    """Marking the device lost from the devices page suspends its cards, audited as from the web."""
    browser = sign_up(client)
    browser.add_card()
    response = browser.post(f"/wallet/devices/{browser.device_id}/lost")
    assert response.status_code == 303
    assert "marked lost" in client.get("/wallet/devices").get_data(as_text=True)
    assert browser.api_cards()[0]["status"] == "SUSPENDED"
    with app.extensions["hcekit"].sessions_factory() as session:
        row = session.scalars(select(AuditEvent).where(AuditEvent.action == "device.lost")).one()
    assert row.target == f"device:{browser.device_id}"
    assert json.loads(row.detail or "{}")["via"] == "web"
    add = client.get("/wallet/cards/add").get_data(as_text=True)
    assert "Use this browser to pay" in add
    card_page = client.get(f"/wallet/cards/{browser.api_cards()[0]['id']}").get_data(as_text=True)
    assert "reported lost" in card_page and 'id="reactivate"' not in card_page


def test_bad_device_key_is_refused_on_the_page(client: FlaskClient) -> None:
    """A malformed public key re-renders the devices page with the reason."""
    browser = sign_up(client)
    response = browser.post("/wallet/devices", {"name": "Broken", "public_key": "not a key"})
    assert response.status_code == 422
    assert 'role="alert"' in response.get_data(as_text=True)


def test_logout_revokes_the_session(client: FlaskClient) -> None:
    """Logging out revokes the session and clears the cookie."""
    browser = sign_up(client)
    token = client.get_cookie("hcekit_session")
    assert token is not None
    response = browser.post("/wallet/logout")
    assert response.status_code == 303 and response.location.endswith("/wallet/login")
    assert client.get_cookie("hcekit_session") is None
    assert client.get("/api/cards", headers={"Authorization": f"Bearer {token.value}"}).status_code == 401


def test_errors_are_pages_under_wallet_and_problems_elsewhere(client: FlaskClient) -> None:
    """Unknown wallet pages answer HTML; the API and other paths keep problem+json."""
    page = client.get("/wallet/nowhere")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert client.get("/api/nowhere").mimetype == "application/problem+json"
    assert client.post("/wallet/cards").status_code == 405
    sign_up(client)
    missing = client.get("/wallet/cards/987654")
    assert missing.status_code == 404 and "Not found" in missing.get_data(as_text=True)


def test_outbox_page_only_in_dev_mode(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Without development mode the outbox page does not exist."""
    app = create_app(make_config(backend, tmp_path, request, dev_mode=False))
    try:
        client = app.test_client()
        sign_up(client)
        assert client.get("/wallet/outbox").status_code == 404
        assert "/wallet/outbox" not in client.get("/wallet/cards").get_data(as_text=True)
    finally:
        dispose(app)


def test_login_page_is_rate_limited(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The login form shares the login rate limit and answers a friendly 429 page."""
    app = create_app(make_config(backend, tmp_path, request, login_rate_limit="2 per minute"))
    try:
        client = app.test_client()
        page = client.get("/wallet/login")
        form = {"csrf_token": csrf_of(page), "email": "nobody@example.com", "password": str(uuid.uuid4())}
        statuses = [client.post("/wallet/login", data=form).status_code for _ in range(3)]
        assert statuses == [401, 401, 429]
        assert "Too many attempts" in client.post("/wallet/login", data=form).get_data(as_text=True)
    finally:
        dispose(app)


def _add_transactions(app: Flask, card_id: int, rows: list[tuple[int, str, bool]]) -> None:
    """Insert transactions (amount, currency, approved) for a card, oldest first."""
    from tsp_backend.models import Card, Transaction

    with app.extensions["hcekit"].sessions_factory() as session, session.begin():
        owner = session.get(Card, card_id).user_id  # type: ignore[union-attr]
        for n, (amount, currency, approved) in enumerate(rows):
            extra = (
                {"status": "approved" if approved else "declined"} if hasattr(Transaction, "status") else {}
            )
            session.add(
                Transaction(
                    public_id=f"txn-{card_id}-{n}-{uuid.uuid4().hex[:8]}",
                    card_id=card_id,
                    user_id=owner,
                    amount=amount,
                    currency=currency,
                    merchant_id="M-1",
                    merchant_name="Corner Café",
                    mcc="5814",
                    channel="contactless",
                    network="visa",
                    approved=approved,
                    response_code="00" if approved else "51",
                    auth_code="A1B2C3" if approved else None,
                    **extra,
                )
            )


def test_transactions_page_lists_own_rows_newest_first(app: Flask) -> None:
    """The history shows the user's transactions newest first, with amounts in minor units."""
    alice = sign_up(app.test_client())
    alice.add_card()
    card = alice.api_cards()[0]
    _add_transactions(app, card["id"], [(1250, "EUR", True), (99999, "EUR", False)])
    html = alice.client.get("/wallet/transactions").get_data(as_text=True)
    assert html.index("999.99 EUR") < html.index("12.50 EUR")
    assert "Corner Café" in html and f"•••• {card['last4']}" in html and "UTC" in html
    assert 'data-status="approved"' in html and 'data-status="declined"' in html
    filtered = alice.client.get(f"/wallet/transactions?card={card['id']}")
    assert filtered.status_code == 200 and "12.50 EUR" in filtered.get_data(as_text=True)
    mallory = sign_up(app.test_client())
    assert "Corner Café" not in mallory.client.get("/wallet/transactions").get_data(as_text=True)
    assert mallory.client.get(f"/wallet/transactions?card={card['id']}").status_code == 404


def test_transactions_page_pages_backwards(app: Flask) -> None:
    """More rows than a page offer an "Older" link that continues without repeating."""
    from tsp_backend.web.history_pages import TRANSACTIONS_PER_PAGE

    browser = sign_up(app.test_client())
    browser.add_card()
    card = browser.api_cards()[0]["id"]
    _add_transactions(app, card, [(100 + n, "USD", True) for n in range(TRANSACTIONS_PER_PAGE + 2)])
    first = browser.client.get("/wallet/transactions").get_data(as_text=True)
    older = re.search(r'href="(/wallet/transactions\?before=\d+)"', first)
    assert older
    second = browser.client.get(older.group(1)).get_data(as_text=True)
    assert second.count('<li class="txn" data-status') == 2
    assert "1.00 USD" in second and "1.00 USD" not in first


def test_parallel_double_submits_make_one_card(app: Flask) -> None:
    """Five simultaneous posts of one card form make one card; each answer leads to it or says the
    card is still being added (409, never a wait), and the form sent again afterwards leads to it."""
    from concurrent.futures import ThreadPoolExecutor

    browser = sign_up(app.test_client())
    form = {**browser.card_form(), "pan": "5555555555554444", "expiry": "12/30", "cvv": "123"}
    cookie = browser.client.get_cookie("hcekit_session")
    assert cookie is not None

    def submit(_: int) -> tuple[int, str | None]:
        client = app.test_client()
        client.set_cookie("hcekit_session", cookie.value)
        response = client.post("/wallet/cards/add", data=form)
        return response.status_code, response.location

    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(submit, range(5)))
    assert 303 in {status for status, _ in answers} and {status for status, _ in answers} <= {303, 409}
    locations = {location for status, location in answers if status == 303}
    assert len(locations) == 1
    assert submit(5) == (303, locations.pop())
    assert len(browser.api_cards()) == 1


def test_card_form_in_flight_is_answered_at_once(app: Flask) -> None:
    """A card form whose key is still held by a first submission is answered 409 with plain words
    at once, makes no card, and once the first is gone the same form adds the card."""
    browser = sign_up(app.test_client())
    form = {**browser.card_form(), "pan": "4111111111111111", "expiry": "12/30", "cvv": "123"}
    user_id = browser.client.get("/api/me").get_json()["id"]
    idempotency = app.extensions["hcekit"].idempotency
    fingerprint = idempotency.fingerprint(
        {"pan": "4111111111111111", "expiry": "12/30", "cvv": "123", "deviceId": browser.device_id}
    )
    scope, key = f"user:{user_id}", form["idempotency_key"]
    claim = idempotency.begin(scope, "POST /wallet/cards/add", key, fingerprint)
    refused = browser.client.post("/wallet/cards/add", data=form)
    assert refused.status_code == 409
    assert "This card is still being added" in refused.get_data(as_text=True)
    assert browser.api_cards() == []
    idempotency.release(claim)
    added = browser.client.post("/wallet/cards/add", data=form)
    assert added.status_code == 303 and len(browser.api_cards()) == 1


def test_unexpected_error_is_a_friendly_page(
    app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected failure answers a 500 page and logs only the error type and path."""
    browser = sign_up(app.test_client())

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(app.extensions["hcekit"].cards, "list_cards", broken)
    response = browser.client.get("/wallet/cards")
    assert response.status_code == 500 and response.mimetype == "text/html"
    assert "Something went wrong" in response.get_data(as_text=True)
    assert "secret detail" not in response.get_data(as_text=True) + caplog.text
    assert "RuntimeError on GET /wallet/cards" in caplog.text
