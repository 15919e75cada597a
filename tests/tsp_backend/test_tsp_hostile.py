"""Hostile input never gets a 500: every refusal is a precise 4xx problem, and nothing happens first.

Each case here answered 500 (or was accepted) before the request-body boundary bounded its JSON,
every string field refused NUL and lone surrogates, integers became strict JSON integers, digit
strings ASCII digits, and every id, cursor and number in a query string was range-checked.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.tsp_backend.tsp_helpers import PASSWORD, Wallet
from tests.tsp_backend.tsp_pay_helpers import applet, in_app_emv, provision_profile, terminal_key
from tsp_backend.errors import PROBLEM_MEDIA_TYPE
from tsp_backend.models import MAX_ROW_ID, ApiKey, Device, IdempotencyKey, Transaction, User

PROBLEMS = "https://hcekit.dev/problems/"


def problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    """Assert ``response`` is the RFC 9457 problem ``slug`` with ``status``; its document."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.mimetype == PROBLEM_MEDIA_TYPE
    doc: dict[str, Any] = response.get_json()
    assert doc["type"] == PROBLEMS + slug, doc
    assert doc["status"] == status
    return doc


def rows(app: Flask, model: Any) -> int:
    """How many rows ``model``'s table holds."""
    with app.extensions["hcekit"].sessions_factory() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def nested(depth: int) -> str:
    """A JSON text of ``depth`` nested arrays inside an object member."""
    return '{"email": ' + "[" * depth + "]" * depth + ', "password": "x"}'


# --- the request-body boundary --------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("path", ["/api/auth/register", "/api/auth/login"])
def test_deeply_nested_json_is_refused_without_login(client: FlaskClient, path: str, depth: int) -> None:
    """JSON nested 1,000 (or 100,000) deep is a 400 malformed-body, before any view work."""
    response = client.post(path, data=nested(depth), content_type="application/json")
    status, slug = (413, "body-too-large") if depth == 100_000 else (400, "malformed-body")
    doc = problem(response, status, slug)
    assert "nest" in doc["detail"] or "large" in doc["detail"]


def test_deeply_nested_json_on_an_idempotent_route(app: Flask, wallet: Wallet) -> None:
    """The idempotency fingerprint reads the same bounded body: 400, and no key is claimed."""
    response = wallet.client.post(
        "/api/cards",
        data="[" * 1_000 + "]" * 1_000,
        content_type="application/json",
        headers={**wallet.headers, "Idempotency-Key": "deep-1"},
    )
    problem(response, 400, "malformed-body")
    assert rows(app, IdempotencyKey) == 0


@pytest.mark.parametrize(
    "data",
    ['{"email": "a@b.cd", "password": ', "\xff\xfe{}", "[1, 2]", '"text"', "null"],
)
def test_bodies_that_are_not_a_json_object_are_refused(client: FlaskClient, data: str) -> None:
    """Broken JSON, bad UTF-8 and non-object JSON are 400 malformed-body, not an empty body."""
    raw = data.encode("latin-1") if data.startswith("\xff") else data.encode()
    response = client.post("/api/auth/register", data=raw, content_type="application/json")
    problem(response, 400, "malformed-body")


def test_a_body_over_the_size_bound_is_413(client: FlaskClient) -> None:
    """More than the request size bound answers 413 as a problem document."""
    big = '{"email": "' + "a" * 70_000 + '@example.com", "password": "long enough"}'
    response = client.post("/api/auth/register", data=big, content_type="application/json")
    problem(response, 413, "body-too-large")


# --- NUL and lone surrogates in strings -----------------------------------------------------------

BAD_TEXT = ["\x00", "\ud800"]
"""What PostgreSQL's text (NUL) and UTF-8 itself (a lone surrogate) cannot hold."""


@pytest.mark.parametrize("bad", BAD_TEXT)
def test_register_and_login_refuse_bad_text(app: Flask, client: FlaskClient, bad: str) -> None:
    """An email or password with NUL or a lone surrogate is a 400, and no user is created."""
    before = rows(app, User)
    for body in (
        {"email": f"nul{bad}@example.com", "password": PASSWORD},
        {"email": "fine@example.com", "password": f"{PASSWORD}{bad}"},
    ):
        problem(client.post("/api/auth/register", json=body), 400, "request-validation")
        problem(client.post("/api/auth/login", json=body), 400, "request-validation")
    assert rows(app, User) == before


@pytest.mark.parametrize("bad", BAD_TEXT)
def test_devices_and_terminals_refuse_bad_text(app: Flask, wallet: Wallet, bad: str) -> None:
    """A device or terminal name with NUL or a lone surrogate: 400, no row."""
    devices, keys = rows(app, Device), rows(app, ApiKey)
    problem(wallet.post("/api/devices", {"name": f"ph{bad}one", "publicKey": "x"}), 400, "request-validation")
    problem(wallet.post("/api/terminals", {"name": f"T{bad}1"}), 400, "request-validation")
    assert (rows(app, Device), rows(app, ApiKey)) == (devices, keys)


