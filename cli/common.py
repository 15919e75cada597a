"""What every ``hcekit`` command shares: hex parsing, JSON output, the console, error lines.

Only this package turns errors into exit codes (docs/architecture.md, Conventions 6): library
errors are caught in :func:`run_cli` and printed as one line ``error: …`` on standard error
with exit status 1 (2 for usage errors, as click does).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

    console: Console
    """Standard output, through rich (colour only on a terminal)."""

    err_console: Console
    """Standard error, through rich."""

_HEX_SEPARATORS = re.compile(r"[\s:]+")


def __getattr__(name: str) -> Any:
    """``console`` and ``err_console``, made on first use (rich costs start-up time)."""
    if name not in ("console", "err_console"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from rich.console import Console

    made = Console(stderr=name == "err_console", highlight=False, soft_wrap=True)
    globals()[name] = made
    return made


def parse_hex(text: str, *, what: str = "hex") -> bytes:
    """Bytes from hex that may contain spaces, colons or a ``0x`` prefix; a clear error otherwise.

    >>> parse_hex("00 A4 04 00").hex().upper()
    '00A40400'
    >>> parse_hex("ABC")
    Traceback (most recent call last):
    ...
    click.exceptions.BadParameter: hex has an odd number of digits (3)
    """
    cleaned = _HEX_SEPARATORS.sub("", text)
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    bad = re.search(r"[^0-9A-Fa-f]", cleaned)
    if bad:
        raise click.BadParameter(f"{what} has a non-hex character {bad.group()!r}")
    if len(cleaned) % 2:
        raise click.BadParameter(f"{what} has an odd number of digits ({len(cleaned)})")
    return bytes.fromhex(cleaned)


class HexParam(click.ParamType):  # type: ignore[type-arg]
    """A click parameter type for hex input (spaces allowed)."""

    name = "hex"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> bytes:
        if isinstance(value, bytes):
            return value
        try:
            return parse_hex(str(value), what=param.name if param and param.name else "hex")
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


HEX = HexParam()


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on standard output (no colour, machine-readable)."""
    import json  # here, not at start-up: most commands print text

    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def run_cli(group: click.Command, args: Sequence[str]) -> int:
    """Run a click command; every error becomes one line on standard error and an exit code."""
    try:
        group.main(args=list(args), prog_name="hcekit", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        click.echo("error: aborted", err=True)
        return 1
    except click.UsageError as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code or 1
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # the last line of defence: one line, never a traceback
        click.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        return 1
    return 0


def fail(message: str) -> click.ClickException:
    """A :class:`click.ClickException` to raise with one clear line."""
    return click.ClickException(message)

