"""The wallet's ``cards`` and ``device`` commands: the account's cards, this wallet's, and this device.

A card added anywhere but on this device (the web wallet, another client) reaches it with
``hcekit cards sync`` (:func:`hce.tspclient.sync_cards`), with the issuer scripts queued for
the wallet's cards; a card bound to another device of the account comes only with ``--move``.
``suspend``, ``reactivate``, ``remove`` and ``default`` act at the service and then on the
wallet's copy, when the wallet holds the card.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from cli.common import console, fail, print_json
from cli.wallet import card_line, errors, open_wallet, session_client, wallet_options
from hce.tspclient import all_cards, follow_default, sync_cards

__all__ = ["cards", "device"]


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




@cards.command("sync")
@click.option(
    "--move",
    is_flag=True,
    help="Also bring cards that are on another of your devices here (that device loses them).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what changed as JSON.")
@wallet_options
def cards_sync(move: bool, as_json: bool, wallet_dir: Path | None, host: str | None) -> None:
    """Fetch every active card of the account that this wallet lacks, sealed to this device, and
    apply the issuer's queued scripts to the wallet's cards."""
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
        for item in report["scripts"]:
            outcome = "applied" if item["sw"] == "9000" else f"refused by the card ({item['sw']})"
            console.print(f"card {item['card']}: issuer script {item['action']} {outcome}")
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
            if wallet.has_card(card_id):
                wallet.remove_card(card_id)
        elif action == "default":
            card = client.request("PUT", f"/api/cards/{card_id}/default")
            wallet.set_default(card_id)
        else:
            card = client.post(f"/api/cards/{card_id}/{action}", {"reason": reason or "CUSTOMER_REQUEST"})
            if wallet.has_card(card_id):
                wallet.set_status(card_id, card["status"])
    console.print(card_line(card))


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
                if wallet.has_card(int(card["id"])):
                    wallet.set_status(int(card["id"]), card["status"])
            wallet.clear_session()
    suspended = ", ".join(str(c["id"]) for c in answer.get("cards", [])) or "none"
    console.print(f"device {target} reported lost; cards suspended: {suspended}")
