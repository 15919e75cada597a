"""``hcekit apdu decode``."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import cli, main
from tests.cli.errorline import one_error_line


def run_json(*args: str) -> dict:
    """Run ``apdu decode --json`` and return the parsed output."""
    result = CliRunner().invoke(cli, ["apdu", "decode", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def fields(info: dict) -> dict[str, str]:
    """The decoded fields as a name -> value dict."""
    return {f["name"]: f["value"] for f in info.get("fields", [])}


# sources: EMV 4.4 Book 1 §11.3 (SELECT), Book 3 §6.5.8 (GPO), §6.5.5 (GENERATE AC), Book 1 §11.2
# (READ RECORD), §6.5.7 (GET DATA); APDUs sent to a Visa card in MichaelsPlayground/TalkToYourCreditCardPart7
@pytest.mark.parametrize(
    ("hex",                                      "name",         "case", "expected"),
    [
        ("00A404000E325041592E5359532E444446303100", "SELECT",       "4S",   {"DF name": "2PAY.SYS.DDF01"}),
        ("00A4040007A000000003101000",               "SELECT",       "4S",   {"application": "Visa"}),
        ("00B2031400",                               "READ RECORD",  "2S",   {"record": "3", "SFI": "2"}),
        ("80CA9F3600",                               "GET DATA",     "2S",   {"tag": "9F36 Application Transaction Counter (ATC)"}),  # noqa: E501
        ("80AE900000",                               "GENERATE AC",  "2S",   {"cryptogram": "ARQC", "CDA requested": "yes"}),  # noqa: E501
        ("80AE4000021234",                           "GENERATE AC",  "3S",   {"cryptogram": "TC"}),
        ("0020008008241234FFFFFFFFFF",               "VERIFY",       "3S",   {"PIN": "plaintext"}),
        ("00C0000010",                               "GET RESPONSE", "2S",   {}),
    ],
)
def test_command_vectors(hex: str, name: str, case: str, expected: dict[str, str]) -> None:
    """Each command decodes to its name, case and parameters."""
    info = run_json(hex)
    assert (info["name"], info["case"]) == (name, case)
    assert fields(info).items() >= expected.items()


def test_verify_hides_the_pin_block() -> None:
    """VERIFY never shows the PIN block."""
    info = run_json("0020008008241234FFFFFFFFFF")
    assert "1234" not in json.dumps(info)


def test_gpo_template_decoded() -> None:
    """GET PROCESSING OPTIONS data is decoded as its 83 template."""
    info = run_json("80A8000002830000")
    assert info["tlv"][0]["tag"] == "83"
    assert info["lc"] == 2 and info["le"] == 256


def test_response_tlv_and_status_word() -> None:
    """A response's data is decoded as TLV and its status word explained."""
    info = run_json("--response", "7716820219809410080101001001010118010200200102009000")
    assert info["sw"] == "9000" and info["ok"]
    assert info["tlv"][0]["children"][0]["tag"] == "82"


def test_error_status_word() -> None:
    """A bare status word gives its meaning."""
    info = run_json("--response", "6A82")
    assert info["sw"] == "6A82" and not info["ok"]
    assert "not found" in info["meaning"]


def test_tree_output() -> None:
    """Without --json a tree with the command name and fields is printed."""
    result = CliRunner().invoke(cli, ["apdu", "decode", "00B2010C00"])
    assert result.exit_code == 0
    assert "READ RECORD" in result.stdout and "SFI: 1" in result.stdout


@pytest.mark.parametrize(
    ("args",                                           "code", "message"),
    [
        (["apdu", "decode", "00A4"],                   1,      "not a command APDU"),
        (["apdu", "decode", "00A4040005A0000000"],     1,      "Lc = 5"),
        (["apdu", "decode", "--response", "90"],       1,      "not a response APDU"),
        (["apdu", "decode", "00A"],                    2,      "odd number of digits"),
        (["apdu", "decode"],                           2,      "Missing argument"),
    ],
)
def test_bad_input_is_one_error_line(
    args: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Malformed APDUs print one 'error:' line and exit non-zero."""
    assert main(args) == code
    assert message in one_error_line(capsys)
