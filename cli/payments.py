"""The wallet's ``keys``, ``pay`` and ``transactions`` commands: the cards' limited-use keys,
terminal API keys, in-app payments (:func:`hce.tspclient.in_app_payment`) and their history.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from cli.common import console, print_json
from cli.wallet import errors, open_wallet, session_client, wallet_options
from hce.tspclient import in_app_payment

__all__ = ["keys", "pay", "transactions"]


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
    from terminal.errors import TerminalError

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
        except (KeyError, TypeError, ValueError, TerminalError):
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
