"""``hcekit crypto``: one hex line by default, every intermediate with --json, one-line errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from apdu.tlv import encode, tlv
from cli.main import cli, main

IMK = "0123456789ABCDEFFEDCBA9876543210"
PAN = "1234567890123456"

# pyemv tests/test_cvn_hsm.py, test_visa_cvn18 (HSM-checked): ATC 001C, ARQC 7A788EA6B8A3E733.
VISA18 = {
    0x9F02: "000000004000", 0x9F03: "000000000000", 0x9F1A: "0124", 0x95: "8000048000", 0x5F2A: "0124",
    0x9A: "191105", 0x9C: "01", 0x9F37: "52BF4585", 0x82: "1800", 0x9F36: "001C", 0x9F10: "06011203A0B800",
}


def field55(values: dict[int, str]) -> str:
    """The TLV block of ``values`` as hex."""
    return encode([tlv(tag, bytes.fromhex(value)) for tag, value in values.items()]).hex().upper()


def run(*args: str) -> str:
    """Run ``hcekit crypto …`` and return its standard output, asserting success."""
    result = CliRunner().invoke(cli, ["crypto", *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(
    ("args", "line", "source"),
    [
        (["derive-mk", "--imk", IMK, "--pan", "99012345678901234", "--psn", "45", "--option", "a"],
         "67F8292358083E5EA7AB7FDA58D53B6B", "pyemv kd module docstring"),
        (["derive-mk", "--imk", IMK, "--pan", "12345678901234567", "--psn", "01"],
         "AD406D7F6D7570916D75E5DCAB8CF737", "pyemv kd.derive_icc_mk_b docstring"),
        (["session-key", "--mk", IMK, "--atc", "001C"],
         "E9FB384AF807B940FEDCEA613461B0C4", "pyemv kd.derive_common_sk docstring"),
        (["ac", "--key", "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB", "--padding", "2", "--data",
          "000000002000 000000000000 0124 0000008000 0124 110309 00 3804823E 5800 0001"],
         "3B76CF10FECD8789", "pyemv ac.generate_ac docstring"),
        (["arpc", "--key", "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB", "--arqc", "1234567890ABCDEF", "--arc", "0000"],
         "F5E6F44147E2F1B0", "pyemv ac.generate_arpc_1 docstring"),
        (["arpc", "--key", "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB", "--arqc", "1234567890ABCDEF",
          "--csu", "00000000"],
         "9308BEBC", "pyemv ac.generate_arpc_2 docstring"),
        (["arqc", "--cvn", "visa18", "--imk", IMK, "--pan", PAN, "--psn", "00", "--tlv", field55(VISA18)],
         "7A788EA6B8A3E733", "pyemv tests/test_cvn_hsm.py test_visa_cvn18"),
    ],
)
def test_one_uppercase_hex_line(args: list[str], line: str, source: str) -> None:
    """Each command prints exactly its result as one uppercase hex line."""
    assert run(*args) == line + "\n", source


def test_mastercard_session_key_by_un() -> None:
    """--un selects the Mastercard derivation; its KCV is the HSM-checked 2FD5…."""
    mk = run("derive-mk", "--imk", IMK, "--pan", PAN).strip()
    out = json.loads(run("session-key", "--mk", mk, "--atc", "001C", "--un", "ABCDEF12", "--json"))
    assert out["method"] == "mastercard" and out["session_key_kcv"].startswith("2FD5")
    assert out["r"] == "001C0000ABCDEF12"


def test_arqc_json_shows_every_intermediate() -> None:
    """--json gives the elements, the IAD fields, the exact input and whether 9F26 matches."""
    values = {**VISA18, 0x9F26: "7A788EA6B8A3E733"}
    args = ["arqc", "--cvn", "visa18", "--imk", IMK, "--pan", PAN, "--tlv", field55(values), "--json"]
    out = json.loads(run(*args))
    assert out["arqc"] == out["result"] == "7A788EA6B8A3E733" and out["matches_card"] is True
    assert out["input_data"].endswith("06011203A0B800")
    assert out["padded_input"].startswith(out["input_data"])
    assert out["padded_input"][len(out["input_data"])] == "8"
    assert [e["tag"] for e in out["elements"]][-2:] == ["9F36", "9F10"]
    assert out["iad"]["cvr"] == "03A0B800" and out["mk_kcv"].startswith("BAB0")
    assert IMK not in json.dumps(out)


def test_arqc_with_a_limited_use_key_from_the_iad() -> None:
    """When the IAD carries a LUK index, the ARQC is recomputed with that limited-use key."""
    from cryptogram import derive_icc_mk, derive_luk, profile

    cvn = profile("visa22")
    values = {tag: bytes.fromhex(value) for tag, value in VISA18.items()}
    values[0x9F10] = cvn.build_iad(bytes(5), luk_index=3)
    luk = derive_luk(derive_icc_mk(bytes.fromhex(IMK), PAN), 3)
    expected = cvn.generate(luk, values).cryptogram.hex().upper()
    block = encode([tlv(tag, value) for tag, value in values.items()]).hex()
    out = json.loads(run("arqc", "--cvn", "visa22", "--imk", IMK, "--pan", PAN, "--tlv", block, "--json"))
    assert out["luk_index"] == 3 and out["arqc"] == expected


def test_luk_command() -> None:
    """hcekit crypto luk prints LUK_i of a token master key."""
    from cryptogram import derive_luk

    assert run("luk", "--tmk", IMK, "--index", "7").strip() == derive_luk(bytes.fromhex(IMK), 7).hex().upper()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["derive-mk", "--imk", IMK[:-2], "--pan", PAN], 1, "must be 16 or 24 bytes"),
        (["derive-mk", "--imk", IMK[:-1], "--pan", PAN], 2, "odd number of digits"),
        (["derive-mk", "--imk", IMK, "--pan", "4111-1111-1111-1111"], 2, "PAN must be decimal digits"),
        (["session-key", "--mk", IMK, "--atc", "01"], 1, "ATC must be 2 bytes"),
        (["session-key", "--mk", IMK, "--atc", "0001", "--method", "mastercard"], 1, "needs --un"),
        (["arpc", "--key", IMK, "--arqc", "1234567890ABCDEF"], 2, "exactly one of --arc"),
        (["arqc", "--cvn", "visa18", "--imk", IMK, "--pan", PAN, "--tlv", "9F0206"], 1, "not BER-TLV"),
        (["arqc", "--cvn", "visa18", "--imk", IMK, "--pan", PAN, "--tlv", "9F360200 01"], 1, "missing data"),
        (["ac", "--key", "00" * 15, "--data", "00"], 1, "key must be 16"),
    ],
)
def test_errors_are_one_line(
    args: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad input gives one 'error:' line on stderr, a non-zero exit, and never echoes a key."""
    assert main(["crypto", *args]) == code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert IMK[:16] not in captured.err and captured.out == ""
