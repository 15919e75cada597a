"""The CLI journey against a real token service on loopback: register, provision, cards, tap, pay."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import cli, main
from hce.tspclient import TSPClient
from hce.wallet import Wallet
from tests.cli.errorline import one_error_line
from tsp_backend.testing import LoopbackTSP

GREEN_VISA = "4111111111111111"        # tsp_backend.services.risk: green
YELLOW_MASTERCARD = "5105105105105100"  # tsp_backend.services.risk: yellow
RED_VISA = "4000000000000002"           # tsp_backend.services.risk: red
PASSWORD = "password-123"


@pytest.fixture(scope="module")
def tsp() -> Iterator[LoopbackTSP]:
    """One token service on a loopback port for the module."""
    with LoopbackTSP() as server:
        yield server


class Journey:
    """A user at the loopback service with their own wallet directory."""

    def __init__(self, tsp: LoopbackTSP, wallet_dir: Path, email: str) -> None:
        self.tsp = tsp
        self.wallet_dir = wallet_dir
        self.email = email
        self.runner = CliRunner()

    def run(self, *args: str, input: str | None = None) -> Result:
        """Run ``hcekit ARGS`` with this wallet and host."""
        env = {"HCEKIT_WALLET": str(self.wallet_dir), "HCEKIT_HOST": self.tsp.url}
        return self.runner.invoke(cli, list(args), input=input, env=env)

    def ok(self, *args: str, input: str | None = None) -> Result:
        """Run and insist on exit status 0."""
        result = self.run(*args, input=input)
        assert result.exit_code == 0, (result.output, result.exception)
        return result

    def json(self, *args: str, input: str | None = None) -> Any:
        """Run with --json and parse the output."""
        return json.loads(self.ok(*args, "--json", input=input).output)

    @property
    def wallet(self) -> Wallet:
        """The wallet as it is on disk now."""
        return Wallet.open(self.wallet_dir, create=False)

    def terminal_key(self) -> str:
        """A terminal API key (dev mode lets any user create one)."""
        session = self.wallet.session
        assert session is not None
        with TSPClient(self.tsp.url, session.token) as client:
            return str(client.post("/api/terminals", {"name": "T"})["apiKey"])

    def outbox_code(self, card_id: int) -> str:
        """The one-time code the service sent for ``card_id``."""
        session = self.wallet.session
        assert session is not None
        with TSPClient(self.tsp.url, session.token) as client:
            return next(str(m["code"]) for m in client.get("/api/dev/outbox") if m["cardId"] == card_id)


_count = iter(range(1, 10_000))


@pytest.fixture
def journey(tsp: LoopbackTSP, tmp_path: Path) -> Journey:
    """A registered, logged-in user with an empty wallet."""
    j = Journey(tsp, tmp_path / "wallet", f"user{next(_count)}@example.com")
    j.ok("register", "--email", j.email, "--password", PASSWORD)
    return j


def test_register_creates_device_and_session(journey: Journey) -> None:
    """register leaves a device key registered at the service and a session in the wallet."""
    wallet = journey.wallet
    assert wallet.device_id is not None
    assert wallet.device_host == journey.tsp.url
    assert wallet.session is not None and wallet.session.email == journey.email


def test_password_prompts_are_hidden(tsp: LoopbackTSP, tmp_path: Path) -> None:
    """Prompted passwords are not echoed."""
    j = Journey(tsp, tmp_path / "w", "prompted@example.com")
    result = j.ok("register", input=f"prompted@example.com\n{PASSWORD}\n{PASSWORD}\n")
    assert PASSWORD not in result.output


def test_green_provision_then_tap_approved(journey: Journey) -> None:
    """A green card is provisioned, tapped with --reader sim on the wallet's card, and approved."""
    card = journey.json("provision", "--pan", GREEN_VISA, "--expiry", "12/30", "--cvv", "123")
    assert card["status"] == "ACTIVE" and card["wallet"]["default"]
    key = journey.terminal_key()
    tap = journey.json("tap", "--amount", "12.50", "--host", journey.tsp.url, "--api-key", key)
    assert tap["outcome"] == "approved"
    assert tap["reader"] == f"sim:wallet-card-{card['id']}"
    assert journey.wallet.counters(card["id"]).last_atc == 1


def test_pan_and_cvv_never_echoed_or_stored(journey: Journey) -> None:
    """Prompted PAN and CVV appear neither in the output nor in any wallet file."""
    result = journey.ok("provision", "--expiry", "12/30", input=f"{GREEN_VISA}\n987\n")
    assert GREEN_VISA not in result.output and "987" not in result.output
    for path in journey.wallet_dir.rglob("*"):
        if path.is_file():
            assert GREEN_VISA.encode() not in path.read_bytes()


