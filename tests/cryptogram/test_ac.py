"""Application cryptograms and ARPC methods 1 and 2."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cryptogram.ac import arpc_method1, arpc_method2, generate_ac, verify_ac
from cryptogram.errors import InvalidInput

SK = bytes.fromhex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB")
ARQC = bytes.fromhex("1234567890ABCDEF")
DATA = bytes.fromhex("000000002000000000000000012400000080000124110309003804823E58000001")


@pytest.mark.parametrize(
    ("padding", "cryptogram", "source"),
    [
        (2, "3B76CF10FECD8789", "pyemv ac.generate_ac docstring (EMV padding)"),
    ],
)
def test_generate_ac_vectors(padding: int, cryptogram: str, source: str) -> None:
    """The AC of published data matches."""
    assert generate_ac(SK, DATA, padding).hex().upper() == cryptogram, source


@pytest.mark.parametrize(
    ("method", "arc_or_csu", "arpc", "source"),
    [
        (1, "0000", "F5E6F44147E2F1B0", "pyemv ac.generate_arpc_1 docstring"),
        (2, "00000000", "9308BEBC", "pyemv ac.generate_arpc_2 docstring"),
    ],
)
def test_arpc_vectors(method: int, arc_or_csu: str, arpc: str, source: str) -> None:
    """ARPC methods 1 and 2 reproduce published values."""
    value = bytes.fromhex(arc_or_csu)
    result = arpc_method1(SK, ARQC, value) if method == 1 else arpc_method2(SK, ARQC, value)
    assert result.hex().upper() == arpc, source


@given(st.binary(min_size=16, max_size=16), st.binary(max_size=100), st.sampled_from([1, 2]),
       st.integers(0, 7), st.integers(1, 255))
def test_tampered_cryptogram_fails(key: bytes, data: bytes, padding: int, position: int, flip: int) -> None:
    """verify_ac accepts the cryptogram and refuses it with any one byte changed."""
    cryptogram = generate_ac(key, data, padding)
    assert verify_ac(key, data, cryptogram, padding)
    tampered = bytearray(cryptogram)
    tampered[position] ^= flip
    assert not verify_ac(key, data, bytes(tampered), padding)


@given(st.binary(min_size=16, max_size=16), st.binary(min_size=1, max_size=60), st.integers(0, 59))
def test_tampered_data_fails(key: bytes, data: bytes, position: int) -> None:
    """A changed input byte gives a cryptogram that no longer verifies."""
    cryptogram = generate_ac(key, data, 2)
    tampered = bytearray(data)
    tampered[position % len(data)] ^= 0x01
    assert not verify_ac(key, bytes(tampered), cryptogram, 2)


@given(st.sampled_from([16, 24, 32]), st.binary(max_size=64))
def test_aes_ac_is_eight_bytes_and_verifies(length: int, data: bytes) -> None:
    """AES cryptograms are 8 bytes and verify."""
    key = bytes(range(length))
    cryptogram = generate_ac(key, data, algorithm="aes")
    assert len(cryptogram) == 8 and verify_ac(key, data, cryptogram, algorithm="aes")


@given(st.binary(min_size=8, max_size=8), st.binary(min_size=2, max_size=2))
def test_aes_arpc_lengths(arqc: bytes, arc: bytes) -> None:
    """AES ARPCs are 8 bytes (method 1) and 4 bytes (method 2)."""
    key = bytes(16)
    assert len(arpc_method1(key, arqc, arc, algorithm="aes")) == 8
    assert len(arpc_method2(key, arqc, bytes(4), b"\x01", algorithm="aes")) == 4


@pytest.mark.parametrize(
    ("arqc", "value", "method"),
    [(bytes(7), bytes(2), 1), (bytes(8), bytes(3), 1), (bytes(9), bytes(4), 2), (bytes(8), bytes(5), 2)],
)
def test_arpc_length_checks(arqc: bytes, value: bytes, method: int) -> None:
    """ARQC must be 8 bytes, ARC 2 and CSU 4."""
    with pytest.raises(InvalidInput):
        if method == 1:
            arpc_method1(SK, arqc, value)
        else:
            arpc_method2(SK, arqc, value)


def test_arpc_method2_proprietary_data_limit() -> None:
    """Proprietary authentication data is at most 8 bytes."""
    assert len(arpc_method2(SK, ARQC, bytes(4), bytes(8))) == 4
    with pytest.raises(InvalidInput):
        arpc_method2(SK, ARQC, bytes(4), bytes(9))
