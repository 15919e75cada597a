"""Card-side time per full tap, in process: the applet alone, no transport.

A Visa (qVSDC) tap is SELECT PPSE, SELECT AID, GPO (the ARQC is made here) and READ RECORD;
a Mastercard (M/Chip) tap is SELECT PPSE, SELECT AID, GPO, two READ RECORDs and GENERATE AC.
Counters are in memory (a file store adds one fsync per reservation, which is the disk's
time, not the card's). Target: Visa tap under 1 ms at the median on CPython.

Run: ``python benchmarks/bench_card.py [--taps N]``
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from apdu.command import PPSE, GenerateAC, GetProcessingOptions, ReadRecord, Select
from hce.applet import CardApplet
from hce.keys import MemoryCounterStore
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


def measure(kernel: str, n: int) -> list[float]:
    """Card time in milliseconds of ``n`` taps (each checked to end in 9000)."""
    now = int(time.time())
    profile = builtin_profile(kernel, now=now)
    profile = replace(profile, luks=tuple(replace(k, max_uses=10**9) for k in profile.luks))
    card = CardApplet(profile, counters=MemoryCounterStore(), clock=lambda: now)
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
    """Print p50/p99 card time per tap for both kernels."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taps", type=int, default=5000)
    args = parser.parse_args()
    for kernel in ("visa", "mastercard"):
        measure(kernel, 200)
        times = measure(kernel, args.taps)
        p50, p99 = percentile(times, 50), percentile(times, 99)
        print(f"{kernel:10s} taps={args.taps} card time per tap: p50={p50:.3f} ms p99={p99:.3f} ms")


if __name__ == "__main__":
    main()
