"""GET /api/cards and the card list page are paginated: bounded pages, a cursor, no skips or repeats."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.tsp_backend.test_tsp_web import sign_up
from tests.tsp_backend.tsp_helpers import Wallet
from tsp_backend.web import card_pages

PROBLEMS = "https://hcekit.dev/problems/"
GREEN = ("4111111111111111", "4242424242424242", "5555555555554444", "2223000048400011", "6011111111111117")


def _provision_all(wallet: Wallet) -> list[int]:
    ids = []
    for pan in GREEN:
        response = wallet.provision(pan)
        assert response.status_code in (201, 202), response.get_json()
        ids.append(int(response.get_json()["card"]["id"]))
    return ids


def test_pages_cover_every_card_once(wallet: Wallet) -> None:
    """limit=2 over five cards: pages of 2, 2, 1, oldest first, the last without nextCursor."""
    ids = _provision_all(wallet)
    seen: list[int] = []
    sizes = []
    cursor = None
    while True:
        page = wallet.get("/api/cards?limit=2" + (f"&cursor={cursor}" if cursor else "")).get_json()
        sizes.append(len(page["items"]))
        seen += [c["id"] for c in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert sizes == [2, 2, 1] and seen == sorted(ids)
    default = wallet.get("/api/cards").get_json()
    assert [c["id"] for c in default["items"]] == sorted(ids) and default["nextCursor"] is None


def test_pages_skip_deleted_cards_and_see_changes(wallet: Wallet) -> None:
    """A deleted card leaves every page; the cached first page follows the change."""
    ids = _provision_all(wallet)
    first = wallet.get("/api/cards?limit=3").get_json()
    assert wallet.delete(f"/api/cards/{ids[1]}").status_code == 200
    again = wallet.get("/api/cards?limit=3").get_json()
    assert [c["id"] for c in again["items"]] == [ids[0], ids[2], ids[3]]
    rest = wallet.get(f"/api/cards?limit=3&cursor={first['nextCursor']}").get_json()
    assert [c["id"] for c in rest["items"]] == [ids[3], ids[4]]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=abc",
        "limit=-1",
        "cursor=%25%25%25",
    ],
)
def test_bad_page_parameters_are_400(wallet: Wallet, query: str) -> None:
    """A limit outside 1..100 or a cursor that is not base64url text is 400 problem+json."""
    response = wallet.get(f"/api/cards?{query}")
    assert response.status_code == 400, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["type"] == PROBLEMS + "request-validation"


@pytest.mark.parametrize("cursor", ["Y2FyZDox0", "eHl6OjE", "Y2FyZDoyMTQ3NDgzNjQ4"])
def test_cursor_never_issued_is_422(wallet: Wallet, cursor: str) -> None:
    """A well-formed cursor that names no card position this service issued is 422."""
    response = wallet.get(f"/api/cards?cursor={cursor}")
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["type"] == PROBLEMS + "unprocessable"


def test_card_list_page_pages(app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wallet's card list shows a page and a "More cards" link to the next one."""
    browser = sign_up(client)
    for pan in GREEN[:3]:
        assert browser.add_card(pan).status_code == 303
    monkeypatch.setattr(card_pages, "CARDS_PER_PAGE", 2)
    first = client.get("/wallet/cards").get_data(as_text=True)
    shown = re.findall(r'data-card-id="(\d+)"', first)
    more = re.search(r'id="more-cards" href="([^"]+)"', first)
    assert len(shown) == 2 and more
    second = client.get(more.group(1).replace("&amp;", "&")).get_data(as_text=True)
    rest = re.findall(r'data-card-id="(\d+)"', second)
    assert len(rest) == 1 and not set(rest) & set(shown)
    assert 'id="more-cards"' not in second
