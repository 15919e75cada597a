"""CVC3 (Mastercard mag-stripe mode) against pyemv's published example and as an independent check."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cryptogram.cvc3 import cvc3, encode_discretionary, ivcvc3, nun, read_discretionary
from cryptogram.derive import derive_icc_mk_a

pyemv_cvv = pytest.importorskip("pyemv.cvv")


def test_pyemv_published_example() -> None:
    """pyemv 1.5.0 ``generate_cvc3`` doctest: issuer CVC3 key 0123…, PAN 5123456789012345, ATC 005E,
    UN 00000899 gives 29488 (knovichikhin/pyemv, ``pyemv/cvv.py``)."""
    key = derive_icc_mk_a(bytes.fromhex("01234567899876543210012345678998"), "5123456789012345", "00")
    track2 = bytes.fromhex("5123456789012345D35121010000000000000F")
    value = cvc3(key, ivcvc3(key, track2), bytes.fromhex("00000899"), bytes.fromhex("005E"))
    assert str(value) == "29488"


@given(st.binary(min_size=16, max_size=16), st.binary(min_size=1, max_size=60),
       st.binary(min_size=2, max_size=2), st.binary(min_size=4, max_size=4))
def test_agrees_with_pyemv(key: bytes, track: bytes, atc: bytes, un: bytes) -> None:
    """Any key, track template, ATC and UN: the same CVC3 as pyemv's independent implementation."""
    import warnings

    from cryptography.utils import CryptographyDeprecationWarning

    from cryptogram.derive import adjust_parity
    key = adjust_parity(key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        theirs = pyemv_cvv.generate_cvc3(key, track, atc, un)
    assert str(cvc3(key, ivcvc3(key, track), un, atc)) == theirs


def test_discretionary_data_round_trip() -> None:
    """CVC3, UN and ATC are written where the bitmaps say, nUN last, and read back the same."""
    pcvc3, punatc, natc = bytes.fromhex("0070"), bytes.fromhex("0F8E"), 2
    assert nun(punatc, natc) == 6
    data = encode_discretionary("0000000000000", pcvc3=pcvc3, punatc=punatc, natc=natc,
                                cvc3_value=29488, un="00012345", atc=94)
    assert data[-1] == "6"
    assert read_discretionary(data, pcvc3=pcvc3, punatc=punatc, natc=natc) == ("488", "012345", "94")
