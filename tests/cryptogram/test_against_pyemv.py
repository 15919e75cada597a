"""Property tests against pyemv, an independent implementation: same inputs, same bytes.

pyemv builds TripleDES from the deprecated location with 8-byte keys, so its calls run with
``CryptographyDeprecationWarning`` silenced; hcekit's own calls run with warnings as errors.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TypeVar

import pyemv
from cryptography.utils import CryptographyDeprecationWarning
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptogram.ac import arpc_method1, arpc_method2, generate_ac
from cryptogram.cvn import profile
from cryptogram.derive import (
    derive_icc_mk_a,
    derive_icc_mk_b,
    derive_session_key_emv,
    derive_session_key_mastercard,
)

T = TypeVar("T")

keys = st.binary(min_size=16, max_size=16)
pans = st.from_regex(r"[0-9]{12,19}", fullmatch=True)
psns = st.from_regex(r"[0-9]{2}", fullmatch=True)
atcs = st.binary(min_size=2, max_size=2)
uns = st.binary(min_size=4, max_size=4)


def oracle(call: Callable[..., T], *args: object) -> T:
    """Run a pyemv function with its deprecation warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return call(*args)


@given(keys, pans, psns)
def test_icc_mk_option_a(imk: bytes, pan: str, psn: str) -> None:
    """Option A master keys equal pyemv's."""
    assert derive_icc_mk_a(imk, pan, psn) == oracle(pyemv.kd.derive_icc_mk_a, imk, pan, psn)


@given(keys, pans, psns)
def test_icc_mk_option_b(imk: bytes, pan: str, psn: str) -> None:
    """Option B master keys (SHA-1 and decimalisation beyond 16 digits) equal pyemv's."""
    assert derive_icc_mk_b(imk, pan, psn) == oracle(pyemv.kd.derive_icc_mk_b, imk, pan, psn)


@given(keys, atcs)
def test_common_session_key(mk: bytes, atc: bytes) -> None:
    """EMV common session keys equal pyemv's derive_common_sk(ATC‖00…)."""
    assert derive_session_key_emv(mk, atc) == oracle(pyemv.kd.derive_common_sk, mk, atc + bytes(6))


@given(keys, atcs, uns)
def test_mastercard_session_key(mk: bytes, atc: bytes, un: bytes) -> None:
    """Mastercard session keys equal pyemv's derive_common_sk(ATC‖00‖00‖UN)."""
    expected = oracle(pyemv.kd.derive_common_sk, mk, atc + b"\x00\x00" + un)
    assert derive_session_key_mastercard(mk, atc, un) == expected


@given(keys, st.binary(max_size=120), st.sampled_from([1, 2]))
def test_mac_and_ac(key: bytes, data: bytes, padding: int) -> None:
    """Application cryptograms (MAC algorithm 3, padding 1 or 2) equal pyemv's."""
    kind = pyemv.ac.PaddingType.VISA if padding == 1 else pyemv.ac.PaddingType.EMV
    assert generate_ac(key, data, padding) == oracle(pyemv.ac.generate_ac, key, data, kind)
    expected = oracle(pyemv.mac.mac_iso9797_3, key[:8], key[8:], data, padding)
    assert generate_ac(key, data, padding) == expected


@given(keys, st.binary(min_size=8, max_size=8), st.binary(min_size=2, max_size=2))
def test_arpc_method1(key: bytes, arqc: bytes, arc: bytes) -> None:
    """ARPC method 1 equals pyemv's generate_arpc_1."""
    assert arpc_method1(key, arqc, arc) == oracle(pyemv.ac.generate_arpc_1, key, arqc, arc)


@given(keys, st.binary(min_size=8, max_size=8), st.binary(min_size=4, max_size=4), st.binary(max_size=8))
def test_arpc_method2(key: bytes, arqc: bytes, csu: bytes, extra: bytes) -> None:
    """ARPC method 2 equals pyemv's generate_arpc_2."""
    assert arpc_method2(key, arqc, csu, extra) == oracle(pyemv.ac.generate_arpc_2, key, arqc, csu, extra)


terminal = st.tuples(*(st.binary(min_size=n, max_size=n) for n in (6, 6, 2, 5, 2, 3, 1, 4, 2, 2)))
TAGS = (0x9F02, 0x9F03, 0x9F1A, 0x95, 0x5F2A, 0x9A, 0x9C, 0x9F37, 0x82, 0x9F36)


@settings(max_examples=60)
@given(keys, pans, psns, terminal, st.sampled_from(["visa10", "visa18", "visa22", "mc16", "mc17"]),
       st.one_of(st.none(), st.integers(1, 0xFFFF)), st.data())
def test_cvn_profiles(
    imk: bytes, pan: str, psn: str, values: tuple[bytes, ...], name: str, luk_index: int | None,
    data: st.DataObject,
) -> None:
    """Each profile's ARQC and ARPC equal those of pyemv's class for the same CVN."""
    cvn = profile(name)
    cvr = data.draw(st.binary(min_size=cvn.cvr_length, max_size=cvn.cvr_length))
    tlvs = dict(zip(TAGS, values, strict=True))
    iad = tlvs[0x9F10] = cvn.build_iad(cvr, luk_index=luk_index)
    mk = cvn.derive_icc_mk(imk, pan, psn)
    arqc = cvn.generate(mk, tlvs).cryptogram
    args = {f"tag_{tag:x}": value for tag, value in zip(TAGS, values, strict=True)}
    classes = {"visa10": pyemv.cvn.VisaCVN10, "visa18": pyemv.cvn.VisaCVN18, "visa22": pyemv.cvn.VisaCVN22,
               "mc16": pyemv.cvn.MasterCardCVN16, "mc17": pyemv.cvn.MasterCardCVN17}
    reference = oracle(classes[name], imk, imk, imk, pan, psn)
    if name in ("visa18", "visa22"):
        args["tag_9f10"] = iad
    else:
        args["cvr"] = cvr
    if name == "mc17":
        args["counters"] = iad[10:18]
    assert arqc == oracle(lambda: reference.generate_ac(**args))
    if cvn.arpc_method == 1:
        assert cvn.arpc(mk, tlvs, arqc, arc=b"00") == oracle(lambda: reference.generate_arpc(arqc, b"00"))
    else:
        csu = bytes.fromhex("00820000")
        expected = oracle(lambda: reference.generate_arpc(arqc, tlvs[0x9F36], csu))
        assert cvn.arpc(mk, tlvs, arqc, csu=csu) == expected
