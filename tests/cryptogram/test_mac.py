"""ISO/IEC 9797-1 MAC algorithm 3, AES-CMAC and the two padding methods."""

from __future__ import annotations

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from hypothesis import given
from hypothesis import strategies as st

from cryptogram.errors import InvalidInput, InvalidKey
from cryptogram.mac import aes_cmac, iso9797_mac_alg3, pad_iso9797_1, pad_iso9797_2

RFC4493_KEY = "2B7E151628AED2A6ABF7158809CF4F3C"


@pytest.mark.parametrize(
    ("key", "data", "padding", "mac", "source"),
    [
        ("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB", "1234567890ABCDEF00000000", 2, "9308BEBC",
         "pyemv ac.generate_arpc_2 docstring"),
        ("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB",
         "000000002000000000000000012400000080000124110309003804823E58000001",
         2, "3B76CF10FECD8789", "pyemv ac.generate_ac docstring"),
    ],
)
def test_mac_alg3_vectors(key: str, data: str, padding: int, mac: str, source: str) -> None:
    """MAC algorithm 3 reproduces published values."""
    result = iso9797_mac_alg3(bytes.fromhex(key), bytes.fromhex(data), padding)
    assert result.hex().upper().startswith(mac), source


@pytest.mark.parametrize(
    ("message", "mac", "source"),
    [
        ("", "BB1D6929E95937287FA37D129B756746", "RFC 4493 §4 example 1"),
        ("6BC1BEE22E409F96E93D7E117393172A", "070A16B46B4D4144F79BDD9DD04A287C", "RFC 4493 §4 example 2"),
        ("6BC1BEE22E409F96E93D7E117393172AAE2D8A571E03AC9C9EB76FAC45AF8E5130C81C46A35CE411",
         "DFA66747DE9AE63030CA32611497C827", "RFC 4493 §4 example 3"),
        ("6BC1BEE22E409F96E93D7E117393172AAE2D8A571E03AC9C9EB76FAC45AF8E51"
         "30C81C46A35CE411E5FBC1191A0A52EFF69F2445DF4F9B17AD2B417BE66C3710",
         "51F0BEBF7E3B9D92FC49741779363CFE", "RFC 4493 §4 example 4"),
    ],
)
def test_aes_cmac_vectors(message: str, mac: str, source: str) -> None:
    """AES-CMAC reproduces the RFC 4493 examples."""
    assert aes_cmac(bytes.fromhex(RFC4493_KEY), bytes.fromhex(message)).hex().upper() == mac, source


@pytest.mark.parametrize(
    ("data", "method1", "method2"),
    [
        ("", "0000000000000000", "8000000000000000"),
        ("12", "1200000000000000", "1280000000000000"),
        ("1122334455667788", "1122334455667788", "11223344556677888000000000000000"),
        ("11223344556677", "1122334455667700", "1122334455667780"),
    ],
)
def test_padding_methods(data: str, method1: str, method2: str) -> None:
    """Padding methods 1 and 2 follow ISO/IEC 9797-1 §6.3."""
    assert pad_iso9797_1(bytes.fromhex(data)).hex().upper() == method1
    assert pad_iso9797_2(bytes.fromhex(data)).hex().upper() == method2


@given(st.binary(max_size=80))
def test_padding_lengths(data: bytes) -> None:
    """Padded data is a whole number of blocks and starts with the data."""
    for padded in (pad_iso9797_1(data), pad_iso9797_2(data)):
        assert len(padded) % 8 == 0 and padded.startswith(data) and padded


def _des(key: bytes, block: bytes, decrypt: bool = False) -> bytes:
    cipher = Cipher(TripleDES(key * 3), modes.ECB())
    context = cipher.decryptor() if decrypt else cipher.encryptor()
    return context.update(block) + context.finalize()


def _reference_alg3(key: bytes, data: bytes, padding: int) -> bytes:
    """ISO/IEC 9797-1 §7.3 step by step: H_i = DES_KL(D_i ⊕ H_{i-1}); out = DES_KL(DES⁻¹_KR(H_q))."""
    padded = pad_iso9797_1(data) if padding == 1 else pad_iso9797_2(data)
    chain = bytes(8)
    for i in range(0, len(padded), 8):
        chain = _des(key[:8], bytes(a ^ b for a, b in zip(padded[i : i + 8], chain, strict=True)))
    return _des(key[:8], _des(key[8:], chain, decrypt=True))


@given(st.binary(min_size=16, max_size=16), st.binary(max_size=64), st.sampled_from([1, 2]))
def test_mac_alg3_matches_step_by_step_definition(key: bytes, data: bytes, padding: int) -> None:
    """The one-pass MAC equals the block-by-block definition of ISO/IEC 9797-1 MAC algorithm 3."""
    assert iso9797_mac_alg3(key, data, padding) == _reference_alg3(key, data, padding)


@pytest.mark.parametrize("length", [0, 8, 15, 24, 32])
def test_mac_alg3_rejects_wrong_key_length(length: int) -> None:
    """Only a 16-byte double-length key is accepted, and the message does not show the key."""
    key = bytes([0x5A]) * length
    with pytest.raises(InvalidKey) as info:
        iso9797_mac_alg3(key, b"data")
    assert "5A5A" not in str(info.value).upper()


def test_mac_alg3_rejects_bad_padding_and_length() -> None:
    """Padding other than 1 or 2, or a length outside 1–8, is refused."""
    with pytest.raises(InvalidInput):
        iso9797_mac_alg3(bytes(16), b"", padding=3)
    with pytest.raises(InvalidInput):
        iso9797_mac_alg3(bytes(16), b"", length=9)


def test_aes_cmac_rejects_des_key_length() -> None:
    """AES-CMAC refuses an 8-byte key."""
    with pytest.raises(InvalidKey):
        aes_cmac(bytes(8), b"")
