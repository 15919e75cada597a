"""``hcekit bench``: tap N times and report every phase's latency against the 500 ms budget.

The card is the hce applet in this process (``--reader sim``: the wallet's default card with
``--wallet``, else the built-in test card of ``--kernel``), or whatever answers on a real reader
(``--reader pcsc[:NAME]``, ``nfc:…``). With ``--host`` every online request is authorized by a
running token service over HTTP (``--api-key``, a terminal key); a card the service does not
know is declined, and the authorization round trip is timed all the same.

Percentiles are nearest-rank over the measured taps (a few warm-up taps are run first and
not counted). ``--plot FILE.png`` draws the distribution of the total and the per-phase
breakdown with matplotlib (``pip install 'hcekit[plot]'``).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from cli.common import console, fail, print_json
from terminal.timing import percentile

__all__ = ["BenchResult", "bench", "percentile", "run_bench", "summarise"]

#: Phases reported, in tap order, then the totals.
ROWS: tuple[tuple[str, str], ...] = (
    ("select_ppse", "SELECT PPSE"),
    ("select_aid", "SELECT AID"),
    ("gpo", "GET PROCESSING OPTIONS"),
    ("read_record", "READ RECORD"),
    ("generate_ac", "GENERATE AC"),
    ("terminal", "terminal processing"),
    ("card", "card (all APDUs)"),
    ("tap", "tap (before authorization)"),
    ("authorization", "authorization"),
    ("total", "total"),
)


def summarise(values: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99, max and mean of ``values`` (ms)."""
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else math.nan,
        "mean": sum(values) / len(values) if values else math.nan,
    }


