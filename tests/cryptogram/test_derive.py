"""ICC master key derivation (options A, B, C), DES parity and session keys."""

from __future__ import annotations

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from cryptogram.derive import (
    adjust_parity,
    derive_icc_mk,
    derive_icc_mk_a,
    derive_icc_mk_b,
    derive_icc_mk_c,
    derive_session_key_emv,
    derive_session_key_mastercard,
)
from cryptogram.errors import InvalidInput, InvalidKey

IMK = "0123456789ABCDEFFEDCBA9876543210"


def kcv(key: bytes) -> str:
    """Key check value: the first 2 bytes of the key encrypting a zero block."""
    context = Cipher(TripleDES(key + key[:8]), modes.ECB()).encryptor()
    return context.update(bytes(8)).hex().upper()[:4]


@pytest.mark.parametrize(
    ("option", "pan", "psn", "mk", "source"),
    [
        ("a", "99012345678901234", "45", "67F8292358083E5EA7AB7FDA58D53B6B", "pyemv kd module docstring"),
        ("b", "12345678901234567", "01", "AD406D7F6D7570916D75E5DCAB8CF737", "pyemv kd.derive_icc_mk_b doc"),
    ],
)
def test_icc_mk_vectors(option: str, pan: str, psn: str, mk: str, source: str) -> None:
    """Options A and B reproduce published master keys."""
    derive = derive_icc_mk_a if option == "a" else derive_icc_mk_b
    assert derive(bytes.fromhex(IMK), pan, psn).hex().upper() == mk, source


@pytest.mark.parametrize(
    ("derivation", "kcv_value", "source"),
    [
        ("mk", "BAB0", "pyemv tests/test_cvn_hsm.py (HSM-checked): ICC MK AC of PAN 1234567890123456"),
        ("emv", "22C8", "pyemv tests/test_cvn_hsm.py: common session key, ATC 001C"),
        ("mastercard", "2FD5", "pyemv tests/test_cvn_hsm.py: Mastercard session key, ATC 001C, UN ABCDEF12"),
    ],
)
def test_hsm_checked_key_check_values(derivation: str, kcv_value: str, source: str) -> None:
    """Derived keys have the key check values an HSM computed."""
    mk = derive_icc_mk_a(bytes.fromhex(IMK), "1234567890123456", "00")
    key = {
        "mk": mk,
        "emv": derive_session_key_emv(mk, bytes.fromhex("001C")),
        "mastercard": derive_session_key_mastercard(mk, bytes.fromhex("001C"), bytes.fromhex("ABCDEF12")),
    }[derivation]
    assert kcv(key) == kcv_value, source


def test_common_session_key_vector() -> None:
    """The common session key of pyemv's kd.derive_common_sk docstring (R = 001C‖00…)."""
    sk = derive_session_key_emv(bytes.fromhex(IMK), bytes.fromhex("001C"))
    assert sk.hex().upper() == "E9FB384AF807B940FEDCEA613461B0C4"


@given(st.binary(max_size=32))
def test_parity_is_odd_and_idempotent(key: bytes) -> None:
    """Every adjusted byte has odd parity and adjusting twice changes nothing."""
    adjusted = adjust_parity(key)
    assert all(bin(b).count("1") % 2 == 1 for b in adjusted)
    assert adjust_parity(adjusted) == adjusted
    assert all((a ^ b) <= 1 for a, b in zip(adjusted, key, strict=True))


@given(st.binary(min_size=16, max_size=16), st.from_regex(r"[0-9]{12,16}", fullmatch=True),
       st.from_regex(r"[0-9]{2}", fullmatch=True))
def test_option_b_is_option_a_up_to_16_digits(imk: bytes, pan: str, psn: str) -> None:
    """Option B equals option A for PANs of 16 digits or fewer (EMV Book 2 A1.4.2)."""
    assert derive_icc_mk_b(imk, pan, psn) == derive_icc_mk_a(imk, pan, psn)
    assert derive_icc_mk(imk, pan, psn) == derive_icc_mk_a(imk, pan, psn)


@given(st.sampled_from([16, 24, 32]), st.from_regex(r"[0-9]{12,19}", fullmatch=True))
def test_option_c_lengths_and_halves(length: int, pan: str) -> None:
    """AES master keys have the IMK's length; a 32-byte key's halves are AES(Y) and AES(Y ⊕ FF…)."""
    imk = bytes(range(length))
    mk = derive_icc_mk_c(imk, pan, "01")
    assert len(mk) == length
    assert derive_icc_mk(imk, pan, "01", algorithm="aes") == mk
    if length == 32:
        assert mk[:16] == derive_icc_mk_c(imk, pan, "01", length=16)


@given(st.binary(min_size=16, max_size=16), st.binary(min_size=2, max_size=2))
def test_aes_session_key_is_one_block(mk: bytes, atc: bytes) -> None:
    """An AES-128 session key is AES(MK)[ATC‖00…00] (EMV Book 2 A1.3.1)."""
    expected = Cipher(algorithms.AES(mk), modes.ECB()).encryptor().update(atc + bytes(14))
    assert derive_session_key_emv(mk, atc, algorithm="aes") == expected


@pytest.mark.parametrize(
    ("pan", "psn"),
    [("41111111111111X1", "00"), ("4111 1111 1111 1111", "00"), ("1234567", "00"), ("4" * 20, "00"),
     ("4111111111111111", "0"), ("4111111111111111", "AB"), ("４１１１１１１１１１１１", "00")],
)
def test_bad_pan_or_psn_is_invalid_input(pan: str, psn: str) -> None:
    """A PAN or PSN that is not the right number of ASCII digits is refused without echoing it."""
    with pytest.raises(InvalidInput) as info:
        derive_icc_mk_a(bytes(16), pan, psn)
    assert pan not in str(info.value)


@pytest.mark.parametrize("length", [0, 8, 15, 17, 32])
def test_wrong_imk_length_is_invalid_key(length: int) -> None:
    """A triple DES IMK must be 16 or 24 bytes."""
    with pytest.raises(InvalidKey):
        derive_icc_mk_a(bytes(length), "4111111111111111")


@pytest.mark.parametrize("atc", [b"", b"\x01", b"\x00\x01\x02"])
def test_wrong_atc_length_is_invalid_input(atc: bytes) -> None:
    """The ATC must be 2 bytes."""
    with pytest.raises(InvalidInput):
        derive_session_key_emv(bytes(16), atc)


def test_mastercard_un_must_be_four_bytes() -> None:
    """The unpredictable number must be 4 bytes."""
    with pytest.raises(InvalidInput):
        derive_session_key_mastercard(bytes(16), b"\x00\x01", b"\x00")


def test_24_byte_imk_is_accepted() -> None:
    """A three-key triple DES IMK works, and K1‖K2‖K1 gives the two-key result."""
    imk = bytes.fromhex(IMK)
    assert derive_icc_mk_a(imk + imk[:8], "4111111111111111") == derive_icc_mk_a(imk, "4111111111111111")
