"""The wallet's commands: ``register``, ``login``, ``logout``, ``provision``, ``cards``, ``device``,
``keys``, ``pay`` and ``transactions``.

A card added anywhere but on this device (the web wallet, another client) reaches it with
``hcekit cards sync``: for every ACTIVE card of the account that the wallet lacks, the device
asks ``POST /api/cards/{id}/profile`` for a profile sealed to its own key, with fresh limited-use
keys. A card bound to another device of the account is brought here only with ``--move`` (the
other device loses it); cards the service has removed or moved away leave the wallet.

They talk HTTP to a token service (``--host URL``, ``HCEKIT_HOST``, default
``http://127.0.0.1:8000``; once logged in, the session's host) and keep what the device must
remember in the device wallet (:mod:`hce.wallet`; ``--wallet DIR`` or ``HCEKIT_WALLET``): the
device key, the session token, the opened card profiles and their counters.

The funding PAN and CVV go to the service and nowhere else: they are never printed, logged or
stored, and are asked with hidden input when not given as options. A problem document from the
service (RFC 9457) becomes one line ``error: <title>: <detail>`` and exit status 1.
"""

from __future__ import annotations

import contextlib
import datetime
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx
from rich.table import Table
from rich.text import Text

from cli.common import console, fail, print_json

DEFAULT_HOST = "http://127.0.0.1:8000"
"""Where ``hcekit serve`` listens by default."""

F = TypeVar("F", bound=Callable[..., Any])


class TSPProblem(Exception):
    """The token service answered with an error (a problem document), or could not be reached.

    ``status`` is the HTTP status (0 when the service was unreachable), ``type`` the problem's
    stable type URI.
    """

    def __init__(self, message: str, *, status: int = 0, type: str = "about:blank") -> None:
        super().__init__(message)
        self.status = status
        self.type = type

    @property
    def slug(self) -> str:
        """The last part of the problem type (``verification-code-invalid`` …)."""
        return self.type.rsplit("/", 1)[-1]