class BenchResult:
    """The per-tap samples of each phase, and the outcomes seen."""

    def __init__(self, reader: str, host: str | None, budget_ms: float = 500.0) -> None:
        self.reader = reader
        self.host = host
        self.budget_ms = budget_ms
        self.samples: dict[str, list[float]] = {name: [] for name, _ in ROWS}
        self.outcomes: dict[str, int] = {}

    def add(self, result: Any) -> None:
        """Record one :class:`~terminal.tap.TapResult`."""
        timing = result.timing
        per_phase: dict[str, float] = {}
        for a in timing.apdus:
            per_phase[a.phase] = per_phase.get(a.phase, 0.0) + a.round_trip_ms
        for name in ("select_ppse", "select_aid", "gpo", "read_record", "generate_ac"):
            if name in per_phase:
                self.samples[name].append(per_phase[name])
        self.samples["terminal"].append(timing.terminal_ms)
        if timing.card_ms is not None:
            self.samples["card"].append(timing.card_ms)
        self.samples["tap"].append(timing.tap_ms)
        if timing.authorization_ms is not None:
            self.samples["authorization"].append(timing.authorization_ms)
        self.samples["total"].append(timing.total_ms)
        outcome = result.outcome.outcome.value
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    @property
    def taps(self) -> int:
        """How many taps were measured."""
        return len(self.samples["total"])

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: per phase p50/p95/p99/max/mean in ms, outcomes, budget."""
        totals = self.samples["total"]
        within = sum(1 for t in totals if t <= self.budget_ms)
        return {
            "taps": self.taps,
            "reader": self.reader,
            "host": self.host,
            "budget_ms": self.budget_ms,
            "within_budget": within / len(totals) if totals else None,
            "outcomes": dict(self.outcomes),
            "phases": {
                name: {k: round(v, 4) for k, v in summarise(values).items()}
                for name, values in self.samples.items()
                if values
            },
        }


def run_bench(
    transport_factory: Callable[[], Any],
    *,
    taps: int,
    warmup: int = 3,
    kernel: str | None = None,
    amount: int = 1250,
    host: Any = None,
    reader: str = "sim",
    host_url: str | None = None,
    on_tap: Callable[[int], None] = lambda _: None,
) -> BenchResult:
    """Tap ``warmup + taps`` times; ``transport_factory`` gives the transport for each tap."""
    from terminal.config import TerminalConfig, Transaction
    from terminal.tap import run_tap, today

    config = TerminalConfig(kernel=kernel)
    result = BenchResult(reader, host_url)
    transaction = Transaction(amount=amount, currency="EUR", date=today())
    for index in range(warmup + taps):
        tapped = run_tap(transport_factory(), transaction, config=config, host=host)
        if index >= warmup:
            result.add(tapped)
            on_tap(index - warmup + 1)
    return result


def _table(result: BenchResult) -> Table:
    table = Table(
        title=f"{result.taps} taps · reader {result.reader}"
        + (f" · host {result.host}" if result.host else ""),
        title_justify="left",
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("phase")
    for column in ("p50 ms", "p95 ms", "p99 ms", "max ms", "% of budget (p99)"):
        table.add_column(column, justify="right")
    for name, label in ROWS:
        values = result.samples[name]
        if not values:
            continue
        s = summarise(values)
        share = 100 * s["p99"] / result.budget_ms
        style = "bold" if name == "total" else ""
        table.add_row(
            Text(label, style=style),
            f"{s['p50']:.3f}",
            f"{s['p95']:.3f}",
            f"{s['p99']:.3f}",
            f"{s['max']:.3f}",
            Text(f"{share:.1f}%", style="red" if share > 100 else ""),
            end_section=name in ("terminal", "card"),
        )
    return table


def plot(result: BenchResult, path: Path) -> None:
    """Draw the distribution of the total and the per-phase p50/p99 into ``path`` (PNG)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise fail("--plot needs matplotlib: pip install 'hcekit[plot]'") from None
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    totals = result.samples["total"]
    left.hist(totals, bins=min(50, max(10, len(totals) // 10)), color="#3b7dd8")
    for q, style in ((50, "-"), (99, "--")):
        left.axvline(percentile(totals, q), color="black", linestyle=style, label=f"p{q}")
    left.set_xlabel("total ms per tap")
    left.set_ylabel("taps")
    left.set_title(f"tap latency ({result.taps} taps; budget {result.budget_ms:.0f} ms)")
    left.legend()
    names = [(n, label) for n, label in ROWS if result.samples[n] and n not in ("card", "tap", "total")]
    labels = [label for _, label in names]
    p50 = [percentile(result.samples[n], 50) for n, _ in names]
    p99 = [percentile(result.samples[n], 99) for n, _ in names]
    positions = range(len(names))
    right.barh([p - 0.2 for p in positions], p50, height=0.4, label="p50")
    right.barh([p + 0.2 for p in positions], p99, height=0.4, label="p99")
    right.set_yticks(list(positions), labels)
    right.invert_yaxis()
    right.set_xlabel("ms")
    right.set_title("per phase")
    right.legend()
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise fail(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)


@click.command()
@click.option(
    "--taps", type=click.IntRange(1, 1_000_000), default=200, show_default=True, help="Taps measured."
)
@click.option(
    "--warmup",
    type=click.IntRange(0, 1000),
    default=3,
    show_default=True,
    help="Taps run first, not counted.",
)
@click.option("--reader", default="sim", show_default=True, help="sim | pcsc[:NAME|INDEX] | nfc:…")
@click.option(
    "--kernel",
    type=click.Choice(["visa", "mastercard"]),
    default=None,
    help="The built-in test card of this kernel (--reader sim), or force this kernel's path.",
)
@click.option(
    "--wallet",
    "wallet_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="--reader sim: tap this wallet's default card (durable counters) instead of a test card.",
)
@click.option("--host", "host_url", default=None, help="Authorize every tap at this token service over HTTP.")
@click.option(
    "--api-key", envvar="HCEKIT_TERMINAL_KEY", default=None, help="The terminal's API key for --host."
)
@click.option("--amount", default="12.50", show_default=True, help="Amount in EUR major units.")
@click.option(
    "--wait", type=float, default=10.0, show_default=True, help="Seconds to wait for a card on a reader."
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Draw the latency distribution and the per-phase breakdown (PNG; needs matplotlib).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
def bench(
    taps: int,
    warmup: int,
    reader: str,
    kernel: str | None,
    wallet_dir: Path | None,
    host_url: str | None,
    api_key: str | None,
    amount: str,
    wait: float,
    plot_path: Path | None,
    as_json: bool,
) -> None:
    """Tap N times and print p50/p95/p99/max of every phase against the 500 ms budget."""
    from terminal.config import parse_amount
    from terminal.errors import TerminalError
    from terminal.transports import open_transport, parse_reader
    from terminal.transports.local import LocalTransport

    if host_url and not api_key:
        raise click.UsageError("--host needs --api-key (or HCEKIT_TERMINAL_KEY)")
    if plot_path is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise fail("--plot needs matplotlib: pip install 'hcekit[plot]'") from None
    try:
        minor = parse_amount(amount, "EUR")
        kind, _ = parse_reader(reader)
    except TerminalError as exc:
        raise click.BadParameter(str(exc)) from None
    with contextlib.ExitStack() as stack:
        if kind == "sim":
            applets: list[Any] = []

            def fresh_applet() -> Any:
                from hce.applet import CardApplet
                from hce.keys import MemoryCounterStore
                from hce.testcard import builtin_profile

                if wallet_dir is not None:
                    from cli.wallet import open_wallet

                    return open_wallet(wallet_dir, create=False).applet()
                profile = builtin_profile(kernel or "visa", now=int(time.time()))
                atc = applets[-1].counters.last_atc if applets else 0
                return CardApplet(profile, counters=MemoryCounterStore(atc=atc), clock=time.time)

            def transport() -> Any:
                if not applets or (wallet_dir is None and applets[-1].needs_replenishment):
                    applets.append(fresh_applet())
                return LocalTransport(applets[-1].process, name="sim")

            factory: Callable[[], Any] = transport
        else:
            try:
                opened = stack.enter_context(open_transport(reader, wait=wait))
            except TerminalError as exc:
                raise fail(str(exc)) from None
            factory = lambda: opened  # noqa: E731
        client = None
        if host_url and api_key:
            from terminal.host import AuthorizationClient

            client = stack.enter_context(AuthorizationClient(host_url, api_key))
        def bench_taps(on_tap: Callable[[int], None] = lambda _: None) -> BenchResult:
            return run_bench(
                factory,
                taps=taps,
                warmup=warmup,
                kernel=kernel,
                amount=minor,
                host=client,
                reader=reader,
                host_url=host_url,
                on_tap=on_tap,
            )

        try:
            if as_json:
                result = bench_taps()
            else:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

                with Progress(
                    TextColumn("tapping"), BarColumn(), MofNCompleteColumn(), console=console, transient=True
                ) as progress:
                    task = progress.add_task("taps", total=taps)
                    result = bench_taps(lambda n: progress.update(task, completed=n))
        except TerminalError as exc:
            raise fail(str(exc)) from None
    if plot_path is not None:
        plot(result, plot_path)
    if as_json:
        doc = result.to_json()
        if plot_path is not None:
            doc["plot"] = str(plot_path)
        print_json(doc)
        return
    console.print(_table(result))
    doc = result.to_json()
    within = doc["within_budget"]
    total = summarise(result.samples["total"])
    left = result.budget_ms - total["p99"]
    console.print(
        Text(
            f"p99 total {total['p99']:.2f} ms of the {result.budget_ms:.0f} ms budget ({left:.2f} ms left); "
            f"{100 * within:.1f}% of taps within budget",
            style="bold green" if left >= 0 else "bold red",
        )
    )
    console.print(
        Text("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(result.outcomes.items())), style="dim")
    )
    if plot_path is not None:
        console.print(f"plot: {plot_path}")
