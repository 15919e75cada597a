"""``hcekit trace show`` and ``hcekit trace import``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from apdu.trace import TraceRecord, dumps, read_trace
from cli.main import cli, main
from tests.cli.errorline import one_error_line

TRACES = Path(__file__).resolve().parent.parent / "data" / "traces"


def invoke(*args: str):
    """Run the CLI with separate stdout and stderr."""
    return CliRunner().invoke(cli, list(args))


def test_show_tree_with_timing_and_names() -> None:
    """show prints every exchange with command names and status words."""
    result = invoke("trace", "show", str(TRACES / "visa_qvsdc.jsonl"))
    assert result.exit_code == 0
    out = result.stdout
    assert out.count("C→") == 7 and out.count("←R") == 7
    assert "GET PROCESSING OPTIONS" in out and "9000" in out


def test_show_splits_gpo_data_with_the_pdol() -> None:
    """GPO data is split into PDOL fields learnt from the SELECT answer."""
    result = invoke("trace", "show", "--json", str(TRACES / "visa_qvsdc.jsonl"))
    entries = json.loads(result.stdout)
    gpo = entries[4]["command"]
    assert gpo["dol_name"] == "PDOL"
    tags = [n["tag"] for n in gpo["dol"]]
    assert tags == ["9F66", "9F02", "9F03", "9F1A", "95", "5F2A", "9A", "9C", "9F37"]


def test_show_splits_generate_ac_with_cdol1(tmp_path: Path) -> None:
    """A GENERATE AC after a record holding CDOL1 is split into CDOL1 fields."""
    records = read_trace((TRACES / "mastercard_mchip.jsonl").read_text().splitlines())
    # CDOL1 of the card: 9F02 6, 9F03 6, 9F1A 2, 95 5, 5F2A 2, 9A 3, 9C 1, 9F37 4,
    # 9F35 1, 9F45 2, 9F4C 8, 9F34 3
    cdol1_data = bytes.fromhex(
        "000000001500" "000000000000" "0826" "0000000000" "0826" "260401" "00" "12345678" "22" "0000"
        "0000000000000000" "000000"
    )
    command = bytes.fromhex("80AE8000") + bytes([len(cdol1_data)]) + cdol1_data + b"\x00"
    records.append(TraceRecord("C", command))
    path = tmp_path / "gac.jsonl"
    path.write_text(dumps(records))
    entries = json.loads(invoke("trace", "show", "--json", str(path)).stdout)
    gac = entries[-1]["command"]
    assert gac["dol_name"] == "CDOL1"
    assert gac["dol"][7] == {**gac["dol"][7], "tag": "9F37", "value": "12345678"}


def test_show_is_masked_unless_unmasked(tmp_path: Path) -> None:
    """A clear PAN in the file is masked on screen unless --unmasked."""
    path = tmp_path / "clear.jsonl"
    path.write_text(dumps([TraceRecord("C", bytes.fromhex("00B2010C00")),
                           TraceRecord("R", bytes.fromhex("700A5A0847617390010100109000"))], masked=False))
    assert "4761739001010010" not in invoke("trace", "show", "--json", str(path)).stdout
    assert "4761739001010010" in invoke("trace", "show", "--json", "--unmasked", str(path)).stdout


def test_show_json_has_timing(tmp_path: Path) -> None:
    """--json entries carry t, sw and ms as recorded."""
    path = tmp_path / "timed.jsonl"
    path.write_text(dumps([TraceRecord("C", bytes.fromhex("80CA9F3600"), t=0.0),
                           TraceRecord("R", bytes.fromhex("9F3602002A9000"), t=0.004, ms=3.5)]))
    entries = json.loads(invoke("trace", "show", "--json", str(path)).stdout)
    assert entries[1]["ms"] == 3.5 and entries[1]["sw"] == "9000"
    assert "card 3.5 ms" in invoke("trace", "show", str(path)).stdout


@pytest.mark.parametrize(
    ("fmt",       "source",                       "expected"),
    [
        ("pcsc-spy", "visa_qvsdc.pcsc-spy.txt",    "visa_qvsdc.jsonl"),
        ("pm3",      "mastercard_mchip.pm3.txt",   "mastercard_mchip.jsonl"),
    ],
)
def test_import_writes_the_masked_trace(fmt: str, source: str, expected: str, tmp_path: Path) -> None:
    """import converts the tool's output into the shipped masked JSON Lines trace."""
    out = tmp_path / "out.jsonl"
    result = invoke("trace", "import", "--format", fmt, str(TRACES / source), "-o", str(out))
    assert result.exit_code == 0, result.output
    got = [(r.dir, r.raw) for r in read_trace(out.read_text().splitlines())]
    want = [(r.dir, r.raw) for r in read_trace((TRACES / expected).read_text().splitlines())]
    assert got == want
    assert "(masked)" in result.stderr


def test_import_unmasked_keeps_the_test_pan(tmp_path: Path) -> None:
    """--unmasked keeps the data as the tool recorded it."""
    out = tmp_path / "out.jsonl"
    invoke("trace", "import", "--format", "pcsc-spy", str(TRACES / "visa_qvsdc.pcsc-spy.txt"),
           "-o", str(out), "--unmasked")
    assert "4761739001010010" in out.read_text()


@pytest.mark.parametrize(
    ("args",                                                                      "code", "message"),
    [
        (["trace", "show", "/nonexistent/trace.jsonl"],                           1,      "cannot read"),
        (["trace", "import", "--format", "pm3", "/nonexistent/x.txt"],            1,      "cannot read"),
        (["trace", "import", "--format", "wireshark", "x.txt"],                   2,      "--format"),
        (["trace", "import", "--format", "pm3", str(TRACES / "visa_qvsdc.jsonl")], 1,     "no APDUs found"),
    ],
)
def test_bad_input_is_one_error_line(
    args: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unreadable files, unknown formats and empty imports print one 'error:' line."""
    assert main(args) == code
    assert message in one_error_line(capsys)


def test_show_bad_line_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad trace line is reported with its number."""
    path = tmp_path / "bad.jsonl"
    path.write_text('{"dir": "C", "hex": "00B2010C00"}\n{"dir": "R", "hex": "9"}\n')
    assert main(["trace", "show", str(path)]) == 1
    assert "line 2" in capsys.readouterr().err


def test_show_binary_file_is_one_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A binary file gives one error line, not a traceback."""
    path = tmp_path / "trace.bin"
    path.write_bytes(bytes(range(256)))
    assert main(["trace", "show", str(path)]) == 1
    one_error_line(capsys)