class LazyInput(io.RawIOBase):
    """Standard input whose text is computed when the command first reads it (after its POST)."""

    def __init__(self, make: Callable[[], str]) -> None:
        self._make = make
        self._data: bytes | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not len(buffer):
            return 0
        if self._data is None:
            self._data = self._make().encode()
        n = min(len(buffer), len(self._data))
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


def test_yellow_provision_asks_for_the_code(journey: Journey) -> None:
    """A yellow card asks for the one-time code; a wrong code is refused, the outbox's is accepted."""

    def answers() -> str:
        session = journey.wallet.session
        assert session is not None
        with TSPClient(journey.tsp.url, session.token) as client:
            code = str(client.get("/api/dev/outbox")[0]["code"])
        wrong = "111111" if code != "111111" else "222222"
        return f"{wrong}\n{code}\n"

    result = journey.run("provision", "--pan", YELLOW_MASTERCARD, "--expiry", "11/29", "--cvv", "321",
                         input=LazyInput(answers))  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output
    assert "one-time code" in result.output and "try again" in result.output
    card = journey.wallet.card()
    assert (card.network, card.status, card.profile.kernel) == ("mastercard", "ACTIVE", "mastercard")


def test_red_provision_is_one_error_line(journey: Journey, capsys: pytest.CaptureFixture[str]) -> None:
    """A declined provisioning is one 'error:' line and exit status 1, without the PAN."""
    env_args = ["--wallet", str(journey.wallet_dir), "--host", journey.tsp.url]
    code = main(["provision", "--pan", RED_VISA, "--expiry", "12/30", "--cvv", "123", *env_args])
    assert code == 1
    assert RED_VISA not in one_error_line(capsys)


def test_wrong_password_is_one_error_line(journey: Journey, capsys: pytest.CaptureFixture[str]) -> None:
    """A wrong password gives the service's problem title as one line."""
    code = main(["login", "--email", journey.email, "--password", "wrong-password",
                 "--wallet", str(journey.wallet_dir), "--host", journey.tsp.url])
    assert code == 1
    assert one_error_line(capsys).startswith("error: Invalid credentials")


def test_unreachable_host_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A service that does not answer is one clear line."""
    code = main(["register", "--email", "a@example.com", "--password", PASSWORD,
                 "--wallet", str(tmp_path / "w"), "--host", "http://127.0.0.1:9"])
    assert code == 1
    assert "cannot reach the token service" in one_error_line(capsys)


def test_lifecycle_and_declined_tap(journey: Journey) -> None:
    """suspend → tap declined; reactivate → approved; default moves; remove forgets the card."""
    first = journey.json("provision", "--pan", GREEN_VISA, "--expiry", "12/30", "--cvv", "123")
    second = journey.json("provision", "--pan", "4242424242424242", "--expiry", "12/30", "--cvv", "123")
    key = journey.terminal_key()
    journey.ok("cards", "suspend", str(first["id"]))
    assert journey.wallet.card(first["id"]).status == "SUSPENDED"
    declined = journey.json("tap", "--card", str(first["id"]), "--host", journey.tsp.url, "--api-key", key)
    assert declined["outcome"] == "declined"
    journey.ok("cards", "reactivate", str(first["id"]))
    approved = journey.json("tap", "--card", str(first["id"]), "--host", journey.tsp.url, "--api-key", key)
    assert approved["outcome"] == "approved"
    journey.ok("cards", "default", str(second["id"]))
    assert journey.wallet.card().id == second["id"]
    journey.ok("cards", "remove", str(first["id"]))
    assert [c.id for c in journey.wallet.cards] == [second["id"]]
    listed = journey.json("cards", "list")
    assert [c["id"] for c in listed] == [second["id"]]


def test_pay_and_transactions(journey: Journey) -> None:
    """An in-app payment is approved and shows in the transaction list with its ATC."""
    card = journey.json("provision", "--pan", GREEN_VISA, "--expiry", "12/30", "--cvv", "123")
    paid = journey.json("pay", "--amount", "19.99", "--merchant-name", "Example Shop")
    assert paid["approved"] is True
    items = journey.json("transactions")
    assert items[0]["channel"] == "in_app"
    assert items[0]["amount"] == 1999
    assert items[0]["cardId"] == card["id"]
    text = journey.ok("transactions").output
    assert "19.99" in text and "in_app" in text


def test_keys_replenish(journey: Journey) -> None:
    """keys replenish adds a sealed batch to the default card."""
    card = journey.json("provision", "--pan", GREEN_VISA, "--expiry", "12/30", "--cvv", "123")
    before = len(journey.wallet.card(card["id"]).profile.luks)
    out = journey.ok("keys", "replenish").output
    assert "new limited-use keys" in out
    assert len(journey.wallet.card(card["id"]).profile.luks) > before


def test_device_lost_suspends_and_logs_out(journey: Journey) -> None:
    """device lost suspends the device's cards and ends the session."""
    card = journey.json("provision", "--pan", GREEN_VISA, "--expiry", "12/30", "--cvv", "123")
    journey.ok("device", "lost", "--yes")
    wallet = journey.wallet
    assert wallet.session is None
    assert wallet.card(card["id"]).status == "SUSPENDED"
    again = journey.run("cards", "list")
    assert again.exit_code == 1 and "not logged in" in again.output