@pytest.mark.parametrize("bad", BAD_TEXT)
def test_payments_refuse_bad_text_before_any_side_effect(app: Flask, wallet: Wallet, bad: str) -> None:
    """A merchant name or id with NUL: 400 before the issuer is asked, no transaction, no key."""
    card_id, profile = provision_profile(wallet)
    api_key = terminal_key(wallet)
    card = applet(profile)
    emv = in_app_emv(card, 1500)
    tap = {"emv": emv, "amount": 1500, "currency": "EUR", "merchant": {"id": "M-1", "name": f"Shop{bad}"}}
    response = wallet.client.post(
        "/api/authorize",
        json=tap,
        headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": str(uuid.uuid4())},
    )
    problem(response, 400, "request-validation")
    pay = {"cardId": card_id, "amount": 1500, "currency": "EUR", "merchantId": f"M{bad}", "emv": emv}
    problem(wallet.post("/api/payments/in-app", pay, key=str(uuid.uuid4())), 400, "request-validation")
    assert rows(app, Transaction) == 0
    # the same cryptogram is still good: nothing was consumed by the refused requests
    tap["merchant"] = {"id": "M-1", "name": "Shop"}
    good = wallet.client.post(
        "/api/authorize",
        json=tap,
        headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": str(uuid.uuid4())},
    )
    assert good.status_code == 200 and good.get_json()["approved"] is True, good.get_json()


def test_transaction_path_with_nul_is_404(wallet: Wallet) -> None:
    """A transaction id with NUL in the path names no transaction (404, not a database error)."""
    problem(wallet.get("/api/transactions/tx%00"), 404, "not-found")


# --- ids, cursors and numbers in query strings ----------------------------------------------------


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "query",
    [
        f"cardId={MAX_ROW_ID + 1}",
        "cardId=99999999999999999999",
        "cardId=-1",
        "cardId=1_0",
        "cardId=%D9%A1",  # ARABIC-INDIC DIGIT ONE
        "cardId=",
        "limit=0",
        "limit=101",
        "limit=99999999999999999999",
        "cursor=%%%",
        "cursor=" + "A" * 201,
    ],
)
def test_transaction_queries_out_of_range_are_400(wallet: Wallet, query: str) -> None:
    """cardId, limit and cursor outside what the document allows: 400, never a clamp or a 500."""
    doc = problem(wallet.get(f"/api/transactions?{query}"), 400, "request-validation")
    assert doc["field"] == query.split("=")[0]


@pytest.mark.parametrize(
    "raw",
    [
        "2026-01-01T00:00:00+00:00|" + str(2**31),
        "2026-01-01T00:00:00+00:00|99999999999999999999999",
        "2026-01-01T00:00:00+00:00|-5",
        "2026-01-01T00:00:00+00:00| 7",
        "2026-01-01T00:00:00|7",
        "9999-12-31T23:59:59-14:00|7",
        "not a time|7",
    ],
)
def test_cursors_this_service_never_issued_are_422(wallet: Wallet, raw: str) -> None:
    """A well-formed cursor naming no position (id out of range, no zone, odd time): 422, no 500."""
    doc = problem(wallet.get(f"/api/transactions?cursor={_cursor(raw)}"), 422, "unprocessable")
    assert doc["field"] == "cursor"


def test_transaction_queries_in_range_still_work(wallet: Wallet) -> None:
    """The largest allowed values are accepted."""
    response = wallet.get(f"/api/transactions?cardId={MAX_ROW_ID}&limit=100")
    assert response.status_code == 200
    assert response.get_json() == {"items": [], "nextCursor": None}


@pytest.mark.parametrize(
    "value", ["nan", "NaN", "inf", "-inf", "1e308", "-1", "1e10", "0x10", "1_0", "", "%D9%A1"]
)
def test_reconcile_refuses_odd_numbers(wallet: Wallet, value: str) -> None:
    """olderThan must be a finite number of seconds within the documented range."""
    doc = problem(wallet.post(f"/api/admin/reconcile?olderThan={value}"), 400, "request-validation")
    assert doc["field"] == "olderThan"


@pytest.mark.parametrize("value", ["0", "0.5", "3600", "315360000"])
def test_reconcile_accepts_documented_numbers(wallet: Wallet, value: str) -> None:
    """Values the document allows are accepted."""
    assert wallet.post(f"/api/admin/reconcile?olderThan={value}").status_code == 200