class TSPClient:
    """A small JSON client of the token service's HTTP API; ``token`` is the session's bearer token."""

    def __init__(self, host: str, token: str | None = None, *, timeout: float = 10.0) -> None:
        self.host = host.rstrip("/")
        self.token = token
        self._http = httpx.Client(
            base_url=self.host, timeout=timeout, headers={"User-Agent": "hcekit-wallet"}
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> TSPClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        idempotent: bool = False,
        params: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> Any:
        """Send one request; the JSON answer (``None`` for 204), or :class:`TSPProblem`."""
        headers: dict[str, str] = {}
        bearer = token or self.token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        if idempotent:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        try:
            response = self._http.request(method, path, json=body, headers=headers, params=params)
        except httpx.HTTPError as exc:
            raise TSPProblem(
                f"cannot reach the token service at {self.host} ({type(exc).__name__})"
            ) from None
        if response.status_code >= 400:
            raise _problem(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise TSPProblem(f"the token service answered {path} with something that is not JSON") from None

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path``."""
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None} or None)

    def post(self, path: str, body: Any = None, *, idempotent: bool = False) -> Any:
        """POST ``path``."""
        return self.request("POST", path, body, idempotent=idempotent)


def _problem(response: httpx.Response) -> TSPProblem:
    doc: Any = None
    with contextlib.suppress(ValueError):
        doc = response.json()
    if not isinstance(doc, dict):
        doc = {}
    title = str(doc.get("title") or response.reason_phrase or f"HTTP {response.status_code}")
    detail = str(doc.get("detail") or "")
    message = f"{title}: {detail}" if detail and detail != title else title
    return TSPProblem(message, status=response.status_code, type=str(doc.get("type") or "about:blank"))


# ---------------------------------------------------------------------------- shared plumbing


@contextlib.contextmanager
def errors() -> Iterator[None]:
    """Turn token-service, wallet and card errors into one ``error:`` line (exit status 1)."""
    from hce.errors import HCEError

    try:
        yield
    except TSPProblem as exc:
        raise fail(str(exc)) from None
    except HCEError as exc:
        raise fail(str(exc)) from None


def wallet_options(func: F) -> F:
    """``--wallet DIR`` and ``--host URL`` on a command."""
    func = click.option(
        "--host",
        "host",
        envvar="HCEKIT_HOST",
        default=None,
        help=f"Token service URL (HCEKIT_HOST; default: the session's, else {DEFAULT_HOST}).",
    )(func)
    func = click.option(
        "--wallet",
        "wallet_dir",
        envvar="HCEKIT_WALLET",
        default=None,
        type=click.Path(file_okay=False, path_type=Path),
        help="Wallet directory (HCEKIT_WALLET; default: the user data directory).",
    )(func)
    return func


def open_wallet(wallet_dir: Path | None, *, create: bool = True) -> Any:
    """The device wallet in ``wallet_dir`` (default location when ``None``)."""
    from hce.wallet import Wallet

    with errors():
        return Wallet.open(wallet_dir, create=create)


def resolve_host(wallet: Any, host: str | None) -> str:
    """``--host``, else the session's host, else the device's, else :data:`DEFAULT_HOST`."""
    if host:
        return host.rstrip("/")
    session = wallet.session
    if session is not None:
        return str(session.host)
    return str(wallet.device_host or DEFAULT_HOST)


def session_client(wallet: Any, host: str | None) -> TSPClient:
    """A client with the wallet's session token; an error when nobody is logged in."""
    session = wallet.session
    if session is None:
        raise fail("not logged in (hcekit login, or hcekit register)")
    target = resolve_host(wallet, host)
    if target != session.host:
        raise fail(f"the session is for {session.host}, not {target} (hcekit login --host {target})")
    return TSPClient(target, session.token)


def login_with_device(
    client: TSPClient, wallet: Any, email: str, password: str, *, device_name: str = "hcekit-cli"
) -> dict[str, Any]:
    """Log in, register this wallet's device if it has none at this host, bind the session to it.

    The session is bound to the device (``deviceId`` at login), so reporting the device lost
    also ends the session. Returns ``{"user", "deviceId", "newDevice"}``.
    """
    from hce.wallet import WalletSession

    if wallet.device_host not in (None, client.host):
        raise fail(
            f"this wallet's device is registered at {wallet.device_host}; "
            "use --wallet DIR for another token service"
        )
    body: dict[str, Any] = {"email": email, "password": password}
    new_device = wallet.device_id is None
    if not new_device:
        body["deviceId"] = wallet.device_id
    login = client.post("/api/auth/login", body)
    if new_device:
        device = client.request(
            "POST",
            "/api/devices",
            {"name": device_name, "publicKey": wallet.public_key_b64},
            token=login["token"],
        )
        wallet.set_device(int(device["id"]), client.host, device_name)
        login = client.request(
            "POST", "/api/auth/login", {**body, "deviceId": wallet.device_id}, token=login["token"]
        )
    wallet.set_session(
        WalletSession(client.host, login["token"], login["user"]["email"], int(login["user"]["id"]))
    )
    client.token = login["token"]
    return {"user": login["user"], "deviceId": wallet.device_id, "newDevice": new_device}


def _card_line(card: dict[str, Any]) -> str:
    return (
        f"card {card['id']}: {str(card.get('network', '')).upper()} ····{card.get('last4', '')} "
        f"→ token ····{card.get('tokenLast4', '')}  {card.get('status', '')}"
        + ("  (default)" if card.get("default") else "")
    )


def store_card(wallet: Any, card: dict[str, Any], envelope: dict[str, Any]) -> Any:
    """Open a sealed profile into the wallet with the service's view of the card."""
    return wallet.add_card(
        int(card["id"]),
        envelope,
        network=str(card.get("network", "")),
        status=str(card.get("status", "ACTIVE")),
        last4=str(card.get("last4", "")),
        token_last4=str(card.get("tokenLast4", "")),
        default=bool(card.get("default")),
    )


# ---------------------------------------------------------------------------- register / login / logout


@click.command()
@click.option("--email", prompt=True, help="The account's e-mail address.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="At least 8 characters (asked with hidden input when not given).",
)
@click.option("--device-name", default="hcekit-cli", show_default=True, help="This device's name.")
@wallet_options
def register(email: str, password: str, device_name: str, wallet_dir: Path | None, host: str | None) -> None:
    """Create an account, register this device's key and log in."""
    wallet = open_wallet(wallet_dir)
    target = resolve_host(wallet, host)
    with errors(), TSPClient(target) as client:
        user = client.post("/api/auth/register", {"email": email, "password": password})
        result = login_with_device(client, wallet, email, password, device_name=device_name)
    console.print(
        f"registered {user['email']} (user {user['id']}) at {target}; device {result['deviceId']}; logged in"
    )


@click.command()
@click.option("--email", prompt=True, help="The account's e-mail address.")
@click.option("--password", prompt=True, hide_input=True, help="Asked with hidden input when not given.")
@click.option(
    "--device-name",
    default="hcekit-cli",
    show_default=True,
    help="This device's name, if it is registered now.",
)
@wallet_options
def login(email: str, password: str, device_name: str, wallet_dir: Path | None, host: str | None) -> None:
    """Log in (registering this device's key at the service the first time)."""
    wallet = open_wallet(wallet_dir)
    target = resolve_host(wallet, host)
    with errors(), TSPClient(target) as client:
        result = login_with_device(client, wallet, email, password, device_name=device_name)
    extra = " (device registered)" if result["newDevice"] else ""
    console.print(f"logged in as {result['user']['email']} on device {result['deviceId']}{extra}")


@click.command()
@wallet_options
def logout(wallet_dir: Path | None, host: str | None) -> None:
    """End the session here and at the service."""
    wallet = open_wallet(wallet_dir)
    if wallet.session is None:
        console.print("not logged in")
        return
    with errors(), session_client(wallet, host) as client:
        try:
            client.post("/api/auth/logout")
        except TSPProblem as exc:
            if exc.status != 401:
                raise
    with errors():
        wallet.clear_session()
    console.print("logged out")


# ---------------------------------------------------------------------------- provision


def _expiry(value: str) -> str:
    text = value.strip().replace("-", "/")
    if "/" not in text and len(text) == 4 and text.isdigit():
        text = f"{text[:2]}/{text[2:]}"
    return text


@click.command()
@click.option(
    "--pan",
    prompt="Card number",
    hide_input=True,
    help="The funding card number (asked with hidden input when not given; never stored).",
)
@click.option("--expiry", prompt="Expiry (MM/YY)", help="MM/YY.")
@click.option(
    "--cvv",
    prompt="CVV",
    hide_input=True,
    help="The card security code (asked with hidden input when not given; never stored).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
@wallet_options
def provision(
    pan: str, expiry: str, cvv: str, as_json: bool, wallet_dir: Path | None, host: str | None
) -> None:
    """Add a card to this device: a network token, its profile and keys, sealed to this device.

    When the service wants the card verified, it sends a one-time code (in development, to the
    outbox at GET /api/dev/outbox) and this command asks for it.
    """
    wallet = open_wallet(wallet_dir)
    with errors(), session_client(wallet, host) as client:
        if wallet.device_id is None:
            raise fail("this wallet has no registered device (hcekit login)")
        body = {
            "pan": "".join(pan.split()),
            "expiry": _expiry(expiry),
            "cvv": cvv.strip(),
            "deviceId": wallet.device_id,
        }
        answer = client.post("/api/cards", body, idempotent=True)
        del body, pan, cvv
        card = answer["card"]
        verification = answer.get("verification")
        if answer.get("profile") is None:
            sent = (verification or {}).get("to", "you")
            console.print(
                f"card {card['id']}: the issuer wants to verify it; a one-time code was sent to {sent}"
            )
            attempts = int((verification or {}).get("attempts", 3))
            for attempt in range(attempts):
                code = click.prompt("One-time code", type=str).strip()
                try:
                    answer = client.post(f"/api/cards/{card['id']}/verify", {"code": code})
                    break
                except TSPProblem as exc:
                    if exc.slug != "verification-code-invalid" or attempt == attempts - 1:
                        raise
                    console.print(Text(f"{exc}; try again", style="yellow"))
            card = answer["card"]
        stored = store_card(wallet, card, answer["profile"])
    if as_json:
        print_json(
            {**card, "decision": answer.get("decision", card.get("decision")), "wallet": stored.to_json()}
        )
        return
    console.print(_card_line({**card, "default": stored.default}))
    console.print(
        Text(f"{stored.label}: {len(stored.profile.luks)} limited-use keys in the wallet", style="dim")
    )


# ---------------------------------------------------------------------------- cards


def all_cards(client: TSPClient, *, page_size: int = 100) -> list[dict[str, Any]]:
    """Every live card of the account, following ``nextCursor`` across pages of ``GET /api/cards``."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = client.get("/api/cards", limit=page_size, cursor=cursor)
        found += page["items"]
        cursor = page.get("nextCursor")
        if not cursor:
            return found


@click.group()
def cards() -> None:
    """The cards of this account and this wallet."""


@cards.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the cards as JSON.")
@wallet_options
def cards_list(as_json: bool, wallet_dir: Path | None, host: str | None) -> None:
    """The account's cards, with what this wallet holds for each."""
    wallet = open_wallet(wallet_dir)
    with errors(), session_client(wallet, host) as client:
        remote = all_cards(client)
        follow_default(client, wallet, remote)
        local = {c.id: c for c in wallet.cards}
        rows = []
        for card in remote:
            held = local.get(int(card["id"]))
            if held is not None and held.status != card["status"]:
                held = wallet.set_status(held.id, card["status"])
            rows.append(
                {
                    **card,
                    "inWallet": held is not None,
                    "keys": len(held.profile.luks) if held else 0,
                    "walletDefault": bool(held and held.default),
                }
            )
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no cards (hcekit provision adds one)")
        return
    missing = [
        r["id"]
        for r in rows
        if not r["inWallet"] and r["status"] == "ACTIVE" and r.get("deviceId") == wallet.device_id
    ]
    table = Table(show_edge=False, pad_edge=False)
    for column in ("id", "network", "card", "token", "status", "default", "keys"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["network"],
            f"····{row['last4']}",
            f"····{row['tokenLast4']}",
            row["status"],
            "yes" if row["default"] else "",
            str(row["keys"]) if row["inWallet"] else "—",
        )
    console.print(table)
    if missing:
        console.print(
            Text(
                f"{len(missing)} card(s) not in this wallet yet: hcekit cards sync fetches them", style="dim"
            )
        )


def sync_cards(client: TSPClient, wallet: Any, *, move: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Bring the wallet in line with the account's cards (see the module docstring).

    Returns ``{"added": [...], "dropped": [...], "skipped": [...], "failed": [...]}``, each a
    list of ``{"id", "network", "last4", "reason"?}``. A card the service refuses (its key
    limit for the day, say) is listed under ``failed`` and the others still sync.
    """
    if wallet.device_id is None:
        raise fail("this wallet has no registered device (hcekit login)")
    mine = int(wallet.device_id)
    remote = all_cards(client)
    local = {c.id: c for c in wallet.cards}
    report: dict[str, list[dict[str, Any]]] = {"added": [], "dropped": [], "skipped": [], "failed": []}

    def row(card: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        entry = {"id": int(card["id"]), "network": card.get("network", ""), "last4": card.get("last4", "")}
        if reason:
            entry["reason"] = reason
        return entry

    for card in remote:
        card_id = int(card["id"])
        status = str(card.get("status", ""))
        elsewhere = card.get("deviceId") is not None and int(card["deviceId"]) != mine
        held = local.pop(card_id, None)
        if held is not None:
            if elsewhere:
                wallet.remove_card(card_id)
                report["dropped"].append(row(card, f"moved to device {card['deviceId']}"))
            elif held.status != status:
                wallet.set_status(card_id, status)
            continue
        rescuable = status == "SUSPENDED" and card.get("statusReason") == "DEVICE_LOST"
        if elsewhere and not (move and (status == "ACTIVE" or rescuable)):
            hint = " (--move brings it here)" if status == "ACTIVE" or rescuable else ""
            report["skipped"].append(row(card, f"on device {card['deviceId']}{hint}"))
            continue
        if not elsewhere and status != "ACTIVE":
            report["skipped"].append(row(card, status.lower()))
            continue
        body = {"deviceId": mine, "move": bool(elsewhere)}
        try:
            answer = client.post(f"/api/cards/{card_id}/profile", body, idempotent=True)
        except TSPProblem as exc:
            if exc.status == 0:
                raise
            report["failed"].append(row(card, str(exc)))
            continue
        store_card(wallet, answer["card"], answer["profile"])
        report["added"].append(row(answer["card"]))
    for gone in local.values():
        wallet.remove_card(gone.id)
        report["dropped"].append(
            {"id": gone.id, "network": gone.network, "last4": gone.last4, "reason": "removed at the service"}
        )
    follow_default(client, wallet, remote)
    return report


def follow_default(client: TSPClient, wallet: Any, remote: list[dict[str, Any]]) -> None:
    """Make the wallet's default the service's default card of this device.

    The service is the source of truth. When it names no default for this device yet, the
    wallet's own choice (its first card, say) is made the service's default first, so the two
    never disagree and no listing shows two defaults for one device.
    """
    held = {c.id: c for c in wallet.cards}
    if wallet.device_id is None or not held:
        return
    mine = int(wallet.device_id)
    chosen = next(
        (
            int(c["id"])
            for c in remote
            if c.get("default") and c.get("deviceId") is not None and int(c["deviceId"]) == mine
        ),
        None,
    )
    if chosen is None:
        local = next((c for c in held.values() if c.default and c.status == "ACTIVE"), None)
        if local is not None:
            try:
                client.request("PUT", f"/api/cards/{local.id}/default")
                chosen = local.id
                for card in remote:
                    if int(card["id"]) == local.id:
                        card["default"] = True
            except TSPProblem as exc:
                if exc.status == 0:
                    raise
    wallet.follow_default(chosen if chosen in held else None)


@cards.command("sync")
@click.option(
    "--move",
    is_flag=True,
    help="Also bring cards that are on another of your devices here (that device loses them).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what changed as JSON.")
@wallet_options
def cards_sync(move: bool, as_json: bool, wallet_dir: Path | None, host: str | None) -> None:
    """Fetch every active card of the account that this wallet lacks, sealed to this device."""
    wallet = open_wallet(wallet_dir)
    with errors(), session_client(wallet, host) as client:
        report = sync_cards(client, wallet, move=move)
    if as_json:
        print_json(report)
    else:
        words = {
            "added": "added",
            "dropped": "removed from this wallet",
            "skipped": "left",
            "failed": "failed",
        }
        for kind, verb in words.items():
            for item in report[kind]:
                why = f" ({item['reason']})" if item.get("reason") else ""
                console.print(
                    f"card {item['id']}: {str(item['network']).upper()} ····{item['last4']} {verb}{why}"
                )
        if not any(report.values()):
            console.print("the wallet holds every card of this device")
    if report["failed"]:
        raise fail(f"{len(report['failed'])} card(s) could not be fetched")


def _lifecycle(
    action: str, card_id: int, reason: str | None, wallet_dir: Path | None, host: str | None
) -> None:
    wallet = open_wallet(wallet_dir)
    with errors(), session_client(wallet, host) as client:
        if action == "remove":
            card = client.request("DELETE", f"/api/cards/{card_id}")
            with contextlib.suppress(Exception):
                wallet.remove_card(card_id)
        elif action == "default":
            card = client.request("PUT", f"/api/cards/{card_id}/default")
            wallet.set_default(card_id)
        else:
            card = client.post(f"/api/cards/{card_id}/{action}", {"reason": reason or "CUSTOMER_REQUEST"})
            with contextlib.suppress(Exception):
                wallet.set_status(card_id, card["status"])
    console.print(_card_line(card))


_REASON = click.option(
    "--reason",
    default="CUSTOMER_REQUEST",
    show_default=True,
    help="Reason code (CUSTOMER_REQUEST, SUSPECTED_FRAUD; FRAUD_CLEARED to reactivate).",
)


@cards.command("suspend")
@click.argument("card_id", type=int)
@_REASON
@wallet_options
def cards_suspend(card_id: int, reason: str, wallet_dir: Path | None, host: str | None) -> None:
    """Suspend a card: its taps and payments are declined until it is reactivated."""
    _lifecycle("suspend", card_id, reason, wallet_dir, host)


@cards.command("reactivate")
@click.argument("card_id", type=int)
@_REASON
@wallet_options
def cards_reactivate(card_id: int, reason: str, wallet_dir: Path | None, host: str | None) -> None:
    """Reactivate a suspended card."""
    _lifecycle("reactivate", card_id, reason, wallet_dir, host)


@cards.command("remove")
@click.argument("card_id", type=int)
@wallet_options
def cards_remove(card_id: int, wallet_dir: Path | None, host: str | None) -> None:
    """Deactivate a card for good and delete it from this wallet."""
    _lifecycle("remove", card_id, None, wallet_dir, host)


@cards.command("default")
@click.argument("card_id", type=int)
@wallet_options
def cards_default(card_id: int, wallet_dir: Path | None, host: str | None) -> None:
    """Make a card the default: the one ``tap --reader sim``, ``emulate`` and ``pay`` use."""
    _lifecycle("default", card_id, None, wallet_dir, host)


# ---------------------------------------------------------------------------- device, keys


@click.group()
def device() -> None:
    """This device at the token service."""


@device.command("lost")
@click.option(
    "--device-id", type=int, default=None, help="Another of the account's devices (default: this one)."
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@wallet_options
def device_lost(device_id: int | None, yes: bool, wallet_dir: Path | None, host: str | None) -> None:
    """Report a device lost: its cards are suspended and its sessions end."""
    wallet = open_wallet(wallet_dir)
    target = device_id or wallet.device_id
    if target is None:
        raise fail("this wallet has no registered device; give --device-id")
    if not yes:
        click.confirm(f"report device {target} lost (its cards are suspended)?", abort=True)
    with errors(), session_client(wallet, host) as client:
        answer = client.post(f"/api/devices/{target}/lost")
        if target == wallet.device_id:
            for card in answer.get("cards", []):
                with contextlib.suppress(Exception):
                    wallet.set_status(int(card["id"]), card["status"])
            wallet.clear_session()
    suspended = ", ".join(str(c["id"]) for c in answer.get("cards", [])) or "none"
    console.print(f"device {target} reported lost; cards suspended: {suspended}")


@click.group()
def keys() -> None:
    """The cards' limited-use keys."""


@keys.command("replenish")
@click.option("--card", "card_id", type=int, default=None, help="The card (default: the default card).")
@click.option("--all", "every", is_flag=True, help="Every card in the wallet.")
@wallet_options
def keys_replenish(card_id: int | None, every: bool, wallet_dir: Path | None, host: str | None) -> None:
    """Fetch a new batch of limited-use keys, sealed to this device."""
    wallet = open_wallet(wallet_dir)
    with errors(), session_client(wallet, host) as client:
        targets = [c.id for c in wallet.cards] if every else [wallet.card(card_id).id]
        for target in targets:
            answer = client.post(f"/api/cards/{target}/keys")
            added = wallet.add_keys(target, answer["keys"])
            held = wallet.card(target)
            console.print(f"card {target}: {added} new limited-use keys ({len(held.profile.luks)} usable)")


@keys.command("terminal")
@click.option("--name", default="hcekit terminal", show_default=True, help="The terminal's name.")
@click.option("--kind", type=click.Choice(["terminal", "merchant"]), default="terminal", show_default=True)
@wallet_options
def keys_terminal(name: str, kind: str, wallet_dir: Path | None, host: str | None) -> None:
    """Create a terminal API key for ``hcekit tap --host`` (administrators, or anyone in dev mode).

    The key is printed once, alone on standard output, so ``export HCEKIT_TERMINAL_KEY=$(…)`` works.
    """
    wallet = open_wallet(wallet_dir)
    with errors(), session_client(wallet, host) as client:
        answer = client.post("/api/terminals", {"name": name, "kind": kind})
    click.echo(answer["apiKey"])


@keys.command("revoke")
@click.argument("key_id", type=int)
@wallet_options
def keys_revoke(key_id: int, wallet_dir: Path | None, host: str | None) -> None:
    """Revoke terminal API key KEY_ID (administrators, or its creator); every worker refuses it at once."""
    wallet = open_wallet(wallet_dir)
    with errors(), session_client(wallet, host) as client:
        answer = client.request("DELETE", f"/api/terminals/{key_id}")
    console.print(
        f"key {answer['id']} ({answer['prefix']}…, {answer['name']}) revoked at {answer['revokedAt']}"
    )


# ---------------------------------------------------------------------------- pay, transactions


def in_app_payment(
    client: TSPClient,
    wallet: Any,
    *,
    amount: int,
    currency: str,
    card_id: int | None = None,
    merchant_id: str = "M-42",
    merchant_name: str = "Example Shop",
) -> dict[str, Any]:
    """Make the in-app cryptogram with the wallet's card and send it to POST /api/payments/in-app."""
    from hce.inapp import in_app_cryptogram

    card = wallet.card(card_id)
    applet = wallet.applet(card.id, device_cvm=True)
    made = in_app_cryptogram(
        applet, amount=amount, currency=currency, date=datetime.date.today().strftime("%y%m%d")
    )
    if made.kind != "ARQC":
        reason = applet.last_cryptogram.reason if applet.last_cryptogram else "declined"
        hint = " (hcekit keys replenish)" if reason == "replenish" else ""
        raise fail(f"the card declined the payment itself: {reason}{hint}")
    body = {
        "cardId": card.id,
        "amount": amount,
        "currency": currency.upper(),
        "merchantId": merchant_id,
        "merchantName": merchant_name,
        "emv": made.emv.hex().upper(),
    }
    result: dict[str, Any] = client.post("/api/payments/in-app", body, idempotent=True)
    result.setdefault("atc", made.atc)
    result["cardId"] = card.id
    return result


@click.command()
@click.option("--amount", required=True, help="Amount in major units as on a receipt (19.99).")
@click.option("--currency", default="EUR", show_default=True, help="ISO 4217 code.")
@click.option("--card", "card_id", type=int, default=None, help="The card (default: the default card).")
@click.option("--merchant-id", default="M-42", show_default=True)
@click.option("--merchant-name", default="Example Shop", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@wallet_options
def pay(
    amount: str,
    currency: str,
    card_id: int | None,
    merchant_id: str,
    merchant_name: str,
    as_json: bool,
    wallet_dir: Path | None,
    host: str | None,
) -> None:
    """Pay in an app: the wallet's card makes a cryptogram and the service authorizes it."""
    from terminal.config import format_amount, parse_amount
    from terminal.errors import TerminalError

    try:
        minor = parse_amount(amount, currency)
    except TerminalError as exc:
        raise click.BadParameter(str(exc), param_hint="--amount") from None
    wallet = open_wallet(wallet_dir)
    with errors(), session_client(wallet, host) as client:
        result = in_app_payment(
            client,
            wallet,
            amount=minor,
            currency=currency,
            card_id=card_id,
            merchant_id=merchant_id,
            merchant_name=merchant_name,
        )
    if as_json:
        print_json(result)
        return
    approved = bool(result.get("approved"))
    style = "bold green" if approved else "bold red"
    verdict = "approved" if approved else "declined"
    console.print(Text(f"{verdict}: {format_amount(minor, currency)} at {merchant_name}", style=style))
    console.print(
        f"response code {result.get('responseCode', '—')}  auth {result.get('authCode') or '—'}  "
        f"transaction {result.get('transactionId', '—')}"
        + (f"  ({result['reason']})" if result.get("reason") else "")
    )


@click.command()
@click.option("--card", "card_id", type=int, default=None, help="Only this card.")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the transactions as JSON.")
@wallet_options
def transactions(
    card_id: int | None, limit: int, as_json: bool, wallet_dir: Path | None, host: str | None
) -> None:
    """The account's transactions, newest first."""
    from terminal.config import format_amount

    wallet = open_wallet(wallet_dir)
    with errors(), session_client(wallet, host) as client:
        page = client.get("/api/transactions", cardId=card_id, limit=limit)
    items = page.get("items", []) if isinstance(page, dict) else list(page)
    if as_json:
        print_json(items)
        return
    if not items:
        console.print("no transactions")
        return
    table = Table(show_edge=False, pad_edge=False)
    for column in ("when", "card", "amount", "merchant", "channel", "status", "code", "ATC"):
        table.add_column(column)
    for t in items:
        try:
            money = format_amount(int(t["amount"]), str(t["currency"]))
        except Exception:
            money = f"{t.get('amount')} {t.get('currency')}"
        merchant = t.get("merchant") or {}
        table.add_row(
            str(t.get("createdAt", ""))[:19],
            str(t.get("cardId", "")),
            money,
            str(merchant.get("name", "")),
            str(t.get("channel", "")),
            str(t.get("status", "")),
            str(t.get("responseCode", "")),
            str(t.get("atc", "")),
        )
    console.print(table)


__all__ = [
    "DEFAULT_HOST",
    "TSPClient",
    "TSPProblem",
    "all_cards",
    "cards",
    "device",
    "errors",
    "in_app_payment",
    "keys",
    "login",
    "login_with_device",
    "logout",
    "open_wallet",
    "pay",
    "provision",
    "register",
    "store_card",
    "sync_cards",
    "transactions",
    "wallet_options",
]
