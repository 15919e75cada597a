"""Run the whole benchmark suite and print one table.

Each benchmark is its own script (``bench_tlv.py``, ``bench_cryptogram.py``, ``bench_card.py``,
``bench_tap.py``, ``bench_tsp.py``, and ``bench_authorize.py`` and ``bench_scaleout.py`` when present);
this runs each in a
fresh interpreter, reads the figures it prints, and puts them side by side: the ratios against
the peer library (TLV decoding and cryptograms against pyemv), the card's and a whole tap's
latency against the 500 ms budget, and the token service's throughput. A benchmark that cannot
run here (a missing peer or server package) is listed with the reason instead of a figure.

Usage::

    python benchmarks/run_all.py            # full runs (a few minutes)
    python benchmarks/run_all.py --quick    # small runs (well under a minute)
    python benchmarks/run_all.py --json     # the table as JSON
    python benchmarks/run_all.py --skip tsp # leave benchmarks out by name
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@dataclass
class Row:
    """One line of the table."""

    benchmark: str
    measure: str
    hcekit: str = ""
    peer: str = ""
    ratio: str = ""
    note: str = ""


@dataclass
class Bench:
    """A benchmark script, its arguments (full and quick), and how to read its output."""

    name: str
    script: str
    full: list[str]
    quick: list[str]
    parse: Callable[[str], list[Row]]
    timeout: float = 900.0
    rows: list[Row] = field(default_factory=list)


def _tlv(out: str) -> list[Row]:
    doc = json.loads(out)
    ours, peer = doc["decoders"]["apdu.tlv"], doc["decoders"]["pyemv.tlv"]
    return [
        Row(
            "tlv",
            "BER-TLV decode, ops/s",
            f"{ours['ops_per_s']:,.0f}",
            f"{peer['ops_per_s']:,.0f}",
            f"{doc['ratio']:.2f}x",
            f"pyemv.tlv; {doc['responses']} real card responses",
        ),
        Row("tlv", "BER-TLV decode, p99 µs", f"{ours['p99_us']:.2f}", f"{peer['p99_us']:.2f}"),
    ]


def _cryptogram(out: str) -> list[Row]:
    rows = []
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for line in out.splitlines():
        m = re.match(r"(\w+)\s+(hcekit|pyemv)\s+(\d+)\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            found[(m.group(1), m.group(2))] = (m.group(3), m.group(5))
        r = re.match(r"(\w+)\s+ratio\s+([\d.]+)x", line)
        if r:
            cvn = r.group(1)
            ours, peer = found.get((cvn, "hcekit"), ("", "")), found.get((cvn, "pyemv"), ("", ""))
            rows.append(
                Row(
                    "cryptogram",
                    f"ARQC generate+verify {cvn}, ops/s",
                    f"{int(ours[0]):,}" if ours[0] else "",
                    f"{int(peer[0]):,}" if peer[0] else "",
                    f"{float(r.group(2)):.2f}x",
                    "pyemv",
                )
            )
    return rows


def _card(out: str) -> list[Row]:
    rows = []
    for m in re.finditer(r"(\w+)\s+taps=(\d+) card time per tap: p50=([\d.]+) ms p99=([\d.]+) ms", out):
        rows.append(
            Row(
                "card",
                f"{m.group(1)} card time per tap, p50 / p99 ms",
                f"{float(m.group(3)):.3f} / {float(m.group(4)):.3f}",
                note=f"{m.group(2)} taps, applet alone",
            )
        )
    return rows


def _tap(out: str) -> list[Row]:
    rows = []
    for line in out.splitlines():
        m = re.match(r"(\w+)\s+(in process|with host|with tsp)\s+(.*)", line)
        if not m:
            continue
        values = dict(re.findall(r"(\w+)\s+([\d.]+)", m.group(3)))
        p50, p99 = float(values.get("p50_ms", "nan")), float(values.get("p99_ms", "nan"))
        where = {
            "in process": "in process",
            "with host": "+ authorization (given host)",
            "with tsp": "+ authorization by the TSP (loopback HTTP, embedded default)",
        }[m.group(2)]
        rows.append(
            Row(
                "tap",
                f"{m.group(1)} tap {where}, p50 / p99 ms",
                f"{p50:.3f} / {p99:.3f}",
                note=f"{500 - p99:.1f} ms of the 500 ms budget left at p99",
            )
        )
    return rows


def _tsp(out: str) -> list[Row]:
    rows = []
    for line in out.splitlines():
        m = re.match(r"(provision|list_cards|authorize\w*)\s+(\{.*\})", line)
        if m:
            doc = json.loads(m.group(2))
            rows.append(
                Row(
                    "tsp",
                    f"{m.group(1)}, requests/s (p50 / p99 ms)",
                    f"{doc['rps']:,.0f} ({doc['p50_ms']} / {doc['p99_ms']})",
                    note=f"{doc['requests']} requests, {doc['failures']} failures",
                )
            )
    header = next((line for line in out.splitlines() if line.startswith("gunicorn")), "")
    if rows and header:
        rows[0].note += f"; {header}"
    return rows


def _scaleout(out: str) -> list[Row]:
    rows = []
    where = {
        "direct": "1 instance direct",
        "lb_1": "HAProxy + 1 instance",
        "lb_2": "HAProxy + 2 instances",
    }
    for m in re.finditer(r"^scaleout_(\w+)\s+(\{.*\})$", out, re.MULTILINE):
        doc = json.loads(m.group(2))
        rows.append(
            Row(
                "scaleout",
                f"{where.get(m.group(1), m.group(1))}, auth/s (p50 / p99 ms)",
                f"{doc['rps']:,.0f} ({doc['p50_ms']} / {doc['p99_ms']})",
                ratio=f"{doc['ratio_rps']:.2f}x" if m.group(1) != "direct" else "",
                note=f"{doc['requests']} requests, {doc['failures']} failures; ratio: paired, vs direct",
            )
        )
    checks = re.findall(r"\[(ok|FAILED)\]", out)
    if rows and checks:
        rows[-1].note += f"; checks {checks.count('ok')}/{len(checks)} ok"
    return rows


def _authorize(out: str) -> list[Row]:
    rows = _tsp(out)
    if rows:
        return rows
    last = [line for line in out.splitlines() if line.strip()][-1:] or ["(no output)"]
    return [Row("authorize", "authorization", note=last[0][:100])]


BENCHES: tuple[Bench, ...] = (
    Bench("tlv", "bench_tlv.py", ["--json"], ["--json", "--rounds", "200", "--repeat", "2"], _tlv),
    Bench("cryptogram", "bench_cryptogram.py", [], ["--seconds", "0.2", "--rounds", "2"], _cryptogram),
    Bench("card", "bench_card.py", [], ["--taps", "500"], _card),
    Bench("tap", "bench_tap.py", ["--tsp"], ["--taps", "400", "--tsp"], _tap),
    Bench(
        "tsp",
        "bench_tsp.py",
        [],
        ["--workers", "2", "--clients", "4", "--provisions", "40", "--listings", "200"],
        _tsp,
    ),
    Bench("authorize", "bench_authorize.py", [], ["--quick"], _authorize),
    Bench("scaleout", "bench_scaleout.py", [], ["--quick"], _scaleout),
)


def run(bench: Bench, *, quick: bool) -> tuple[list[Row], float]:
    """Run one benchmark script; its rows (or one row saying why it did not run) and its seconds."""
    script = HERE / bench.script
    if not script.exists():
        return [Row(bench.name, "—", note=f"{bench.script} is not in this checkout")], 0.0
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    args = [sys.executable, str(script), *(bench.quick if quick else bench.full)]
    started = time.perf_counter()
    try:
        done = subprocess.run(
            args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=bench.timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return [
            Row(bench.name, "—", note=f"timed out after {bench.timeout:.0f} s")
        ], time.perf_counter() - started
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {done.returncode}"
        return [Row(bench.name, "—", note=f"did not run: {reason[:120]}")], seconds
    try:
        rows = bench.parse(done.stdout)
    except (ValueError, KeyError, IndexError) as exc:
        return [Row(bench.name, "—", note=f"output not understood ({type(exc).__name__})")], seconds
    return rows or [Row(bench.name, "—", note="no figures in its output")], seconds


def render(rows: list[Row]) -> str:
    """The rows as one plain-text table."""
    headers = ("benchmark", "measure", "hcekit", "peer", "ratio", "note")
    cells = [headers] + [(r.benchmark, r.measure, r.hcekit, r.peer, r.ratio, r.note) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(headers))]
    lines = []
    for index, c in enumerate(cells):
        lines.append(
            "  ".join(
                v.ljust(w) if i in (0, 1, 5) else v.rjust(w)
                for i, (v, w) in enumerate(zip(c, widths, strict=True))
            )
        )
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    """Run the suite; print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small runs: the whole suite in well under a minute"
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=[b.name for b in BENCHES], help="benchmarks to leave out"
    )
    args = parser.parse_args(argv)
    rows: list[Row] = []
    timings: dict[str, float] = {}
    for bench in BENCHES:
        if bench.name in args.skip:
            continue
        print(f"running {bench.script} …", file=sys.stderr, flush=True)
        found, seconds = run(bench, quick=args.quick)
        rows.extend(found)
        timings[bench.name] = round(seconds, 2)
    if args.json:
        doc: dict[str, Any] = {"quick": args.quick, "seconds": timings, "rows": [r.__dict__ for r in rows]}
        print(json.dumps(doc, indent=2))
    else:
        print(render(rows))
        print(
            f"\n{'quick' if args.quick else 'full'} run; seconds per benchmark: "
            + ", ".join(f"{k} {v}" for k, v in timings.items())
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
