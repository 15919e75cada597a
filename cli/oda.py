"""``hcekit oda``: re-check the offline data authentication of a recorded session.

``hcekit oda verify --trace FILE`` reads a trace (hcekit JSON Lines, or pcsc-spy / Proxmark3 output
with ``--format``), finds the card's certificates and signatures and the terminal's data in the
commands, and checks the chain step by step against the CA key table (EMV 4.4 Book 2 §5-§6),
printing each step and why it held or failed. Exit status 0 when the authentication passed, 1
when it failed or could not be performed.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from apdu.errors import TraceError
from apdu.importers import FORMATS, parse
from apdu.trace import read_trace
from cli.common import console, fail, print_json
from terminal.capk import CaKeyTable
from terminal.errors import ConfigError
from terminal.oda_session import verify_session
from terminal.transports.replay import pairs


@click.group()
def oda() -> None:
    """Offline data authentication: re-check recorded sessions."""


@oda.command()
@click.option("--trace", "trace_file", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The recorded session.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", *FORMATS]), default="jsonl", show_default=True,
              help="The trace's format.")
@click.option("--ca-keys", type=click.Path(path_type=Path, dir_okay=False),
              help="More CA public keys (JSON rows or capk.txt lines), checked against their checksums.")
@click.option("--date", "today", help="The transaction date YYMMDD (default: 9A from the session).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify(trace_file: Path, fmt: str, ca_keys: Path | None, today: str | None, as_json: bool) -> None:
    """Re-check a recorded session's offline data authentication and explain every step."""
    try:
        lines = trace_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {trace_file}: {exc}") from None
    try:
        records = read_trace(lines) if fmt == "jsonl" else parse(lines, fmt)
    except TraceError as exc:
        raise fail(f"{trace_file}: {exc}") from None
    try:
        table = CaKeyTable.builtin()
        if ca_keys is not None:
            table = table.load_file(ca_keys)
    except (ConfigError, OSError) as exc:
        raise fail(f"CA keys: {exc}") from None
    if today is not None and (len(today) != 6 or not today.isdigit()):
        raise click.BadParameter("--date is YYMMDD")
    check = verify_session(((c.raw, r.raw) for c, r in pairs(records)), table, today=today)
    if as_json:
        print_json(check.to_json())
    else:
        result = check.result
        style = {"passed": "bold green", "failed": "bold red"}.get(result.status, "bold yellow")
        head = f"{result.method or 'ODA'} {result.status}" + (f": {result.reason}" if result.reason else "")
        console.print(Text(head, style=style) + Text(f"  ({check.kernel} path)", style="dim"))
        steps = Table(show_edge=False, pad_edge=False)
        steps.add_column("")
        steps.add_column("step")
        steps.add_column("detail")
        for step in result.steps:
            mark = Text("✓", style="green") if step.ok else Text("✗", style="red")
            steps.add_row(mark, step.name, step.detail)
        if result.steps:
            console.print(steps)
        for note in check.notes:
            console.print(Text(f"note: {note}", style="dim"))
        for name in result.weak_keys:
            console.print(Text(f"warning: the {name} key has the ROCA fingerprint", style="yellow"))
    if not check.result.passed:
        raise SystemExit(1)