# --- strict types ---------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["100", True, 1000.0, 1e3, None, [100]])
def test_amounts_are_json_integers(wallet: Wallet, amount: Any) -> None:
    """amount must be a JSON integer: not a string, a boolean or a float."""
    api_key = terminal_key(wallet)
    tap = {"emv": "9F2608" + "00" * 8, "amount": amount, "currency": "EUR"}
    response = wallet.client.post(
        "/api/authorize",
        json=tap,
        headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": str(uuid.uuid4())},
    )
    problem(response, 400, "request-validation")
    pay = {"cardId": 1, "amount": amount, "currency": "EUR", "merchantId": "M", "emv": "00"}
    problem(wallet.post("/api/payments/in-app", pay, key=str(uuid.uuid4())), 400, "request-validation")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cvv", "١٢٣"),  # ARABIC-INDIC digits
        ("expiry", "１２/３０"),  # FULLWIDTH digits
        ("pan", "٤١١١١١١١١١١١١١١١"),
        ("deviceId", "1"),
        ("deviceId", True),
        ("deviceId", 1.0),
        ("deviceId", MAX_ROW_ID + 1),
    ],
)
def test_card_fields_are_ascii_digits_and_integers(wallet: Wallet, field: str, value: Any) -> None:
    """Digit strings are ASCII digits only; ids are JSON integers in range; nothing is provisioned."""
    body = {"pan": "4111111111111111", "expiry": "12/30", "cvv": "123", "deviceId": wallet.device_id}
    body[field] = value
    response = wallet.post("/api/cards", body, key=str(uuid.uuid4()))
    doc = problem(response, 400, "request-validation")
    assert doc["errors"][0]["field"] == field
    assert wallet.get("/api/cards").get_json()["items"] == []


@pytest.mark.parametrize(
    "controls",
    [
        {"blockedMccs": ["٥٨١٤"]},
        {"blockedMccs": ["581"]},
        {"channels": ["teleport"]},
        {"merchants": ["a,b"]},
        {"merchants": ["M\x00"]},
    ],
)
def test_controls_follow_the_document(wallet: Wallet, controls: dict[str, Any]) -> None:
    """Domain controls the document refuses are refused by the model, with the member named."""
    card_id, _ = provision_profile(wallet)
    response = wallet.client.put(f"/api/cards/{card_id}/controls", json=controls, headers=wallet.headers)
    doc = problem(response, 400, "request-validation")
    assert doc["errors"][0]["field"].split(".")[0] == next(iter(controls))


@pytest.mark.parametrize("mcc", ["٥٨١٤", "58140"])
def test_merchant_category_is_four_ascii_digits(wallet: Wallet, mcc: str) -> None:
    """An MCC of non-ASCII digits is refused."""
    api_key = terminal_key(wallet)
    tap = {"emv": "9F2608" + "00" * 8, "amount": 1, "currency": "EUR", "merchant": {"mcc": mcc}}
    response = wallet.client.post(
        "/api/authorize",
        json=tap,
        headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": str(uuid.uuid4())},
    )
    problem(response, 400, "request-validation")


# --- the wallet's pages reach the same services -----------------------------------------------------


def test_wallet_pages_refuse_nul_without_a_server_error(app: Flask, client: FlaskClient) -> None:
    """The pages' login with a NUL email is a wrong credential, a NUL device name a refusal: no 500."""
    from tests.tsp_backend.test_tsp_web import csrf_of, sign_up
    from tests.tsp_backend.tsp_helpers import new_device_key

    page = client.get("/wallet/login")
    login = client.post(
        "/wallet/login",
        data={"csrf_token": csrf_of(page), "email": "a\x00@example.com", "password": PASSWORD},
    )
    assert login.status_code == 401
    sign_up(client)
    devices = rows(app, Device)
    _, public = new_device_key()
    page = client.get("/wallet/devices")
    added = client.post(
        "/wallet/devices", data={"csrf_token": csrf_of(page), "name": "x\x00", "public_key": public}
    )
    assert added.status_code == 422
    assert rows(app, Device) == devices


def _string_schemas(schema: Any, components: dict[str, Any], where: str) -> Any:
    """(location, schema) of every string member reachable from ``schema``."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        yield from _string_schemas(components[name], components, name)
        return
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key, []):
            yield from _string_schemas(branch, components, where)
    if schema.get("type") == "string":
        yield where, schema
    for name, member in schema.get("properties", {}).items():
        yield from _string_schemas(member, components, f"{where}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _string_schemas(schema["items"], components, f"{where}[]")


def test_every_request_string_member_refuses_nul(client: FlaskClient) -> None:
    """Every string member of every request body in /openapi.json has a pattern that refuses NUL,
    so a member added later without the shared Text type fails here."""
    import re

    document = client.get("/openapi.json").get_json()
    components = document["components"]["schemas"]
    checked = []
    for item in document["paths"].values():
        for operation in item.values():
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                for where, schema in _string_schemas(media["schema"], components, "body"):
                    assert "enum" in schema or "const" in schema or "pattern" in schema, where
                    if "pattern" in schema:
                        assert re.search(schema["pattern"], "\x00") is None, where
                        assert re.search(schema["pattern"], "a\x00b") is None, where
                    checked.append(where)
    assert len(set(checked)) >= 25
