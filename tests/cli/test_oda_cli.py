"""``hcekit oda verify`` re-checks recorded sessions; ``hcekit tap`` shows the ODA result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from apdu.trace import read_trace
from cli.main import cli

TRACES = Path(__file__).resolve().parent.parent / "data" / "traces"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module", params=["visa", "mastercard"])
def recorded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A tap of the built-in card with a certificate chain, recorded unmasked."""
    path = tmp_path_factory.mktemp("oda") / f"{request.param}.jsonl"
    result = invoke("tap", "--kernel", request.param, "--oda", "--amount", "12.50", "--offline",
                    "--trace", str(path), "--unmasked", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["oda"]["status"] == "passed"
    return request.param, path


def test_tap_summary_shows_oda() -> None:
    """The human summary of a tap has an ODA line with the method, result and CA index."""
    result = invoke("tap", "--kernel", "mastercard", "--oda", "--amount", "1.00", "--offline")
    assert result.exit_code == 0
    assert "ODA" in result.stdout and "cda passed" in result.stdout and "CA index E1" in result.stdout


def test_verify_explains_every_step(recorded: tuple[str, Path]) -> None:
    """verify re-checks the recorded session: CA key, both certificates, ROCA checks, the signature."""
    kernel, path = recorded
    result = invoke("oda", "verify", "--trace", str(path))
    assert result.exit_code == 0, result.output
    assert ("fdda passed" if kernel == "visa" else "cda passed") in result.stdout
    for step in ("CA public key", "issuer certificate (90)", "ICC certificate (9F46)", "ROCA"):
        assert step in result.stdout


def test_verify_fails_on_a_changed_byte(recorded: tuple[str, Path], tmp_path: Path) -> None:
    """One byte changed in the recorded signature: exit 1 and the reason in the JSON."""
    _, path = recorded
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records:
        if record["dir"] == "R" and "9F4B" in record["hex"]:
            at = record["hex"].index("9F4B8180") + 8
            record["hex"] = record["hex"][:at] + f"{int(record['hex'][at:at + 2], 16) ^ 1:02X}" + \
                record["hex"][at + 2:]
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    assert len(read_trace(broken.read_text().splitlines())) == len(records)
    result = invoke("oda", "verify", "--trace", str(broken), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == "failed"


def test_verify_a_published_session_checks_the_real_issuer_certificate() -> None:
    """The published Mastercard session: the real issuer certificate recovers under production CA 05
    and its hash verifies; the PAN replaced in the published copy then fails the identifier check."""
    result = invoke("oda", "verify", "--trace", str(TRACES / "mastercard_mchip.pm3.txt"), "--format", "pm3",
                    "--date", "190601", "--json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 1
    assert doc["caIndex"] == "05" and doc["reason"] == "issuer_identifier"
