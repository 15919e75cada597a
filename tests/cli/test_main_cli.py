"""The ``hcekit`` group: every command listed, each help line its command's own, none imported to list."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from cli.main import COMMANDS, cli


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_listed_help_is_the_commands_own(name: str) -> None:
    """The table's help line equals the first line of the command's docstring."""
    target, listed = COMMANDS[name]
    module, attribute = target.split(":")
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command)
    assert command.get_short_help_str(limit=500) == listed


def test_help_lists_every_command() -> None:
    """``hcekit --help`` names every command of the table."""
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == set(COMMANDS)


def test_help_imports_no_command_module() -> None:
    """Listing the commands imports none of them (nor Flask, SQLAlchemy or rich)."""
    probe = (
        "import sys; from cli.main import main; "
        "code = main(['--help']); "
        "mods = [m for m in sys.modules if m.split('.')[0] in ('flask', 'sqlalchemy', 'rich') "
        "or m in {t.split(':')[0] for t, _ in __import__('cli.main').main.COMMANDS.values()}]; "
        "print(sorted(mods), file=sys.stderr); sys.exit(1 if mods else code)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
