"""BER-TLV decoding, apdu.tlv against pyemv.tlv: the tree, and the flat decode authorization uses.

Run: ``python benchmarks/bench_tlv.py [--rounds N] [--loops N] [--json]``.

Two operations, each on the same inputs for both libraries:

* **tree** -- decode real card responses (``benchmarks/data/card_responses.json``, each with its
  public source) into a tree: ``apdu.tlv.decode`` against ``pyemv.tlv.decode``;
* **flat** -- the primitive data objects of an authorization's field 55 as ``{tag: value}``:
  what ``tsp_backend.services.authorization.parse_emv`` does (``walk(decode())``, first
  occurrence wins), and ``apdu.tlv.decode_flat``, against ``pyemv.tlv.decode(flatten=True)``.

Before anything is timed, the outputs are compared: every tree of apdu.tlv, mapped to pyemv's
shape (``{"9F26": value, "77": {...}}``), must equal pyemv's, and every flat dict must equal
pyemv's with its keys read as ints; the benchmark stops with an error otherwise.

Timing is paired: each round times every decoder over the same inputs (``--loops`` passes),
one after the other in an order that alternates between rounds, and the ratio of that round is
taken; the figure printed is the **median of the per-round ratios** with its 5th and 95th
percentiles (never the best round of each side). A ratio above 1 means apdu.tlv is faster.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from terminal.timing import percentile

DATA = Path(__file__).with_name("data") / "card_responses.json"

#: Field 55 (ICC data) of authorization requests as terminals send them (ISO 8583 DE 55 with
#: the data EMV 4.4 Book 4 §6.3.5 and the contactless books give the issuer): (tag, value).
FIELD_55: dict[str, tuple[tuple[int, str], ...]] = {
    "visa_field55": (
        (0x9F26, "C2B5A2F1E0D9C8B7"), (0x9F27, "80"),
        (0x9F10, "1F4201A030F8000000000000000000000F0000000000000000000000000000"),
        (0x9F37, "1A2B3C4D"), (0x9F36, "0007"), (0x95, "0000008000"), (0x9A, "250301"), (0x9C, "00"),
        (0x9F02, "000000001250"), (0x5F2A, "0978"), (0x82, "2000"), (0x9F1A, "0250"),
        (0x9F03, "000000000000"), (0x9F33, "E0F8C8"), (0x9F34, "1F0302"), (0x84, "A0000000031010"),
        (0x9F6E, "20700000"), (0x9F66, "36000000"), (0x9F6C, "0080"),
    ),
    "mastercard_field55": (
        (0x9F26, "A1B2C3D4E5F60708"), (0x9F27, "80"), (0x9F10, "0110A00003220000000000000000000000FF"),
        (0x9F37, "CAFEBABE"), (0x9F36, "0042"), (0x95, "0000000000"), (0x9A, "250301"), (0x9C, "00"),
        (0x9F02, "000000001250"), (0x5F2A, "0978"), (0x82, "1980"), (0x9F1A, "0250"),
        (0x9F03, "000000000000"), (0x9F33, "E06808"), (0x9F34, "3F0002"), (0x9F35, "22"),
        (0x9F09, "0002"), (0x84, "A0000000041010"), (0x9F53, "52"),
    ),
}


def load_responses() -> list[tuple[str, bytes]]:
    """The data fields (status word removed) of the benchmark's card responses."""
    doc = json.loads(DATA.read_text())
    return [(entry["name"], bytes.fromhex(entry["response"])[:-2]) for entry in doc["responses"]]


def field_55() -> list[tuple[str, bytes]]:
    """The field-55 blocks, encoded."""
    from apdu.tlv import TLV, encode

    return [
        (name, encode([TLV(tag, bytes.fromhex(value)) for tag, value in rows]))
        for name, rows in FIELD_55.items()
    ]


def as_pyemv_tree(nodes: Any) -> dict[str, Any]:
    """apdu.tlv nodes in pyemv's shape: uppercase hex tag -> value, or a dict for a template."""
    out: dict[str, Any] = {}
    for node in nodes:
        out[node.tag_bytes.hex().upper()] = as_pyemv_tree(node.children) if node.constructed else node.value
    return out


def check_same(what: str, name: str, ours: Any, theirs: Any) -> None:
    """Stop the benchmark when the two libraries disagree: a ratio of different work means nothing."""
    if ours != theirs:
        raise SystemExit(
            f"{what}: {name}: apdu.tlv and pyemv.tlv disagree\n  apdu:  {ours!r}\n  pyemv: {theirs!r}"
        )


def paired(
    decoders: Mapping[str, Callable[[bytes], Any]], payloads: list[bytes], rounds: int, loops: int
) -> dict[str, list[float]]:
    """Nanoseconds per decode of each decoder in each round (the decoders take turns in a round)."""
    clock = time.perf_counter_ns
    names = list(decoders)
    out: dict[str, list[float]] = {name: [] for name in names}
    for decode in decoders.values():  # warm up, unmeasured
        for payload in payloads:
            decode(payload)
    for index in range(rounds):
        for name in names if index % 2 == 0 else reversed(names):
            decode = decoders[name]
            start = clock()
            for _ in range(loops):
                for payload in payloads:
                    decode(payload)
            out[name].append((clock() - start) / (loops * len(payloads)))
    return out


