"""The wallet's commands: ``register``, ``login``, ``logout`` and ``provision``, and what every wallet
command shares (``--wallet``, ``--host``, the session, the error line).

The other wallet commands are :mod:`cli.cards` (``cards``, ``device``) and :mod:`cli.payments`
(``keys``, ``pay``, ``transactions``). All of them talk HTTP to a token service through
:class:`hce.tspclient.TSPClient` (``--host URL``, ``HCEKIT_HOST``, default
``http://127.0.0.1:8000``; once logged in, the session's host) and keep what the device must
remember in the device wallet (:mod:`hce.wallet`; ``--wallet DIR`` or ``HCEKIT_WALLET``): the
device key, the session token, the opened card profiles and their counters.

The funding PAN and CVV go to the service and nowhere else: they are never printed, logged or
stored, and are asked with hidden input when not given as options. A problem document from the
service (RFC 9457) becomes one line ``error: <title>: <detail>`` and exit status 1.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.text import Text

from cli.common import console, fail, print_json
from hce.errors import HCEError
from hce.tspclient import TSPClient, TSPProblem, login_with_device, request_card, store_card
from hce.wallet import Wallet

DEFAULT_HOST = "http://127.0.0.1:8000"
"""Where ``hcekit serve`` listens by default."""

F = TypeVar("F", bound=Callable[..., Any])


# ---------------------------------------------------------------------------- shared plumbing


@contextlib.contextmanager
def errors() -> Iterator[None]:
    """Turn token-service, wallet and card errors into one ``error:`` line (exit status 1)."""
    try:
        yield
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


def open_wallet(wallet_dir: Path | None, *, create: bool = True) -> Wallet:
    """The device wallet in ``wallet_dir`` (default location when ``None``)."""
    with errors():
        return Wallet.open(wallet_dir, create=create)


def resolve_host(wallet: Wallet, host: str | None) -> str:
    """``--host``, else the session's host, else the device's, else :data:`DEFAULT_HOST`."""
    if host:
        return host.rstrip("/")
    session = wallet.session
    if session is not None:
        return str(session.host)
    return str(wallet.device_host or DEFAULT_HOST)


def session_client(wallet: Wallet, host: str | None) -> TSPClient:
    """A client with the wallet's session token; an error when nobody is logged in."""
    session = wallet.session
    if session is None:
        raise fail("not logged in (hcekit login, or hcekit register)")
    target = resolve_host(wallet, host)
    if target != session.host:
        raise fail(f"the session is for {session.host}, not {target} (hcekit login --host {target})")
    return TSPClient(target, session.token)


def card_line(card: dict[str, Any]) -> str:
    """One line for a card as the service describes it."""
    return (
        f"card {card['id']}: {str(card.get('network', '')).upper()} ····{card.get('last4', '')} "
        f"→ token ····{card.get('tokenLast4', '')}  {card.get('status', '')}"
        + ("  (default)" if card.get("default") else "")
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
        answer = request_card(client, wallet, "".join(pan.split()), _expiry(expiry), cvv.strip())
        del pan, cvv
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
    console.print(card_line({**card, "default": stored.default}))
    console.print(
        Text(f"{stored.label}: {len(stored.profile.luks)} limited-use keys in the wallet", style="dim")
    )


__all__ = [
    "DEFAULT_HOST",
    "card_line",
    "errors",
    "login",
    "logout",
    "open_wallet",
    "provision",
    "register",
    "resolve_host",
    "session_client",
    "store_card",
    "wallet_options",
]
