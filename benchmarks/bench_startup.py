"""Start-up CPU of the command line: ``hcekit tlv decode`` against a pyemv one-liner, ``--help``.

Run: ``python benchmarks/bench_startup.py [--rounds N] [--no-demo] [--json]``.

Each command runs in a fresh interpreter with standard output piped (as a script would use it);
its CPU time (user + system, from ``wait4``) is what is measured, not the wall clock. Rounds are
paired: ``hcekit tlv decode HEX`` and the equivalent one-liner
``python -c "from pyemv import tlv; print(tlv.decode(bytes.fromhex(HEX)))"`` run back to back,
in an order that alternates, and the figure is the median of the per-round CPU ratios with its
5th and 95th percentiles. Bytecode is written on a first, unmeasured run of every command
(``PYTHONDONTWRITEBYTECODE`` is removed from the children's environment): pyemv is installed
with its ``.pyc`` files, so hcekit is measured the same way.

Targets: ``hcekit tlv decode`` ≤ 1.5× the one-liner's CPU, ``hcekit --help`` ≤ 0.1 s of
CPU, and ``hcekit demo`` importing nothing it does not use (the list of top-level packages it
imports is printed, with any of the forbidden ones).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from terminal.timing import percentile  # noqa: E402

HEX = "9F0206000000001250"
#: Packages ``hcekit demo`` must not import: hardware stacks, plotting, the peer library, servers.
DEMO_NEVER = ("matplotlib", "nfc", "smartcard", "pyemv", "playwright", "gunicorn", "psycopg", "pgserver")

_DUMP = (
    "import os, sys\n"
    "from cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "open(os.environ['HCEKIT_MODULES'], 'w').write('\\n'.join(sorted(sys.modules)))\n"
    "raise SystemExit(code)\n"
)


def environment() -> dict[str, str]:
    """The children's environment: bytecode allowed, the project importable, no colour forced."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "FORCE_COLOR")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return env


def hcekit() -> list[str]:
    """The installed ``hcekit`` script beside this interpreter, else ``python -m cli.main``."""
    script = Path(sys.executable).with_name("hcekit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli.main"]


def cpu_ms(args: list[str], env: dict[str, str]) -> float:
    """CPU milliseconds of one run, reaped here with ``wait4`` so its own usage is read."""
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL, env=env, cwd=tempfile.gettempdir())
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{' '.join(args)} exited with {child.returncode}")
    return (usage.ru_utime + usage.ru_stime) * 1000


def modules_of(args: list[str], env: dict[str, str]) -> tuple[set[str], str]:
    """The modules ``hcekit ARGS`` imported, and its output."""
    with tempfile.TemporaryDirectory(prefix="hcekit-bench-startup-") as directory:
        listing = Path(directory) / "modules.txt"
        done = subprocess.run(
            [sys.executable, "-c", _DUMP, *args], env={**env, "HCEKIT_MODULES": str(listing)}, cwd=directory,
            capture_output=True, text=True, check=False, timeout=300, stdin=subprocess.DEVNULL,
        )
        if done.returncode:
            raise SystemExit(f"hcekit {' '.join(args)} failed: {done.stderr[-300:]}")
        return set(listing.read_text().split()), done.stdout


def main(argv: list[str] | None = None) -> int:
    """Measure and print (or print JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="paired rounds (default 30)")
    parser.add_argument("--no-demo", action="store_true", help="do not run the demo for its import list")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    env = environment()
    commands = {
        "hcekit tlv decode": [*hcekit(), "tlv", "decode", HEX],
        "pyemv one-liner": [
            sys.executable, "-c", f"from pyemv import tlv; print(tlv.decode(bytes.fromhex('{HEX}')))"
        ],
        "hcekit --help": [*hcekit(), "--help"],
        "hcekit demo --help": [*hcekit(), "demo", "--help"],
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    for command in commands.values():  # writes the bytecode; not measured
        cpu_ms(command, env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    names = list(commands)
    for index in range(args.rounds):
        for name in names if index % 2 == 0 else reversed(names):
            times[name].append(cpu_ms(commands[name], env))
    ratios = [o / p for o, p in zip(times["hcekit tlv decode"], times["pyemv one-liner"], strict=True)]
    result: dict[str, Any] = {
        "rounds": args.rounds,
        "cpu_ms": {name: round(percentile(values, 50), 1) for name, values in times.items()},
        "tlv_decode_ratio": round(percentile(ratios, 50), 3),
        "tlv_decode_ratio_p5": round(percentile(ratios, 5), 3),
        "tlv_decode_ratio_p95": round(percentile(ratios, 95), 3),
    }
    tlv_modules, _ = modules_of(["tlv", "decode", HEX], env)
    result["tlv_decode_imports_rich"] = "rich" in {m.split(".")[0] for m in tlv_modules}
    if not args.no_demo:
        with tempfile.TemporaryDirectory(prefix="hcekit-bench-demo-") as directory:
            demo = ["demo", "--no-apdus", "--json", "--trace", f"{directory}/t.jsonl"]
            modules, out = modules_of(demo, env)
        top = sorted({m.split(".")[0] for m in modules if not m.startswith("_")})
        result["demo_packages"] = len(top)
        result["demo_forbidden"] = sorted(set(top) & set(DEMO_NEVER))
        result["demo_ok"] = '"failed"' not in out
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"start-up CPU (user + system), median of {args.rounds} paired rounds, output piped:")
    for name, value in result["cpu_ms"].items():
        print(f"  {name:<22}{value:>8.1f} ms")
    print(f"hcekit tlv decode / pyemv one-liner: {result['tlv_decode_ratio']:.2f}x "
          f"[p5 {result['tlv_decode_ratio_p5']:.2f}, p95 {result['tlv_decode_ratio_p95']:.2f}] "
          "(target ≤ 1.5x)")
    print(f"hcekit --help: {result['cpu_ms']['hcekit --help']:.1f} ms CPU (target ≤ 100 ms)")
    if "demo_packages" in result:
        print(f"hcekit demo imported {result['demo_packages']} top-level packages; forbidden among them: "
              f"{result['demo_forbidden'] or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