def test_logout_then_login_again(journey: Journey) -> None:
    """logout ends the session; login restores it on the same device."""
    device = journey.wallet.device_id
    journey.ok("logout")
    assert journey.wallet.session is None
    journey.ok("login", "--email", journey.email, "--password", PASSWORD)
    assert journey.wallet.session is not None
    assert journey.wallet.device_id == device


def test_wallet_for_another_host_is_refused(journey: Journey, tmp_path: Path) -> None:
    """A wallet registered at one service refuses to log in at another."""
    result = journey.run("login", "--email", journey.email, "--password", PASSWORD,
                         "--host", "http://127.0.0.1:9")
    assert result.exit_code == 1
    assert "registered at" in result.output


def add_on_the_web(journey: Journey, pan: str = GREEN_VISA) -> int:
    """Add a card as the web wallet does (activated, no profile delivered) to the journey's device."""
    from tsp_backend.models import User

    session_data = journey.wallet.session
    device_id = journey.wallet.device_id
    assert session_data is not None and device_id is not None
    svc = journey.tsp.app.extensions["hcekit"]
    with svc.sessions_factory() as session:
        user = session.get(User, session_data.user_id)
        assert user is not None
        result = svc.provisioner.provision(session, user, device_id, pan, "12/30", "123", deliver=False)
        session.commit()
        return int(result.card.id)


def test_sync_fetches_a_card_added_on_the_web(journey: Journey) -> None:
    """cards sync picks up a card the wallet lacks; the card then taps and is approved."""
    card_id = add_on_the_web(journey)
    assert journey.wallet.cards == ()
    assert "hcekit cards sync fetches them" in journey.ok("cards", "list").output
    report = journey.json("cards", "sync")
    assert [c["id"] for c in report["added"]] == [card_id]
    card = journey.wallet.card()
    assert card.id == card_id and card.status == "ACTIVE" and len(card.profile.luks) == 5
    key = journey.terminal_key()
    session = journey.wallet.session
    assert session is not None
    with TSPClient(journey.tsp.url, session.token) as client:
        asked = client.post(f"/api/cards/{card_id}/issuer-actions", {"action": "cvm_limit", "amount": 2500},
                            idempotent=True)
    tap = journey.json("tap", "--amount", "3.20", "--host", journey.tsp.url, "--api-key", key)
    assert tap["outcome"] == "approved"
    scripted = journey.json("cards", "sync")["scripts"]
    assert scripted == [
        {"id": asked["id"], "action": "cvm_limit", "sw": "9000", "arpcSw": "9000", "card": card_id}
    ]
    assert journey.wallet.applet(card_id).cvm_limit == 2500
    again = journey.json("cards", "sync")
    assert again == {"added": [], "dropped": [], "skipped": [], "failed": [], "scripts": []}
    assert "holds every card" in journey.ok("cards", "sync").output


def test_sync_moves_a_card_only_when_asked(journey: Journey, tmp_path: Path) -> None:
    """A second device leaves the first device's card unless --move; after it, the first drops it."""
    card = journey.json("provision", "--pan", GREEN_VISA, "--expiry", "12/30", "--cvv", "123")
    tablet = Journey(journey.tsp, tmp_path / "tablet", journey.email)
    tablet.ok("login", "--email", journey.email, "--password", PASSWORD, "--device-name", "tablet")
    left = tablet.json("cards", "sync")
    assert left["added"] == [] and "--move" in left["skipped"][0]["reason"]
    moved = tablet.json("cards", "sync", "--move")
    assert [c["id"] for c in moved["added"]] == [card["id"]]
    key = tablet.terminal_key()
    approved = tablet.json("tap", "--host", tablet.tsp.url, "--api-key", key)
    assert approved["outcome"] == "approved"
    dropped = journey.json("cards", "sync")
    assert [c["id"] for c in dropped["dropped"]] == [card["id"]]
    assert journey.wallet.cards == ()


def test_sync_rescues_the_cards_of_a_lost_device(journey: Journey, tmp_path: Path) -> None:
    """After the phone is reported lost, a new device moves its suspended card and pays with it."""
    card = journey.json("provision", "--pan", GREEN_VISA, "--expiry", "12/30", "--cvv", "123")
    journey.ok("device", "lost", "--yes")
    tablet = Journey(journey.tsp, tmp_path / "tablet", journey.email)
    tablet.ok("login", "--email", journey.email, "--password", PASSWORD, "--device-name", "tablet")
    moved = tablet.json("cards", "sync", "--move")
    assert [c["id"] for c in moved["added"]] == [card["id"]]
    assert tablet.wallet.card().status == "ACTIVE"
    paid = tablet.json("pay", "--amount", "4.00")
    assert paid["approved"] is True


