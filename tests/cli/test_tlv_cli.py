"""``hcekit tlv decode``."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import cli, main
from tests.cli.errorline import one_error_line

# source: GPO response of a Mastercard card, MichaelsPlayground/TalkToYourCreditCardPart7 docs
GPO_FORMAT2 = "771682021980941008010100100101011801020020010200"


def run(*args: str) -> tuple[int, str]:
    """Run the CLI and return its exit code and standard output."""
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout


def test_tree_shows_names_values_and_bits() -> None:
    """The tree names each tag, shows its value and explains AIP bits."""
    code, out = run("tlv", "decode", GPO_FORMAT2)
    assert code == 0
    assert "Response Message Template Format 2" in out
    assert "Application Interchange Profile" in out
    assert "1980" in out
    assert "CDA supported" in out


def test_json_nodes() -> None:
    """--json prints the documented node list: tag, name, length, uppercase value, children."""
    code, out = run("tlv", "decode", "--json", "77 09 9F2701 80 9F36 02 00 2a")
    assert code == 0
    nodes = json.loads(out)
    assert nodes[0]["tag"] == "77"
    assert nodes[0]["length"] == 9
    assert nodes[0]["value"] == "9F2701809F3602002A"
    assert [c["tag"] for c in nodes[0]["children"]] == ["9F27", "9F36"]
    child = nodes[0]["children"][0]
    assert child == {**child, "tag": "9F27", "length": 1, "value": "80"}
    assert "children" not in child
    assert "meaning" in child


def test_hex_may_be_split_into_words() -> None:
    """Bytes may be given as several words, with spaces or colons."""
    code, out = run("tlv", "decode", "--json", "9F27", "01", "80")
    assert code == 0
    assert json.loads(out)[0]["value"] == "80"


@pytest.mark.parametrize(
    ("args",                                   "code", "message"),
    [
        (["tlv", "decode", "9F2"],             2,      "odd number of digits"),
        (["tlv", "decode", "9F27XX"],          2,      "non-hex character"),
        (["tlv", "decode", "9F2705"],          1,      "not BER-TLV"),
        (["tlv", "decode", "--strict", "9F278101 80"], 1, "shortest form"),
    ],
)
def test_bad_input_is_one_error_line(
    args: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad hex or TLV prints one 'error:' line and exits non-zero, no traceback."""
    assert main(args) == code
    assert message in one_error_line(capsys)


def test_kernel_changes_tag_names() -> None:
    """--kernel picks the kernel's name for tags that depend on it."""
    _, visa = run("tlv", "decode", "--json", "--kernel", "visa", "9F66 02 07F0")
    _, mastercard = run("tlv", "decode", "--json", "--kernel", "mastercard", "9F66 02 07F0")
    assert json.loads(visa)[0]["name"] != json.loads(mastercard)[0]["name"]
