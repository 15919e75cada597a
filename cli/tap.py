"""``hcekit tap`` and ``hcekit readers``: one contactless tap, and the readers that can make it.

``--amount`` is written in the currency's major units as on a receipt (``12.50``, ``12``,
``1000`` JPY) and converted exactly to integer minor units with the ISO 4217 exponent of
``--currency``; no float ever holds money. ``--json`` reports the amount in minor units.

``--reader sim`` runs the hce applet in this process: the card of ``--profile FILE`` (a card
profile JSON); else the device wallet's default card (``--wallet DIR`` / ``HCEKIT_WALLET``, or
the default wallet when it holds a card and no ``--kernel`` is given), on its durable counters;
else the built-in test card of ``--kernel`` (Visa by default). This module is the
one place that joins the card and the terminal: ``applet.process`` becomes the terminal's
:class:`~terminal.transports.local.LocalTransport`.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from apdu.trace import JsonlWriter, Tracer, TraceRecorder
from cli.common import console, fail, print_json
from terminal.config import TerminalConfig, Transaction, format_amount, parse_amount
from terminal.errors import TerminalError
from terminal.outcome import Outcome
from terminal.tap import TapResult, run_tap, today
from terminal.timing import PHASES
from terminal.transports import open_transport, parse_reader
from terminal.transports.base import Transport
from terminal.transports.local import LocalTransport

_STYLES = {
    Outcome.APPROVED: "bold green",
    Outcome.DECLINED: "bold red",
    Outcome.ONLINE_REQUEST: "bold yellow",
    Outcome.TRY_AGAIN: "bold yellow",
    Outcome.TRY_ANOTHER_INTERFACE: "bold red",
    Outcome.END_APPLICATION: "bold red",
}
_BAR = 30


def sim_transport(profile_path: Path | None, kernel: str | None, *, oda: bool = False) -> LocalTransport:
    """The hce applet in process: a profile file's card, or the built-in test card of ``kernel``."""
    try:
        from hce.applet import CardApplet
        from hce.profile import CardProfile
        from hce.testcard import builtin_profile
    except ImportError as exc:
        raise fail(f"--reader sim needs the hce card package: {exc}") from None
    if profile_path is not None:
        try:
            profile = CardProfile.load(profile_path)
        except Exception as exc:
            raise fail(f"{profile_path}: not a usable card profile: {exc}") from None
        name = f"sim:{profile_path.name}"
    else:
        profile = builtin_profile(kernel or "visa", now=int(time.time()), oda=oda)
        name = f"sim:test-{kernel or 'visa'}"
    applet = CardApplet(profile, clock=time.time)
    return LocalTransport(applet.process, name=name)


def wallet_transport(
    wallet_dir: Path | None, card_id: int | None, *, required: bool
) -> LocalTransport | None:
    """The device wallet's card (``card_id``, else its default) in process, on its durable counters.

    Without ``required``, a missing wallet or a wallet without cards gives ``None``.
    """
    try:
        from hce.errors import HCEError
        from hce.wallet import Wallet, default_directory
    except ImportError as exc:
        raise fail(f"--reader sim needs the hce card package: {exc}") from None
    directory = wallet_dir or default_directory()
    if not required and not (directory / "wallet.enc").exists():
        return None
    try:
        wallet = Wallet.open(directory, create=False)
        if not required and not wallet.cards:
            return None
        card = wallet.card(card_id)
        applet = wallet.applet(card.id, clock=time.time)
    except HCEError as exc:
        raise fail(str(exc)) from None
    return LocalTransport(applet.process, name=f"sim:wallet-card-{card.id}")


def _open(reader: str, profile: Path | None, kernel: str | None, wait: float,
          wallet_dir: Path | None = None, card_id: int | None = None, *, oda: bool = False) -> Transport:
    try:
        kind, _ = parse_reader(reader)
        if kind == "sim":
            if profile is None and (wallet_dir is not None or card_id is not None):
                found = wallet_transport(wallet_dir, card_id, required=True)
                assert found is not None
                return found
            if profile is None and kernel is None and not oda:
                found = wallet_transport(None, None, required=False)
                if found is not None:
                    return found
            return sim_transport(profile, kernel, oda=oda)
        return open_transport(reader, wait=wait)
    except TerminalError as exc:
        raise fail(str(exc)) from None


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


#: Bar colours of the waterfall, and the legend printed under it.
_CARD, _TRANSPORT, _UNSPLIT = "cyan", "blue", "grey50"
LEGEND = Text.assemble(
    ("█ card  ", _CARD), ("█ transport  ", _TRANSPORT),
    ("█ round trip the reader cannot split into card and transport  ", _UNSPLIT),
    ("█ terminal  ", "magenta"), ("█ authorization", "yellow"),
)


