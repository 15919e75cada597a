"""``hcekit trace``: read APDU traces (JSON Lines) and bring in traces from other tools."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from apdu.errors import TraceError
from apdu.importers import FORMATS, parse
from apdu.proxmark import parse_pm3_report
from apdu.trace import dumps, read_trace
from cli.common import console, err_console, fail, print_json
from cli.render import decode_trace, trace_renderable
from cli.tlv import KERNELS


def _read_lines(path: Path) -> list[str]:
    """The lines of a text file, or one clear error."""
    if str(path) == "-":
        return sys.stdin.read().splitlines()
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise fail(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror or exc}") from None


@click.group()
def trace() -> None:
    """Show APDU traces and import them from pcsc-spy or a Proxmark3."""


@trace.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="Print every record decoded, as JSON.")
@click.option("--unmasked", is_flag=True, help="Show PAN, Track 2 and names as they are in the file.")
@click.option("--kernel", type=KERNELS, default=None, help="Read tags as this kernel's (default: the AID's).")
def show(file: Path, as_json: bool, unmasked: bool, kernel: str | None) -> None:
    """Show every exchange of a JSON Lines trace FILE, decoded, with its timing."""
    try:
        records = read_trace(_read_lines(file))
    except TraceError as exc:
        raise fail(f"{file}: {exc}") from None
    entries = decode_trace(records, kernel=kernel.lower() if kernel else None, masked=not unmasked)
    if as_json:
        print_json(entries)
        return
    if not entries:
        console.print("(empty trace)")
        return
    console.print(trace_renderable(entries), soft_wrap=False)


@trace.command(name="import")
@click.option(
    "--format", "fmt", type=click.Choice(sorted(FORMATS)), required=True, help="The tool that wrote FILE."
)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True), default="-",
    show_default=True, help="Where to write the JSON Lines trace.",
)
@click.option("--unmasked", is_flag=True, help="Keep PAN, Track 2 and names in clear (not recommended).")
def import_(fmt: str, file: Path, output: Path, unmasked: bool) -> None:
    """Convert pcsc-spy or Proxmark3 `trace list -t 14a` output FILE into a JSON Lines trace."""
    noise = 0
    try:
        if fmt == "pm3":
            records, noise = parse_pm3_report(_read_lines(file))
        else:
            records = parse(_read_lines(file), fmt)
    except TraceError as exc:
        raise fail(f"{file}: {exc}") from None
    if not records:
        raise fail(f"{file}: no APDUs found in it as {fmt} output")
    text = dumps(records, masked=not unmasked)
    if str(output) == "-":
        click.echo(text, nl=False)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise fail(f"cannot write {output}: {exc.strerror or exc}") from None
    commands = sum(1 for r in records if r.dir == "C")
    err_console.print(
        f"{len(records)} APDUs ({commands} commands) from {file} → {output}"
        + ("" if unmasked else " (masked)")
        + (f"; {noise} noise frame(s) skipped" if noise else "")
    )
