"""Benchmark: terminal offline data authentication per tap (fDDA and CDA), 1984-bit keys.

One operation is what the kernel does for one tap after the card answered: find the CA key,
recover and check the issuer certificate (90/92/9F32), the ICC certificate (9F46/9F48/9F47)
over the static data, then the signature (9F4B) -- fDDA over UN, amount, currency and 9F69, or
CDA with its transaction data hash and the cryptogram recovered -- including the ROCA check of
both recovered keys. CA, issuer and ICC keys are all 1984 bits (the EMV maximum), e = 3.

The reference is an independent path written here from EMV Book 2 alone: the three RSA
public operations through GMP (``gmpy2.powmod``) and the blocks read by offset, with the hash
checks but no ROCA check. Both paths run on the same bytes, alternating rounds (paired), and
must agree before anything is timed. The card's side (one CRT signature) is timed as well.

Run: ``python benchmarks/bench_oda.py [--seconds 2] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable

from cryptogram import oda as book2
from cryptogram.rsa import RsaPrivateKey, generate_private_key
from terminal.capk import CaKey, CaKeyTable
from terminal.oda import fdda_terminal_data, perform_cda, perform_dynamic
from terminal.timing import percentile

RID = bytes.fromhex("A000000004")
PAN, EXPIRY, TODAY = "5413330089010012", "3012", "250601"


def _chain(bits: int) -> tuple[RsaPrivateKey, RsaPrivateKey, RsaPrivateKey, book2.CardCertificates]:
    ca, issuer, icc = (generate_private_key(bits, 3) for _ in range(3))
    chain = book2.issue_card(ca=ca, ca_index=0xE1, issuer=issuer, icc=icc, pan=PAN, expiry=EXPIRY,
                             psn="01", country="0840", aip=bytes.fromhex("2000"))
    return ca, issuer, icc, chain


def _reference(ca_modulus: int, card: dict[int, bytes], static: bytes, sdad: bytes, signed: bytes) -> bytes:
    """Book 2 §5.3, §6.4, §6.5 by offsets with GMP: returns the ICC dynamic data or raises."""
    import gmpy2

    def recover(n: int, e: int, length: int, sig: bytes) -> bytes:
        return int(gmpy2.powmod(int.from_bytes(sig, "big"), e, n)).to_bytes(length, "big")

    n_ca = (ca_modulus.bit_length() + 7) // 8
    cert = recover(ca_modulus, 3, n_ca, card[0x90])
    if cert[0] != 0x6A or cert[1] != 0x02 or cert[-1] != 0xBC:
        raise ValueError("issuer certificate")
    n_i = cert[13]
    issuer_mod = cert[15:15 + min(n_i, n_ca - 36)] + card.get(0x92, b"")
    if hashlib.sha1(cert[1:-21] + card.get(0x92, b"") + card[0x9F32]).digest() != cert[-21:-1]:
        raise ValueError("issuer hash")
    icc_cert = recover(int.from_bytes(issuer_mod, "big"), 3, n_i, card[0x9F46])
    if icc_cert[0] != 0x6A or icc_cert[1] != 0x04 or icc_cert[-1] != 0xBC:
        raise ValueError("ICC certificate")
    n_ic = icc_cert[19]
    rem = card.get(0x9F48, b"")
    if hashlib.sha1(icc_cert[1:-21] + rem + card[0x9F47] + static).digest() != icc_cert[-21:-1]:
        raise ValueError("ICC hash")
    icc_mod = icc_cert[21:21 + min(n_ic, n_i - 42)] + rem
    block = recover(int.from_bytes(icc_mod, "big"), 3, n_ic, sdad)
    if block[0] != 0x6A or block[1] not in (0x05, 0x95) or block[-1] != 0xBC:
        raise ValueError("signature")
    if hashlib.sha1(block[1:-21] + signed).digest() != block[-21:-1]:
        raise ValueError("signature hash")
    return block[4:4 + block[3]]


def _operations(bits: int) -> dict[str, Callable[[], object]]:
    ca, _issuer, icc, chain = _chain(bits)
    table = CaKeyTable([CaKey(RID, 0xE1, ca.public, kind="bench")])
    record = chain.static_record
    static = record[3:] + bytes.fromhex("2000") if record[1] == 0x81 else record[2:] + bytes.fromhex("2000")
    card = {0x4F: RID + b"\x10\x10", 0x8F: b"\xE1", 0x90: chain.issuer_certificate,
            0x92: chain.issuer_remainder, 0x9F32: chain.issuer_exponent, 0x9F46: chain.icc_certificate,
            0x9F48: chain.icc_remainder, 0x9F47: chain.icc_exponent, 0x5A: bytes.fromhex(PAN),
            0x82: bytes.fromhex("2000"),
            0x9F69: bytes.fromhex("01A1B2C3D40000")}
    terminal = {0x9F37: bytes.fromhex("0A0B0C0D"), 0x9F02: bytes.fromhex("000000001250"),
                0x5F2A: bytes.fromhex("0978")}
    signed = fdda_terminal_data(card, terminal)
    fdda_sdad = book2.sign_dynamic_data(icc, b"\x02\x00\x07", signed, fmt=book2.FORMAT_FDDA)
    th = book2.cda_transaction_hash(b"", bytes(43), bytes.fromhex("9F2701809F360200079F100706010A03A00000"))
    cda_sdad = book2.sign_dynamic_data(icc, book2.cda_dynamic_data(bytes(8), b"\x80", bytes(8), th),
                                       terminal[0x9F37])

    def fdda_ours() -> object:
        result = perform_dynamic(table, card, static, TODAY, sdad=fdda_sdad, terminal_data=signed,
                                 method="fdda")
        assert result.passed
        return result

    def cda_ours() -> object:
        result = perform_cda(table, card, static, TODAY, sdad=cda_sdad, unpredictable_number=terminal[0x9F37],
                             cid=b"\x80", transaction_hash=th)
        assert result.passed
        return result

    def fdda_ref() -> object:
        return _reference(ca.n, card, static, fdda_sdad, signed)

    def cda_ref() -> object:
        dd = _reference(ca.n, card, static, cda_sdad, terminal[0x9F37])
        if dd[-20:] != th:
            raise ValueError("transaction hash")
        return dd

    assert fdda_ref() == b"\x02\x00\x07"
    fdda_ours()
    cda_ours()
    cda_ref()
    block = b"\x6A\x05\x01\x03\x02\x00\x07" + b"\xBB" * (icc.length - 8) + b"\xBC"
    return {"fdda hcekit": fdda_ours, "fdda gmp-ref": fdda_ref, "cda hcekit": cda_ours,
            "cda gmp-ref": cda_ref, "card sign": lambda: icc.sign(block)}


def _measure(
    operations: dict[str, Callable[[], object]], seconds: float, rounds: int,
) -> dict[str, list[int]]:
    samples: dict[str, list[int]] = {name: [] for name in operations}
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for name, operation in operations.items():
            deadline = clock() + int(seconds / rounds * 1e9)
            while True:
                start = clock()
                operation()
                end = clock()
                samples[name].append(end - start)
                if end >= deadline:
                    break
    return samples


def main() -> None:
    """Print ms per operation (p50, p99) for each path and the paired ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time per operation")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--bits", type=int, default=1984, help="CA, issuer and ICC key size")
    options = parser.parse_args()
    samples = _measure(_operations(options.bits), options.seconds, options.rounds)
    print(f"terminal ODA per tap, {options.bits}-bit CA/issuer/ICC keys, e = 3")
    print(f"{'operation':<14}{'n':>7}{'p50 ms':>10}{'p99 ms':>10}")
    p50 = {}
    for name, values in samples.items():
        p50[name] = percentile(values, 50) / 1e6
        print(f"{name:<14}{len(values):>7}{p50[name]:>10.3f}{percentile(values, 99) / 1e6:>10.3f}")
    for method in ("fdda", "cda"):
        ratio = p50[f"{method} hcekit"] / p50[f"{method} gmp-ref"]
        print(f"{method}: hcekit / GMP reference p50 = {ratio:.2f}x")


if __name__ == "__main__":
    main()
