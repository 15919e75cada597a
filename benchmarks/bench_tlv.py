"""Decode real card responses with apdu.tlv and with pyemv.tlv, and compare their speed.

Run: ``python benchmarks/bench_tlv.py [--rounds N] [--json]``.

The responses are in ``benchmarks/data/card_responses.json`` (each with its public source):
SELECT PPSE and SELECT AID FCIs, GET PROCESSING OPTIONS responses (Visa qVSDC, Mastercard),
Mastercard records with CDOL1, and a GENERATE AC response. Each round decodes the data field of
every response once with each decoder (lenient ``apdu.tlv.decode``, default ``pyemv.tlv.decode``),
in alternating order. Throughput (ops/s) is measured over tight loops; p50/p99 are per single
decode, timed one by one with ``perf_counter_ns`` (so they include the timer's own cost).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from terminal.timing import percentile

DATA = Path(__file__).with_name("data") / "card_responses.json"


def load_responses() -> list[tuple[str, bytes]]:
    """The data fields (status word removed) of the benchmark's card responses."""
    doc = json.loads(DATA.read_text())
    return [(entry["name"], bytes.fromhex(entry["response"])[:-2]) for entry in doc["responses"]]


def throughput(decode: Callable[[bytes], Any], payloads: list[bytes], rounds: int) -> float:
    """Decodes per second over ``rounds`` passes through every payload."""
    clock = time.perf_counter
    start = clock()
    for _ in range(rounds):
        for payload in payloads:
            decode(payload)
    return rounds * len(payloads) / (clock() - start)


def latencies(decode: Callable[[bytes], Any], payloads: list[bytes], rounds: int) -> list[int]:
    """Nanoseconds of each single decode."""
    clock = time.perf_counter_ns
    out = []
    for _ in range(rounds):
        for payload in payloads:
            t0 = clock()
            decode(payload)
            out.append(clock() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3000, help="passes over the responses (default 3000)")
    parser.add_argument("--repeat", type=int, default=5, help="throughput runs; the best is kept (default 5)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import pyemv.tlv

    import apdu.tlv

    responses = load_responses()
    payloads = [payload for _, payload in responses]
    decoders: dict[str, Callable[[bytes], Any]] = {
        "apdu.tlv": apdu.tlv.decode,
        "pyemv.tlv": pyemv.tlv.decode,
    }
    for name, payload in responses:
        mine = {node.tag for node in apdu.tlv.walk(apdu.tlv.decode(payload))}
        if not mine:
            raise SystemExit(f"{name}: decoded to nothing")
        decoders["pyemv.tlv"](payload)

    gc.collect()
    best = dict.fromkeys(decoders, 0.0)
    for _ in range(args.repeat):
        for name, decode in (decoders.items() if _ % 2 == 0 else reversed(decoders.items())):
            best[name] = max(best[name], throughput(decode, payloads, args.rounds // args.repeat or 1))
    samples = {name: latencies(decode, payloads, args.rounds) for name, decode in decoders.items()}

    per_response = {}
    for name, payload in responses:
        rates = {d: throughput(decode, [payload], max(1, args.rounds // 3)) for d, decode in decoders.items()}
        per_response[name] = {"bytes": len(payload), **rates, "ratio": rates["apdu.tlv"] / rates["pyemv.tlv"]}

    result = {
        "python": platform.python_version(),
        "responses": len(responses),
        "decodes_per_decoder": args.rounds * len(payloads),
        "decoders": {
            name: {
                "ops_per_s": best[name],
                "p50_us": percentile(samples[name], 50) / 1000,
                "p99_us": percentile(samples[name], 99) / 1000,
                "mean_us": statistics.fmean(samples[name]) / 1000,
            }
            for name in decoders
        },
        "ratio": best["apdu.tlv"] / best["pyemv.tlv"],
        "per_response": per_response,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"BER-TLV decode of {len(responses)} real card responses, {args.rounds} rounds, "
          f"Python {result['python']}")
    print(f"{'decoder':<12}{'ops/s':>12}{'p50 µs':>10}{'p99 µs':>10}")
    for name, row in result["decoders"].items():
        print(f"{name:<12}{row['ops_per_s']:>12,.0f}{row['p50_us']:>10.2f}{row['p99_us']:>10.2f}")
    print(f"ratio apdu.tlv / pyemv.tlv: {result['ratio']:.2f}x")
    print()
    print(f"{'response':<28}{'bytes':>6}{'apdu ops/s':>13}{'pyemv ops/s':>13}{'ratio':>7}")
    for name, row in per_response.items():
        print(f"{name:<28}{row['bytes']:>6}{row['apdu.tlv']:>13,.0f}{row['pyemv.tlv']:>13,.0f}"
              f"{row['ratio']:>7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
