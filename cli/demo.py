"""``hcekit demo``: the whole toolkit in a few seconds, with nothing configured and no network.

The demo starts the token service in this process -- SQLite in a temporary directory, the
in-process network simulators, served over real HTTP on a loopback port by a thread -- and then
walks both journeys of docs/architecture.md as a user and a merchant would:

1. register a user and this device (a fresh device wallet in the temporary directory);
2. provision a Visa test card (green: approved at once) and a Mastercard test card (yellow: the
   demo reads the one-time code from the development outbox and verifies it);
3. create a terminal API key;
4. tap each card -- the terminal kernel against the wallet's hce card, Visa (qVSDC) and
   Mastercard (M/Chip) -- and authorize it at the service over HTTP;
5. pay in an app with the default card;
6. suspend the Visa card and tap it again: declined.

It prints the outcomes, the key APDUs decoded, and each tap's timing against the 500 ms budget,
writes every APDU to a masked JSON Lines trace, and exits 0 only if every step had the expected
outcome. Everything it started is stopped and every temporary file removed before it returns.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from cli.common import console, print_json

__all__ = ["DemoStep", "demo", "run_demo"]

VISA_PAN = "4111111111111111"
"""A documented green test PAN (tsp_backend.services.risk): approved at once."""

MASTERCARD_PAN = "5105105105105100"
"""A documented yellow test PAN: the issuer asks for a one-time code."""

PASSWORD = "demo-password-1"  # noqa: S105 - the demo account lives in a temporary database


@dataclass
class DemoStep:
    """One step of the demo: what was expected, what happened, and whether they agree."""

    name: str
    expected: str
    actual: str = ""
    ok: bool = False
    ms: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "expected": self.expected,
            "actual": self.actual,
            "ok": self.ok,
            "ms": round(self.ms, 2),
            **self.details,
        }


@dataclass
class DemoRun:
    """Everything the demo did: its steps, the taps' results, and where the trace went."""

    steps: list[DemoStep] = field(default_factory=list)
    taps: list[tuple[str, Any, list[Any]]] = field(default_factory=list)
    trace: Path | None = None
    host: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every step had its expected outcome."""
        return bool(self.steps) and all(s.ok for s in self.steps)


def _tap(
    wallet: Any, card_id: int, amount: int, host: str, api_key: str, tracers: list[Any]
) -> tuple[Any, list[Any]]:
    """Tap the wallet's card ``card_id`` on the terminal kernel and authorize at ``host``."""
    from apdu.trace import TraceRecorder
    from terminal.config import Transaction
    from terminal.host import AuthorizationClient
    from terminal.tap import run_tap, today
    from terminal.transports.local import LocalTransport

    applet = wallet.applet(card_id)
    recorder = TraceRecorder()
    transport = LocalTransport(applet.process, name=f"wallet:card-{card_id}")
    with AuthorizationClient(host, api_key) as client:
        result = run_tap(
            transport,
            Transaction(amount=amount, currency="EUR", date=today()),
            host=client,
            tracers=[recorder, *tracers],
        )
    return result, list(recorder.records)