def summary(times: dict[str, list[float]], ours: str, peer: str) -> dict[str, Any]:
    """Median ns and ops/s of each side, and the per-round speed ratio ours/peer (median, p5, p95)."""
    ratios = [p / o for o, p in zip(times[ours], times[peer], strict=True)]
    return {
        "ours": ours,
        "peer": peer,
        "ours_ns": percentile(times[ours], 50),
        "peer_ns": percentile(times[peer], 50),
        "ours_ops_per_s": 1e9 / percentile(times[ours], 50),
        "peer_ops_per_s": 1e9 / percentile(times[peer], 50),
        "ratio": percentile(ratios, 50),
        "ratio_p5": percentile(ratios, 5),
        "ratio_p95": percentile(ratios, 95),
        "rounds": len(ratios),
    }


def main(argv: list[str] | None = None) -> int:
    """Compare the outputs, run the paired rounds and print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="paired rounds (default 200)")
    parser.add_argument("--loops", type=int, default=20, help="passes over the inputs per round (default 20)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    import pyemv.tlv

    import apdu.tlv

    try:
        from tsp_backend.services.authorization import parse_emv
    except ImportError:  # the service's dependencies are not installed: the same operation
        def parse_emv(data: bytes) -> dict[int, bytes]:
            values: dict[int, bytes] = {}
            for node in apdu.tlv.walk(apdu.tlv.decode(data)):
                if not node.constructed and node.tag not in values:
                    values[node.tag] = node.value
            return values

    responses = load_responses()
    blocks = field_55()
    for name, payload in responses:
        check_same("tree", name, as_pyemv_tree(apdu.tlv.decode(payload)), pyemv.tlv.decode(payload))
    for name, payload in responses + blocks:
        theirs = {int(tag, 16): value for tag, value in pyemv.tlv.decode(payload, flatten=True).items()}
        check_same("flat (parse_emv)", name, parse_emv(payload), theirs)
        check_same("flat (decode_flat)", name, apdu.tlv.decode_flat(payload), theirs)

    gc.collect()
    payloads = [payload for _, payload in responses]
    tree_decoders = {"apdu.tlv": apdu.tlv.decode, "pyemv.tlv": pyemv.tlv.decode}
    tree = paired(tree_decoders, payloads, args.rounds, args.loops)
    flat_decoders: dict[str, Callable[[bytes], Any]] = {
        "parse_emv": parse_emv,
        "apdu.tlv.decode_flat": apdu.tlv.decode_flat,
        "pyemv.tlv flatten": lambda data: pyemv.tlv.decode(data, flatten=True),
    }
    flat = paired(flat_decoders, [payload for _, payload in blocks], args.rounds, args.loops)
    per_response = {}
    for name, payload in responses:
        times = paired({"apdu.tlv": apdu.tlv.decode, "pyemv.tlv": pyemv.tlv.decode}, [payload],
                       max(5, args.rounds // 10), args.loops)
        per_response[name] = {"bytes": len(payload), **summary(times, "apdu.tlv", "pyemv.tlv")}

    result = {
        "python": platform.python_version(),
        "responses": len(responses),
        "field55_blocks": len(blocks),
        "outputs_compared": "identical",
        "tree": summary(tree, "apdu.tlv", "pyemv.tlv"),
        "flat_parse_emv": summary(flat, "parse_emv", "pyemv.tlv flatten"),
        "flat_decode_flat": summary(flat, "apdu.tlv.decode_flat", "pyemv.tlv flatten"),
        "per_response": per_response,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"BER-TLV decode, Python {result['python']}; outputs compared first: identical. "
          f"{args.rounds} paired rounds; ratio = median of per-round (pyemv time / apdu time), "
          "[p5, p95]; > 1: apdu.tlv faster")
    print(f"{'operation':<44}{'ours ops/s':>12}{'pyemv ops/s':>13}{'ratio':>8}  p5-p95")
    for key, label in (
        ("tree", f"tree, {len(responses)} card responses"),
        ("flat_parse_emv", "flat, field 55: parse_emv (walk(decode()))"),
        ("flat_decode_flat", "flat, field 55: apdu.tlv.decode_flat"),
    ):
        row = result[key]
        print(f"{label:<44}{row['ours_ops_per_s']:>12,.0f}{row['peer_ops_per_s']:>13,.0f}"
              f"{row['ratio']:>7.2f}x  {row['ratio_p5']:.2f}-{row['ratio_p95']:.2f}")
    print()
    print(f"{'response':<28}{'bytes':>6}{'apdu ops/s':>13}{'pyemv ops/s':>13}{'ratio':>7}")
    for name, row in per_response.items():
        print(f"{name:<28}{row['bytes']:>6}{row['ours_ops_per_s']:>13,.0f}{row['peer_ops_per_s']:>13,.0f}"
              f"{row['ratio']:>7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
