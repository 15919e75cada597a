"""The human waterfall of ``hcekit tap`` keeps card time and transport time apart."""

from __future__ import annotations

from rich.console import Console

from cli.tap import waterfall
from terminal.outcome import KernelOutcome, Outcome
from terminal.tap import TapResult
from terminal.timing import ApduTiming, TapTiming, phases_of


def _render(card_ms: float | None) -> list[list[str]]:
    apdus = (
        ApduTiming("select_ppse", "SELECT", bytes(5), b"\x90\x00", 0.0, 40.0, card_ms),
        ApduTiming("gpo", "GET PROCESSING OPTIONS", bytes(5), b"\x90\x00", 41.0, 12.0,
                   None if card_ms is None else 5.0),
    )
    timing = TapTiming(apdus, phases_of(apdus, 60.0), 60.0)
    result = TapResult(KernelOutcome(Outcome.ONLINE_REQUEST, "test"), timing)
    console = Console(width=200, record=True, color_system=None)
    console.print(waterfall(result))
    rows = [line.replace("┃", "│").split("│") for line in console.export_text().splitlines()
            if "│" in line or "┃" in line]
    return [[cell.strip() for cell in row] for row in rows]


def test_pcsc_round_trips_are_not_card_time() -> None:
    """A reader that cannot split (PC/SC): round trip shown, card and transport '—', also in the total."""
    rows = _render(None)
    header = rows[0]
    assert header[:6] == ["phase", "SW", "start ms", "round trip ms", "card ms", "transport ms"]
    select = next(r for r in rows if r[0].startswith("SELECT PPSE"))
    assert select[3] == "40.00" and select[4] == "—" and select[5] == "—"
    total = next(r for r in rows if r[0] == "total")
    assert total[3] == "52.00" and total[4] == "—" and total[5] == "—"


def test_split_transports_show_card_and_transport() -> None:
    """A transport that times the card (in process, vpcd) shows both parts."""
    rows = _render(30.0)
    select = next(r for r in rows if r[0].startswith("SELECT PPSE"))
    assert (select[3], select[4], select[5]) == ("40.00", "30.00", "10.00")
    total = next(r for r in rows if r[0] == "total")
    assert (total[4], total[5]) == ("35.00", "17.00")