def run_demo(
    *,
    trace_path: Path,
    progress: Callable[[str], None] = lambda _: None,
    workdir: Path | None = None,
) -> DemoRun:
    """Run the demo's steps (module docstring); the caller renders the result."""
    from apdu.trace import JsonlWriter
    from hce.tspclient import TSPClient, in_app_payment, login_with_device, request_card, store_card
    from hce.wallet import Wallet
    from tsp_backend.testing import LoopbackTSP

    run = DemoRun(trace=trace_path)
    started = time.perf_counter()
    owned = workdir is None
    root = Path(tempfile.mkdtemp(prefix="hcekit-demo-")) if workdir is None else workdir

    def step(name: str, expected: str) -> DemoStep:
        progress(name)
        s = DemoStep(name, expected)
        run.steps.append(s)
        return s

    try:
        trace_path.parent.mkdir(parents=True, exist_ok=True)
        with (
            trace_path.open("w", encoding="utf-8") as trace_fp,
            LoopbackTSP(root / "tsp") as tsp,
            TSPClient(tsp.url) as client,
        ):
            run.host = tsp.url
            tracer = JsonlWriter(trace_fp, masked=True)
            wallet = Wallet.open(root / "wallet")

            s = step("register a user and this device", "logged in")
            t0 = time.perf_counter()
            client.post("/api/auth/register", {"email": "demo@example.com", "password": PASSWORD})
            login = login_with_device(client, wallet, "demo@example.com", PASSWORD, device_name="demo-phone")
            s.ms = (time.perf_counter() - t0) * 1000
            s.actual, s.ok = "logged in", wallet.session is not None and wallet.device_id is not None
            s.details = {"device": login["deviceId"]}

            s = step("provision a Visa card", "ACTIVE at once (green)")
            t0 = time.perf_counter()
            answer = request_card(client, wallet, VISA_PAN, "12/30", "123")
            visa = store_card(wallet, answer["card"], answer["profile"]) if answer.get("profile") else None
            s.ms = (time.perf_counter() - t0) * 1000
            s.actual = f"{answer['card']['status']} ({answer.get('decision')})"
            s.ok = visa is not None and answer["card"]["status"] == "ACTIVE"
            s.details = {"card": answer["card"]["id"], "token": f"····{answer['card']['tokenLast4']}"}

            s = step("provision a Mastercard card", "one-time code, then ACTIVE (yellow)")
            t0 = time.perf_counter()
            answer = request_card(client, wallet, MASTERCARD_PAN, "11/29", "321")
            mc = None
            asked = answer.get("profile") is None
            if asked:
                card_id = answer["card"]["id"]
                outbox = client.get("/api/dev/outbox")
                code = next(str(m["code"]) for m in outbox if m["cardId"] == card_id)
                answer = client.post(f"/api/cards/{card_id}/verify", {"code": code})
            if answer.get("profile"):
                mc = store_card(wallet, answer["card"], answer["profile"])
            s.ms = (time.perf_counter() - t0) * 1000
            s.actual = ("code verified, " if asked else "no code asked, ") + answer["card"]["status"]
            s.ok = asked and mc is not None and answer["card"]["status"] == "ACTIVE"
            s.details = {"card": answer["card"]["id"], "token": f"····{answer['card']['tokenLast4']}"}

            s = step("create a terminal key", "an API key")
            terminal = client.post("/api/terminals", {"name": "demo terminal"})
            api_key = str(terminal["apiKey"])
            s.actual, s.ok = f"key {terminal['prefix']}…", api_key.startswith("hk_") or bool(api_key)

            for label, card, amount in (("Visa", visa, 1250), ("Mastercard", mc, 2340)):
                s = step(f"tap the {label} card ({'qVSDC' if label == 'Visa' else 'M/Chip'})", "approved")
                if card is None:
                    s.actual = "no card"
                    continue
                result, records = _tap(wallet, card.id, amount, tsp.url, api_key, [tracer])
                run.taps.append((f"{label} tap", result, records))
                s.ms = result.timing.total_ms
                s.actual = result.outcome.outcome.value
                s.ok = s.actual == "approved"
                s.details = {"card": card.id, "kernel": result.outcome.kernel, "amount": amount}

            s = step("pay in an app with the default card", "approved")
            t0 = time.perf_counter()
            paid = in_app_payment(client, wallet, amount=1999, currency="EUR")
            s.ms = (time.perf_counter() - t0) * 1000
            s.actual = "approved" if paid.get("approved") else f"declined {paid.get('responseCode')}"
            s.ok = bool(paid.get("approved"))
            s.details = {"card": paid.get("cardId"), "amount": 1999}

            s = step("suspend the Visa card and tap it", "declined")
            if visa is not None:
                suspended = client.post(f"/api/cards/{visa.id}/suspend", {"reason": "CUSTOMER_REQUEST"})
                wallet.set_status(visa.id, suspended["status"])
                result, records = _tap(wallet, visa.id, 500, tsp.url, api_key, [tracer])
                run.taps.append(("suspended Visa tap", result, records))
                s.ms = result.timing.total_ms
                host = result.outcome.host
                code = f" ({host.response_code})" if host and host.response_code else ""
                s.actual = result.outcome.outcome.value + code
                s.ok = result.outcome.outcome.value == "declined"
                s.details = {"card": visa.id, "status": suspended["status"]}
            else:
                s.actual = "no card"
    finally:
        if owned:
            shutil.rmtree(root, ignore_errors=True)
        run.seconds = time.perf_counter() - started
    return run


