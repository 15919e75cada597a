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

#: name -> "module:attribute" of the click command or group.
COMMANDS: dict[str, str] = {
    "tlv": "cli.tlv:tlv",
    "apdu": "cli.apdu_cmd:apdu",
    "trace": "cli.trace:trace",
    "crypto": "cli.crypto:crypto",
    "emulate": "cli.emulate:emulate",
    "tap": "cli.tap:tap",
    "readers": "cli.tap:readers",
    "serve": "cli.serve:serve",
    "network-sim": "cli.serve:network_sim",
    "register": "cli.wallet:register",
    "login": "cli.wallet:login",
    "logout": "cli.wallet:logout",
    "provision": "cli.wallet:provision",
    "cards": "cli.wallet:cards",
    "device": "cli.wallet:device",
    "keys": "cli.wallet:keys",
    "pay": "cli.wallet:pay",
    "transactions": "cli.wallet:transactions",
    "vault": "cli.serve:vault",
    "reconcile": "cli.serve:reconcile",
    "demo": "cli.demo:demo",
    "bench": "cli.bench:bench",
    "oda": "cli.oda:oda",
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        present = []
        for name, target in COMMANDS.items():
            module = target.split(":")[0]
            if importlib.util.find_spec(module) is not None:
                present.append(name)
        return sorted(present)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        if importlib.util.find_spec(module_name) is None:
            return None
        command = getattr(importlib.import_module(module_name), attribute, None)
        return command if isinstance(command, click.Command) else None


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
