"""Benchmark: generate + verify an ARQC, hcekit against pyemv on identical inputs.

One operation is what a tap costs both ends: the card generates the ARQC, the issuer
recomputes and compares it. Both libraries get the same ICC master key (derived once, as a card
holds it) and the same transaction data; hcekit goes through its CVN profile (input data
from a tag mapping, session key, MAC, constant-time compare), pyemv through its CVN class
(generate twice and compare; it has no verify). Only master-key cipher contexts are reused by
hcekit; every session key is new, as in real traffic.

The libraries take turns in paired rounds; the ratio printed is the median of the per-round
ratios with its 5th-95th percentiles. pyemv 1.5.0 reaches Triple DES through cryptography's
deprecated path (16-byte keys, a warning per cipher object): the benchmark says so, measures
that path's cost, and prints a second ratio against pyemv with it replaced by 24-byte keys
through the supported API (``pyemv modern``; the cryptograms are checked equal).

Run: ``python benchmarks/bench_cryptogram.py [--seconds 2] [--cvn visa18 mc16]``
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import time
import types
import warnings
from collections.abc import Callable, Iterator

import pyemv
import pyemv.mac
import pyemv.tools
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

    if cvn.generate(mk, tlvs).cryptogram != reference.generate_ac(**args):
        raise SystemExit(f"{name}: hcekit and pyemv disagree on the ARQC")
    with modern_tdes():
        if cvn.generate(mk, tlvs).cryptogram != reference.generate_ac(**args):
            raise SystemExit(f"{name}: pyemv with 24-byte keys disagrees on the ARQC")
    return ours, theirs


@contextlib.contextmanager
def modern_tdes(counter: list[int] | None = None) -> Iterator[None]:
    """pyemv with its Triple DES through cryptography's supported path: 24-byte keys, no warnings.

    pyemv 1.5.0 builds ``algorithms.TripleDES`` from ``cryptography.hazmat.primitives`` (an
    attribute that warns it has moved) with 16-byte (and, for the retail MAC, 8-byte) keys, which
    cryptography 47+ accepts only through a deprecation warning, then widens to K1||K2||K1. Here
    its modules see a ``TripleDES`` that passes the same key, widened first, to
    ``cryptography.hazmat.decrepit``: the same cipher, without the deprecated path's cost.
    """
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES

    def widened(key: bytes) -> TripleDES:
        if counter is not None:
            counter[0] += 1
        if len(key) == 8:
            key = key * 3
        elif len(key) == 16:
            key = key + key[:8]
        return TripleDES(key)

    shim = types.SimpleNamespace(TripleDES=widened)
    saved = {module: module._algorithms for module in (pyemv.tools, pyemv.mac)}  # type: ignore[attr-defined]
    for module in saved:
        module._algorithms = shim  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module, original in saved.items():
            module._algorithms = original  # type: ignore[attr-defined]


def deprecated_overhead(n: int = 20000) -> tuple[float, float]:
    """Microseconds to build one 16-byte-key TripleDES the way pyemv does, and the supported way."""
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import algorithms

    key = IMK
    clock = time.perf_counter_ns
    start = clock()
    for _ in range(n):
        algorithms.TripleDES(key)
    old = (clock() - start) / n / 1000
    start = clock()
    for _ in range(n):
        TripleDES(key + key[:8])
    new = (clock() - start) / n / 1000
    return old, new


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
) -> tuple[dict[str, tuple[float, float, float]], dict[str, list[float]]]:
    """Paired rounds: in each, every operation runs for ``seconds / rounds`` (order alternating).

    Returns each operation's (median ops/s over rounds, p50 µs, p99 µs) and its ops/s per round,
    so ratios are taken round by round. ``pyemv modern`` runs with :func:`modern_tdes` on.
    """
    for name, operation in operations.items():
        with modern_tdes() if name == "pyemv modern" else contextlib.nullcontext():
            for _ in range(300):
                operation()
    samples: dict[str, list[int]] = {name: [] for name in operations}
    per_round: dict[str, list[float]] = {name: [] for name in operations}
    names = list(operations)
    for index in range(rounds):
        for name in names if index % 2 == 0 else reversed(names):
            with modern_tdes() if name == "pyemv modern" else contextlib.nullcontext():
                per_round[name].append(_round(operations[name], seconds / rounds, samples[name]))
    results = {}
    for name, values in samples.items():
        ops = percentile(per_round[name], 50)
        results[name] = (ops, percentile(values, 50) / 1000, percentile(values, 99) / 1000)
    return results, per_round


def _ratio(per_round: dict[str, list[float]], ours: str, peer: str) -> tuple[float, float, float]:
    """Median, p5 and p95 of the per-round ratios ours ops/s / peer ops/s."""
    ratios = [o / p for o, p in zip(per_round[ours], per_round[peer], strict=True)]
    return percentile(ratios, 50), percentile(ratios, 5), percentile(ratios, 95)


def main() -> None:
    """Print ops/s, p50 and p99 for each library and CVN, and hcekit's paired speed-up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per library and CVN")
    parser.add_argument("--cvn", nargs="+", default=["visa18", "mc16"], choices=sorted(PYEMV_CLASSES))
    parser.add_argument("--rounds", type=int, default=30, help="paired rounds per CVN")
    options = parser.parse_args()
    old, new = deprecated_overhead()
    print(f"disclosure: pyemv {pyemv.__version__} builds cryptography's TripleDES through the "
          f"deprecated path (moved attribute, 16-byte and 8-byte keys, a warning each time): "
          f"{old:.2f} µs per cipher object "
          f"against {new:.2f} µs for a 24-byte K1||K2||K1 key through cryptography.hazmat.decrepit. "
          f"'pyemv modern' is pyemv with that path replaced (same cryptograms, checked).")
    print("generate + verify one ARQC; ops/s is the median of paired rounds, p50/p99 over all operations;")
    print("ratio = median of per-round ratios [p5-p95]")
    print(f"{'cvn':<8}{'library':<14}{'ops/s':>10}{'p50 µs':>10}{'p99 µs':>10}")
    for name in options.cvn:
        ours, theirs = _operations(name)
        counter = [0]
        with modern_tdes(counter):
            theirs()
        results, per_round = _measure(
            {"hcekit": ours, "pyemv": theirs, "pyemv modern": theirs}, options.seconds, options.rounds
        )
        for library, (ops, p50, p99) in results.items():
            print(f"{name:<8}{library:<14}{ops:>10.0f}{p50:>10.1f}{p99:>10.1f}")
        ratio, low, high = _ratio(per_round, "hcekit", "pyemv")
        modern, mlow, mhigh = _ratio(per_round, "hcekit", "pyemv modern")
        print(f"{name:<8}ratio    {ratio:>9.2f}x ops/s [{low:.2f}-{high:.2f}] (target ≥ 2x)")
        print(f"{name:<8}ratio-modern {modern:>5.2f}x ops/s [{mlow:.2f}-{mhigh:.2f}] against pyemv without "
              f"the deprecated TripleDES path ({counter[0]} cipher objects per operation)")


if __name__ == "__main__":
    main()