# ---------------------------------------------------------------------------- rendering


def _key_apdus(records: list[Any], kernel: str | None) -> Any:
    """The exchange that carried the cryptogram, decoded and masked: GPO (qVSDC) or GENERATE AC (M/Chip)."""
    from cli.render import decode_trace, trace_renderable

    entries = decode_trace(records, kernel=kernel, masked=True)
    wanted = 0xAE if kernel == "mastercard" else 0xA8
    keep: list[Any] = []
    for i in range(0, len(records) - 1, 2):
        raw = records[i].raw
        if len(raw) >= 2 and raw[1] == wanted:
            keep.extend(entries[i : i + 2])
    return trace_renderable(keep)


def _steps_table(run: DemoRun) -> Table:
    table = Table(title="outcomes", title_justify="left", show_edge=False, pad_edge=False)
    for column in ("", "step", "expected", "happened", "ms"):
        table.add_column(column, justify="right" if column == "ms" else "left")
    for s in run.steps:
        mark = Text("✔", style="bold green") if s.ok else Text("✘", style="bold red")
        table.add_row(mark, s.name, s.expected, s.actual, f"{s.ms:.1f}" if s.ms else "")
    return table


@click.command()
@click.option(
    "--trace",
    "trace_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where to write the masked JSON Lines trace (default: hcekit-demo-trace.jsonl in the temp dir).",
)
@click.option(
    "--apdus/--no-apdus",
    default=True,
    show_default=True,
    help="Show the APDU that carried each kernel's cryptogram, decoded.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the steps and timings as JSON.")
def demo(trace_file: Path | None, apdus: bool, as_json: bool) -> None:
    """Run the whole toolkit in process: token service, wallet, both kernels, in-app, lifecycle."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from cli.tap import budget_line, summary, waterfall

    trace_path = trace_file or Path(tempfile.gettempdir()) / "hcekit-demo-trace.jsonl"
    if as_json:
        run = run_demo(trace_path=trace_path)
    else:
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True
        ) as bar:
            task = bar.add_task("starting the token service", total=None)
            run = run_demo(trace_path=trace_path, progress=lambda name: bar.update(task, description=name))
    if as_json:
        print_json(
            {
                "ok": run.ok,
                "seconds": round(run.seconds, 3),
                "trace": str(run.trace),
                "steps": [s.to_json() for s in run.steps],
                "taps": [{"name": name, **result.to_json(masked=True)} for name, result, _ in run.taps],
            }
        )
    else:
        console.print(
            Text(f"token service on {run.host} (in process, SQLite in a temporary directory)", style="dim")
        )
        console.print()
        shown: set[str | None] = set()
        for name, result, records in run.taps:
            console.rule(Text(name, style="bold"))
            console.print(summary(result, masked=True))
            if apdus and result.outcome.kernel not in shown:
                shown.add(result.outcome.kernel)
                console.print()
                console.print(_key_apdus(records, result.outcome.kernel), soft_wrap=False)
            console.print()
            console.print(waterfall(result))
            console.print(budget_line(result))
            console.print()
        console.rule(Text("summary", style="bold"))
        console.print(_steps_table(run))
        console.print()
        verdict = "every outcome as expected" if run.ok else "some outcomes were not as expected"
        console.print(Text(f"{verdict} in {run.seconds:.2f} s", style="bold green" if run.ok else "bold red"))
        console.print(f"trace (masked JSON Lines): {run.trace}")
    if not run.ok:
        raise click.exceptions.Exit(1)
