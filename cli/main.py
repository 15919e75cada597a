"""The ``hcekit`` click group.

Sub-commands live one group per module and are imported only when used, so ``hcekit tlv
decode`` does not pay for Flask or SQLAlchemy. Each entry of :data:`COMMANDS` maps a command
name to ``"module:attribute"``; a module that is not installed is simply not listed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from cli.common import run_cli

COMMANDS: dict[str, tuple[str, str]] = {
    "tlv": ("cli.tlv:tlv", "Decode BER-TLV (EMV 4.4 Book 3 Annex B)."),
    "apdu": ("cli.apdu_cmd:apdu", "Decode ISO/IEC 7816-4 APDUs and the EMV commands."),
    "trace": ("cli.trace:trace", "Show APDU traces and import them from pcsc-spy or a Proxmark3."),
    "crypto": (
        "cli.crypto:crypto",
        "EMV cryptography: master and session keys, ARQC/TC/AAC, ARPC (EMV 4.4 Book 2).",
    ),
    "emulate": ("cli.emulate:emulate", "Emulate a contactless payment card for a reader until Ctrl-C."),
    "tap": (
        "cli.tap:tap",
        "Run one contactless tap and show its outcome and its timing against the 500 ms budget.",
    ),
    "readers": ("cli.tap:readers", "List the PC/SC readers and nfcpy USB devices this machine can see."),
    "serve": ("cli.serve:serve", "Run the token service (provisioning, lifecycle, devices) on HOST:PORT."),
    "network-sim": (
        "cli.serve:network_sim",
        "Serve the card networks' authorization switches and issuers over HTTP.",
    ),
    "register": ("cli.wallet:register", "Create an account, register this device's key and log in."),
    "login": ("cli.wallet:login", "Log in (registering this device's key at the service the first time)."),
    "logout": ("cli.wallet:logout", "End the session here and at the service."),
    "provision": (
        "cli.wallet:provision",
        "Add a card to this device: a network token, its profile and keys, sealed to this device.",
    ),
    "cards": ("cli.cards:cards", "The cards of this account and this wallet."),
    "device": ("cli.cards:device", "This device at the token service."),
    "keys": ("cli.payments:keys", "The cards' limited-use keys."),
    "pay": (
        "cli.payments:pay",
        "Pay in an app: the wallet's card makes a cryptogram and the service authorizes it.",
    ),
    "transactions": ("cli.payments:transactions", "The account's transactions, newest first."),
    "vault": ("cli.serve:vault", "PAN vault maintenance (keys come from HCEKIT_VAULT_KEYS)."),
    "reconcile": (
        "cli.serve:reconcile",
        "Settle authorizations whose answer never reached the terminal (reverse or void at the issuer).",
    ),
    "demo": (
        "cli.demo:demo",
        "Run the whole toolkit in process: token service, wallet, both kernels, in-app, lifecycle.",
    ),
    "bench": (
        "cli.bench:bench",
        "Tap N times and print p50/p95/p99/max of every phase against the 500 ms budget.",
    ),
    "oda": ("cli.oda:oda", "Offline data authentication: re-check recorded sessions."),
}
"""name -> ("module:attribute" of the click command or group, its one-line help).

The help line is the command's own (a test keeps them equal), written here so that
``hcekit --help`` lists every command without importing one."""


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use, and listed without it."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        present = []
        for name, (target, _help) in COMMANDS.items():
            module = target.split(":")[0]
            if importlib.util.find_spec(module) is not None:
                present.append(name)
        return sorted(present)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attribute = entry[0].split(":")
        if importlib.util.find_spec(module_name) is None:
            return None
        command = getattr(importlib.import_module(module_name), attribute, None)
        return command if isinstance(command, click.Command) else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from :data:`COMMANDS` (click would import every command for it)."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, _shorten(COMMANDS[name][1], limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _shorten(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to ``limit`` characters, with "..." as click does."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 3, 1)].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "..."


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hcekit", prog_name="hcekit")
def cli() -> None:
    """hcekit — contactless EMV payments end to end.

    A host-card-emulation card, a contactless terminal, a token service provider, and every
    APDU decoded. Bytes go in and come out as hex; every command that prints data has --json.
    """


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the group, turning errors into one line and an exit code."""
    return run_cli(cli, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
