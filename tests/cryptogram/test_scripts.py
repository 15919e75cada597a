"""Issuer script secure messaging against pyemv's published examples and implementation."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cryptogram.scripts import decipher, encipher, script_command, script_mac, verify_script

sm = pytest.importorskip("pyemv.sm")
KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


@pytest.mark.parametrize(("command", "atc", "arqc", "mac"), [
    ("8424000008", "", "", "0BFFF5DF3FAA24E1"),
    ("8424000008", "FFFF", "1234567890123456", "E07B8DF1B4184282"),
])
def test_mac_published_examples(command: str, atc: str, arqc: str, mac: str) -> None:
    """pyemv 1.5.0 ``pyemv/sm.py`` doctests (knovichikhin/pyemv): the command MAC."""
    got = script_mac(KEY, bytes.fromhex(command), bytes.fromhex(atc), bytes.fromhex(arqc), b"")
    assert got.hex().upper() == mac


@pytest.mark.parametrize(("data", "scheme", "expected"), [
    ("249999FFFFFFFFFF", "emv", "5A862D1381CCB94822CFDD706A376178"),
    ("241234FFFFFFFFFF", "mastercard", "9859240AE52820C3"),
])
def test_encipherment_published_examples(data: str, scheme: str, expected: str) -> None:
    """pyemv's doctests: an ISO 9564 format 2 PIN block enciphered for PIN CHANGE."""
    assert encipher(KEY, bytes.fromhex(data), scheme).hex().upper() == expected
    assert decipher(KEY, bytes.fromhex(expected), scheme) == bytes.fromhex(data)


@given(st.binary(min_size=0, max_size=40), st.sampled_from(["emv", "visa", "mastercard"]))
def test_encipherment_agrees_with_pyemv(data: bytes, scheme: str) -> None:
    """Any data, each padding scheme: the same bytes as pyemv, and it deciphers back."""
    kind = {"emv": sm.EncryptionType.EMV, "visa": sm.EncryptionType.VISA,
            "mastercard": sm.EncryptionType.MASTERCARD}[scheme]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = sm.encrypt_command_data(KEY, data, kind) if data else None
    if theirs is not None:
        assert encipher(KEY, data, scheme) == theirs
        assert decipher(KEY, theirs, scheme) == data


def test_script_round_trip_and_tamper() -> None:
    """A MACed command verifies; any changed byte or the wrong ARQC does not."""
    atc, arqc = bytes.fromhex("0007"), bytes.fromhex("1122334455667788")
    command = script_command(0x84, 0x1E, 0, 0, mac_key=KEY, atc=atc, cryptogram=arqc)
    assert verify_script(command, mac_key=KEY, atc=atc, cryptogram=arqc) == b""
    assert verify_script(command, mac_key=KEY, atc=atc, cryptogram=bytes(8)) is None
    for i in range(len(command)):
        changed = command[:i] + bytes([command[i] ^ 1]) + command[i + 1:]
        assert verify_script(changed, mac_key=KEY, atc=atc, cryptogram=arqc) is None