def test_sync_reports_a_refusal_as_one_error_line(journey: Journey) -> None:
    """A card the service will not deliver today is listed and the command exits 1."""
    card_id = add_on_the_web(journey)
    session = journey.wallet.session
    assert session is not None
    with TSPClient(journey.tsp.url, session.token) as client:
        for _ in range(4):
            client.post(f"/api/cards/{card_id}/profile", {"deviceId": journey.wallet.device_id},
                        idempotent=True)
    result = journey.run("cards", "sync")
    assert result.exit_code == 1
    assert "failed" in result.output and "Key replenishment limit" in result.output
    assert journey.wallet.cards == ()


def test_cards_list_follows_every_page(journey: Journey) -> None:
    """The wallet commands read the whole card list, page after page of GET /api/cards."""
    from hce.tspclient import all_cards

    for pan in (GREEN_VISA, "4242424242424242", "5555555555554444"):
        journey.ok("provision", "--pan", pan, "--expiry", "12/30", "--cvv", "123")
    session = journey.wallet.session
    assert session is not None
    with TSPClient(journey.tsp.url, session.token) as client:
        first = client.get("/api/cards", limit=2)
        assert len(first["items"]) == 2 and first["nextCursor"]
        paged = all_cards(client, page_size=2)
    listed = journey.json("cards", "list")
    assert [c["id"] for c in paged] == [c["id"] for c in listed]
    assert len({c["id"] for c in paged}) == 3


def test_keys_revoke(journey: Journey) -> None:
    """hcekit keys revoke ID ends a terminal key: the next tap with it is refused."""
    session = journey.wallet.session
    assert session is not None
    with TSPClient(journey.tsp.url, session.token) as client:
        created = client.post("/api/terminals", {"name": "T-revoke"})
    result = journey.ok("keys", "revoke", str(created["id"]))
    assert f"key {created['id']}" in result.output and "revoked" in result.output
    journey.ok("provision", "--pan", GREEN_VISA, "--expiry", "12/30", "--cvv", "123")
    tap = journey.run("tap", "--amount", "1.00", "--host", journey.tsp.url, "--api-key", created["apiKey"])
    assert tap.exit_code == 1 and "401" in tap.output


def test_the_service_default_is_the_wallet_default(journey: Journey) -> None:
    """Make default at the service → cards sync moves the wallet's default; never two defaults listed."""
    first = journey.json("provision", "--pan", GREEN_VISA, "--expiry", "12/30", "--cvv", "123")
    second = journey.json("provision", "--pan", "5555555555554444", "--expiry", "12/30", "--cvv", "123")
    session = journey.wallet.session
    assert session is not None
    with TSPClient(journey.tsp.url, session.token) as client:
        client.request("PUT", f"/api/cards/{second['id']}/default")
    journey.ok("cards", "sync")
    assert journey.wallet.card().id == second["id"]
    rows = journey.json("cards", "list")
    assert [r["id"] for r in rows if r["default"] or r["walletDefault"]] == [second["id"]]
    listed = journey.ok("cards", "list").output
    assert listed.count("yes") == 1
    with TSPClient(journey.tsp.url, session.token) as client:
        client.request("PUT", f"/api/cards/{first['id']}/default")
    assert [r["id"] for r in journey.json("cards", "list") if r["walletDefault"]] == [first["id"]]
    assert journey.wallet.card().id == first["id"]


def test_lifecycle_of_a_card_the_wallet_lacks_is_not_an_error(journey: Journey) -> None:
    """suspend, reactivate and remove act at the service on a card this wallet does not hold."""
    card_id = add_on_the_web(journey)
    assert "SUSPENDED" in journey.ok("cards", "suspend", str(card_id)).output
    assert "ACTIVE" in journey.ok("cards", "reactivate", str(card_id)).output
    journey.ok("cards", "remove", str(card_id))
    assert journey.wallet.cards == ()


def test_a_wallet_failure_after_remove_surfaces(journey: Journey) -> None:
    """remove reports a wallet that cannot forget the card's counters (one error line, status 1)."""
    card = journey.json("provision", "--pan", GREEN_VISA, "--expiry", "12/30", "--cvv", "123")
    (journey.wallet_dir / "counters" / f"{card['id']}.json").mkdir(parents=True)
    result = journey.run("cards", "remove", str(card["id"]))
    assert result.exit_code == 1, result.output
    assert f"cannot remove the counters of card {card['id']}" in result.output
