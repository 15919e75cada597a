"""Benchmark: generate + verify an ARQC, hcekit against pyemv on identical inputs.

One operation is what a tap costs both ends: the card generates the ARQC, the issuer
recomputes and compares it. Both libraries get the same ICC master key (derived once, as a card
holds it) and the same transaction data; hcekit goes through its CVN profile (input data
from a tag mapping, session key, MAC, constant-time compare), pyemv through its CVN class
(generate twice and compare; it has no verify). Only master-key cipher contexts are reused by
hcekit; every session key is new, as in real traffic.

Run: ``python benchmarks/bench_cryptogram.py [--seconds 2] [--cvn visa18 mc16]``
"""

from __future__ import annotations

import argparse
import hmac
import time
import warnings
from collections.abc import Callable

import pyemv
from cryptography.utils import CryptographyDeprecationWarning

from cryptogram import profile
from terminal.timing import percentile

warnings.simplefilter("ignore", CryptographyDeprecationWarning)

IMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
PAN, PSN = "4895370012003478", "00"
TAGS = (0x9F02, 0x9F03, 0x9F1A, 0x95, 0x5F2A, 0x9A, 0x9C, 0x9F37, 0x82, 0x9F36)
VALUES = (
    "000000001250", "000000000000", "0250", "0000008000", "0978", "250301", "00", "1A2B3C4D", "2000", "0007",
)  # fmt: skip
PYEMV_CLASSES = {
    "visa10": pyemv.cvn.VisaCVN10,
    "visa18": pyemv.cvn.VisaCVN18,
    "visa22": pyemv.cvn.VisaCVN22,
    "mc16": pyemv.cvn.MasterCardCVN16,
    "mc17": pyemv.cvn.MasterCardCVN17,
}


def _operations(name: str) -> tuple[Callable[[], bool], Callable[[], bool]]:
    cvn = profile(name)
    tlvs = {tag: bytes.fromhex(value) for tag, value in zip(TAGS, VALUES, strict=True)}
    cvr = bytes.fromhex("03A0B800A0A00000")[: cvn.cvr_length]
    iad = tlvs[0x9F10] = cvn.build_iad(cvr, luk_index=1)
    mk = cvn.derive_icc_mk(IMK, PAN, PSN)

    reference = PYEMV_CLASSES[name](IMK, IMK, IMK, PAN, PSN)
    args: dict[str, bytes] = {f"tag_{tag:x}": tlvs[tag] for tag in TAGS}
    if cvn.iad_data == "iad":
        args["tag_9f10"] = iad
    else:
        args["cvr"] = cvr
    if cvn.iad_data == "cvr+counters":
        args["counters"] = iad[10:18]

    def ours() -> bool:
        arqc = cvn.generate(mk, tlvs).cryptogram
        return cvn.verify(mk, tlvs, arqc)

    def theirs() -> bool:
        arqc = reference.generate_ac(**args)
        return hmac.compare_digest(reference.generate_ac(**args), arqc)

    assert cvn.generate(mk, tlvs).cryptogram == reference.generate_ac(**args), "libraries disagree"
    return ours, theirs


def _round(operation: Callable[[], bool], seconds: float, samples: list[int]) -> float:
    clock = time.perf_counter_ns
    count = 0
    begin = clock()
    deadline = begin + int(seconds * 1e9)
    while True:
        start = clock()
        operation()
        end = clock()
        samples.append(end - start)
        count += 1
        if end >= deadline:
            return count / ((end - begin) / 1e9)


def _measure(
    operations: dict[str, Callable[[], bool]], seconds: float, rounds: int
) -> dict[str, tuple[float, float, float]]:
    """Alternate the libraries over ``rounds`` rounds; keep each one's best round (as timeit does)."""
    for operation in operations.values():
        for _ in range(500):
            operation()
    samples: dict[str, list[int]] = {name: [] for name in operations}
    best = dict.fromkeys(operations, 0.0)
    for _ in range(rounds):
        for name, operation in operations.items():
            best[name] = max(best[name], _round(operation, seconds / rounds, samples[name]))
    results = {}
    for name, values in samples.items():
        p50 = percentile(values, 50) / 1000
        p99 = percentile(values, 99) / 1000
        results[name] = (best[name], p50, p99)
    return results


def main() -> None:
    """Print ops/s, p50 and p99 for each library and CVN, and hcekit's speed-up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time per library and CVN")
    parser.add_argument("--cvn", nargs="+", default=["visa18", "mc16"], choices=sorted(PYEMV_CLASSES))
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per library")
    options = parser.parse_args()
    print("generate + verify one ARQC; ops/s is the best round, p50/p99 over all rounds")
    print(f"{'cvn':<8}{'library':<9}{'ops/s':>10}{'p50 µs':>10}{'p99 µs':>10}")
    for name in options.cvn:
        ours, theirs = _operations(name)
        results = _measure({"hcekit": ours, "pyemv": theirs}, options.seconds, options.rounds)
        for library, (ops, p50, p99) in results.items():
            print(f"{name:<8}{library:<9}{ops:>10.0f}{p50:>10.1f}{p99:>10.1f}")
        ratio = results["hcekit"][0] / results["pyemv"][0]
        p50_ratio = results["pyemv"][1] / results["hcekit"][1]
        print(f"{name:<8}ratio    {ratio:>9.2f}x ops/s, {p50_ratio:.2f}x p50  (target ≥ 2x)")


if __name__ == "__main__":
    main()