def waterfall(result: TapResult) -> Table:
    """The tap's timing as a rich table: one bar per APDU, then terminal, authorization and total.

    Each exchange shows its whole round trip, then the card's time and the transport's (reader,
    PC/SC, radio) when the transport can tell them apart; a PC/SC reader cannot, and its round
    trips (the first one including the connection to the card) are shown as such, never as
    card time.
    """
    timing = result.timing
    scale = max(timing.total_ms, 1e-9)
    table = Table(title="timing", title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("phase")
    table.add_column("SW")
    for column in ("start ms", "round trip ms", "card ms", "transport ms"):
        table.add_column(column, justify="right")
    table.add_column("", no_wrap=True, min_width=_BAR)

    def bar(start: float, length: float, style: str, card: float | None = None) -> Text:
        offset = min(int(_BAR * start / scale), _BAR - 1)
        width = min(max(1, round(_BAR * length / scale)), _BAR - offset)
        out = Text(" " * offset)
        if card is None:
            out.append("█" * width, style=style)
        else:
            card_width = min(width, round(width * card / length)) if length else 0
            out.append("█" * card_width, style=_CARD)
            out.append("█" * (width - card_width), style=_TRANSPORT)
        return out

    for a in timing.apdus:
        label = PHASES.get(a.phase, a.phase)
        if a.name not in label:
            label += f" · {a.name}"
        table.add_row(label, a.sw, _ms(a.start_ms), _ms(a.round_trip_ms), _ms(a.card_ms), _ms(a.transport_ms),
                      bar(a.start_ms, a.round_trip_ms, _UNSPLIT, a.card_ms))
    table.add_row("terminal processing", "", "", _ms(timing.terminal_ms), "", "",
                  bar(0, timing.terminal_ms, "magenta"), end_section=timing.authorization_ms is None)
    if timing.authorization_ms is not None:
        table.add_row("authorization", "", _ms(timing.tap_ms), _ms(timing.authorization_ms), "", "",
                      bar(timing.tap_ms, timing.authorization_ms, "yellow"), end_section=True)
    card = timing.card_ms
    table.add_row(Text("total", style="bold"), "", _ms(timing.total_ms), _ms(timing.round_trip_ms),
                  _ms(card), _ms(timing.transport_ms) if card is not None else "—", "")
    return table


def budget_line(result: TapResult) -> Text:
    """One line: the total against the 500 ms budget."""
    timing = result.timing
    left = timing.budget_left_ms
    return Text(
        f"{timing.total_ms:.2f} ms of the {timing.budget_ms:.0f} ms budget: {left:.2f} ms left",
        style="bold green" if left >= 0 else "bold red",
    )


def summary(result: TapResult, *, masked: bool) -> Table:
    """The outcome and the card's identity as a small two-column table."""
    out = result.outcome
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    grid.add_row("outcome", Text(f"{out.outcome.value}  ({out.message})", style=_STYLES[out.outcome]))
    grid.add_row("reason", out.reason)
    grid.add_row("amount", format_amount(out.amount, out.currency))
    if out.aid:
        grid.add_row("application", f"{out.label or ''}  {out.aid.hex().upper()}  ({out.kernel} kernel)")
    pan = out.pan_masked if masked else (out.to_json(masked=False)["pan"])
    if pan:
        grid.add_row("PAN", pan)
    if out.cryptogram:
        grid.add_row("cryptogram", f"{out.cryptogram} {out.data.get(0x9F26, b'').hex().upper()}")
    if out.cvm:
        grid.add_row("CVM", out.cvm)
    if out.oda is not None:
        oda = out.oda
        text = f"{oda.method or '—'} {oda.status}" + (f" ({oda.reason})" if oda.reason else "")
        if oda.ca_index is not None:
            text += f"  CA index {oda.ca_index:02X}"
        if oda.weak_keys:
            text += f"  weak keys: {', '.join(oda.weak_keys)}"
        style = {"passed": "green", "failed": "red"}.get(oda.status, "yellow")
        grid.add_row("ODA", Text(text, style=style))
    if out.host:
        host = out.host
        grid.add_row("host", f"{'approved' if host.approved else 'declined'}  code {host.response_code}  "
                             f"auth {host.auth_code or '—'}  ARPC {host.arpc.hex().upper() or '—'}")
    return grid


def authorization_table(result: TapResult, *, masked: bool) -> Table | None:
    """The decoded field-55 block, or ``None`` without a cryptogram."""
    rows = result.outcome.decoded_authorization(masked=masked)
    if not rows:
        return None
    table = Table(title="authorization data (field 55)", title_justify="left",
                  show_edge=False, pad_edge=False)
    for column in ("tag", "name", "value", "meaning"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["tag"], row["name"], row["value"], row["meaning"])
    return table


@click.command()
@click.option("--reader", default="sim", show_default=True,
              help="sim | pcsc[:NAME|INDEX] | nfc:usb[:…] | nfc:udp[:HOST:PORT] | replay:FILE")
@click.option("--amount", default="1.00", show_default=True,
              help="Amount in major units as on a receipt (12.50); converted exactly to minor units.")
@click.option("--currency", default="EUR", show_default=True, help="ISO 4217 code (EUR, USD, 978 …).")
@click.option("--host", "host_url", default=None,
              help="TSP base URL: send the online request to POST /api/authorize.")
@click.option("--api-key", envvar="HCEKIT_TERMINAL_KEY", default=None,
              help="The terminal's API key for --host (or HCEKIT_TERMINAL_KEY).")
@click.option("--offline", is_flag=True, help="Stop at the online request; send nothing.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the outcome, timing and authorization data as JSON.")
@click.option("--trace", "trace_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the tap's APDUs as a JSON Lines trace (masked unless --unmasked).")
@click.option("--unmasked", is_flag=True, help="Show and save PAN and Track 2 data unmasked.")
@click.option("--profile", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="Card profile JSON for --reader sim (default: the built-in test card).")
@click.option("--kernel", type=click.Choice(["visa", "mastercard"]), default=None,
              help="Force this kernel's path; with --reader sim also picks the built-in test card.")
@click.option("--wallet", "wallet_dir", envvar="HCEKIT_WALLET", default=None,
              type=click.Path(file_okay=False, path_type=Path),
              help="--reader sim: tap this device wallet's default card (HCEKIT_WALLET).")
@click.option("--card", "card_id", type=int, default=None,
              help="--reader sim: tap this card of the wallet instead of its default.")
@click.option("--apdus", is_flag=True, help="Also show every APDU decoded.")
@click.option("--oda", is_flag=True,
              help="--reader sim: the built-in test card carries a certificate chain and signs (fDDA/CDA).")
@click.option("--wait", type=float, default=10.0, show_default=True,
              help="Seconds to wait for a card on a real reader.")
def tap(
    reader: str, amount: str, currency: str, host_url: str | None, api_key: str | None, offline: bool,
    as_json: bool, trace_file: Path | None, unmasked: bool, profile: Path | None, kernel: str | None,
    wallet_dir: Path | None, card_id: int | None, apdus: bool, oda: bool, wait: float,
) -> None:
    """Run one contactless tap and show its outcome and its timing against the 500 ms budget."""
    if offline and host_url:
        raise click.UsageError("--offline and --host exclude each other")
    if host_url and not api_key:
        raise click.UsageError("--host needs --api-key (or HCEKIT_TERMINAL_KEY)")
    try:
        transaction = Transaction(amount=parse_amount(amount, currency), currency=currency, date=today())
        config = TerminalConfig(kernel=kernel)
    except TerminalError as exc:
        raise click.BadParameter(str(exc)) from None
    masked = not unmasked
    recorder = TraceRecorder()
    tracers: list[Tracer] = [recorder]
    with contextlib.ExitStack() as stack:
        if trace_file is not None:
            try:
                fp = stack.enter_context(trace_file.open("w", encoding="utf-8"))
            except OSError as exc:
                raise fail(f"cannot write {trace_file}: {exc.strerror or exc}") from None
            tracers.append(JsonlWriter(fp, masked=masked))
        transport = stack.enter_context(_open(reader, profile, kernel, wait, wallet_dir, card_id, oda=oda))
        client = None
        if host_url and api_key:
            from terminal.host import AuthorizationClient

            client = stack.enter_context(AuthorizationClient(host_url, api_key))
        try:
            result = run_tap(transport, transaction, config=config, host=client, tracers=tracers)
        except TerminalError as exc:
            raise fail(str(exc)) from None
    if as_json:
        doc: dict[str, Any] = result.to_json(masked=masked)
        doc["reader"] = transport.name
        print_json(doc)
        return
    console.print(summary(result, masked=masked))
    console.print()
    if apdus:
        try:
            from cli.render import decode_trace, trace_renderable
        except ImportError:
            pass
        else:
            console.print(trace_renderable(decode_trace(recorder.records, kernel=result.outcome.kernel,
                                                        masked=masked)), soft_wrap=False)
            console.print()
    table = authorization_table(result, masked=masked)
    if table is not None:
        console.print(table)
        console.print()
    console.print(waterfall(result))
    console.print(LEGEND)
    console.print(budget_line(result))
    console.print(Text(f"reader {transport.name}", style="dim"))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the readers as JSON.")
def readers(as_json: bool) -> None:
    """List the PC/SC readers and nfcpy USB devices this machine can see."""
    found: dict[str, Any] = {"pcsc": [], "nfc": [], "errors": {}}
    try:
        from terminal.transports.pcsc import list_readers

        found["pcsc"] = list_readers()
    except TerminalError as exc:
        found["errors"]["pcsc"] = str(exc)
    try:
        from terminal.transports.nfc import list_devices

        found["nfc"] = list_devices()
    except TerminalError as exc:
        found["errors"]["nfc"] = str(exc)
    if as_json:
        print_json(found)
        return
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("--reader")
    table.add_column("device")
    for index, name in enumerate(found["pcsc"]):
        table.add_row(f"pcsc:{index}", name)
    for device in found["nfc"]:
        path, _, description = device.partition(" ")
        table.add_row(f"nfc:{path}", description)
    table.add_row("nfc:udp[:HOST:PORT]", "nfcpy's UDP driver (pairs with hcekit emulate --via nfc)")
    table.add_row("sim", "the hce test card in this process")
    console.print(table)
    for kind, error in found["errors"].items():
        console.print(Text(f"{kind}: {error}", style="yellow"))
