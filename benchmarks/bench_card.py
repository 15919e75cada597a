"""Card-side time per full tap, in process: the applet alone, no transport.

A Visa (qVSDC) tap is SELECT PPSE, SELECT AID, GPO (the ARQC is made here) and READ RECORD;
a Mastercard (M/Chip) tap is SELECT PPSE, SELECT AID, GPO, two READ RECORDs and GENERATE AC.
Each kernel is measured twice: with counters in memory (``MemoryCounterStore``: the applet's own
time) and with durable counters (``FileCounterStore``, what ``hcekit emulate`` uses: the counter
file is rewritten atomically and fsync'ed on every ATC reservation, so a tap pays the disk's
time). Target: Visa tap under 1 ms at the median on CPython, in memory.

Run: ``python benchmarks/bench_card.py [--taps N] [--file-taps N]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace

from apdu.command import PPSE, GenerateAC, GetProcessingOptions, ReadRecord, Select
from hce.applet import CardApplet
from hce.keys import CounterStore, FileCounterStore, MemoryCounterStore
from hce.testcard import builtin_profile
from terminal.timing import percentile

VISA_PDOL = bytes.fromhex("36000000000000001250000000000000025000000000000978250101" "00CAFEBABE")
CDOL1 = bytes.fromhex(
    "000000001250000000000000025000000000000978250101" "00CAFEBABE2200000000000000000000" "1F0302")


def taps(kernel: str) -> list[bytes]:
    """The command APDUs of one tap."""
    aid = bytes.fromhex("A0000000031010" if kernel == "visa" else "A0000000041010")
    if kernel == "visa":
        return [Select(PPSE).to_bytes(), Select(aid).to_bytes(), GetProcessingOptions(VISA_PDOL).to_bytes(),
                ReadRecord(1, 1).to_bytes()]
    return [Select(PPSE).to_bytes(), Select(aid).to_bytes(), GetProcessingOptions().to_bytes(),
            ReadRecord(1, 1).to_bytes(), ReadRecord(1, 2).to_bytes(), GenerateAC("ARQC", CDOL1).to_bytes()]


def measure(kernel: str, n: int, counters: str = "memory", directory: str = "") -> list[float]:
    """Card time in milliseconds of ``n`` taps (each checked to end in 9000)."""
    now = int(time.time())
    profile = builtin_profile(kernel, now=now)
    profile = replace(profile, luks=tuple(replace(k, max_uses=10**9) for k in profile.luks))
    store: CounterStore = (
        MemoryCounterStore()
        if counters == "memory"
        else FileCounterStore(f"{directory}/{kernel}-counters.json", initial_atc=profile.atc)
    )
    card = CardApplet(profile, counters=store, clock=lambda: now)
    commands = taps(kernel)
    out = []
    for _ in range(n):
        card.reset()
        began = time.perf_counter()
        responses = [card.process(c) for c in commands]
        out.append((time.perf_counter() - began) * 1000)
        if any(r[-2:] != b"\x90\x00" for r in responses):
            raise SystemExit(f"{kernel}: a command failed: {[r[-2:].hex() for r in responses]}")
    return out


def main() -> None:
    """Print p50/p99 card time per tap for both kernels, with counters in memory and on disk."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taps", type=int, default=5000, help="taps with counters in memory")
    parser.add_argument("--file-taps", type=int, default=1000, help="taps with durable counters")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hcekit-bench-card-") as directory:
        for kernel in ("visa", "mastercard"):
            for counters, n in (("memory", args.taps), ("file", args.file_taps)):
                measure(kernel, 100, counters, directory)
                times = measure(kernel, n, counters, directory)
                p50, p99 = percentile(times, 50), percentile(times, 99)
                print(f"{kernel:10s} {counters:6s} counters taps={n} card time per tap: "
                      f"p50={p50:.3f} ms p99={p99:.3f} ms")
    print(f"file counters: FileCounterStore in {tempfile.gettempdir()} (fsync per ATC reservation)")


if __name__ == "__main__":
    main()
