"""JSON log lines: one object per line, PANs and Track 2 equivalent data masked."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from apdu.pan import luhn_valid
from tsp_backend.jsonlog import JSONFormatter, mask

PAN = "4761739001010010"
TRACK2_HEX = f"{PAN}D30122011143878089F"
TRACK2_TEXT = f";{PAN}=30122011143878089?"


def test_pan_and_track2_never_reach_the_line() -> None:
    """A message, an extra field and a traceback holding a PAN and Track 2 come out masked."""
    assert luhn_valid(PAN)
    record = logging.LogRecord("tsp_backend", logging.WARNING, __file__, 1, "tap %s track %s", None, None)
    record.args = (PAN, TRACK2_HEX)
    record.card = {"pan": PAN, "track2": TRACK2_TEXT, "pan_int": int(PAN), "raw": bytes.fromhex("5A08" + PAN)}
    try:
        raise ValueError(f"bad card {PAN}")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = JSONFormatter().format(record)
    assert "\n" not in line
    document = json.loads(line)
    assert PAN not in line
    assert "30122011143878089" not in line, "the discretionary data is masked too"
    assert "143878089" not in line
    assert document["message"] == "tap 476173******0010 track 476173******0010D3012201***********"
    assert document["card"]["pan"] == "476173******0010"
    assert document["card"]["pan_int"] == "476173******0010"
    assert PAN not in document["card"]["raw"]
    assert "476173******0010" in document["exc"]
    assert {"time", "level", "logger", "message"} <= set(document)
    assert document["level"] == "warning" and document["logger"] == "tsp_backend"
    assert document["time"].endswith("Z")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("pan 4761739001010010 ok", "pan 476173******0010 ok"),
        ("19 digits 4000000000000000006", "19 digits 400000*********0006"),
        ("13 digits 4222222222222 x", "13 digits 422222***2222 x"),
        ("hex 5A084761739001010010 end", "hex 5A084761********0010 end"),
        ("hex 9F2604761739001010010FF", "hex 9F260476*********0010FF"),
        ("not luhn 4761739001010011", "not luhn 4761739001010011"),
        ("short 476173900101", "short 476173900101"),
        ("track2 4761739001010010=3012201", "track2 476173******0010=3012201"),
    ],
)
def test_mask_table(text: str, masked: str) -> None:
    """PANs in runs of digits (alone, in a hex dump) and Track 2 are masked; other numbers are not."""
    assert mask(text) == masked


def test_log_json_switch_emits_masked_json_lines() -> None:
    """``HCEKIT_LOG_JSON=1``: the application factory's switch makes stderr JSON lines, PAN-free."""
    program = (
        "import logging\n"
        "from tsp_backend.jsonlog import install_from_env\n"
        "assert install_from_env()\n"
        f"logging.getLogger('tsp_backend').warning('declined %s', '{TRACK2_HEX}', extra={{'pan': '{PAN}'}})\n"
    )
    env = {**os.environ, "HCEKIT_LOG_JSON": "1"}
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert PAN not in lines[0]
    document = json.loads(lines[0])
    assert document["pan"] == "476173******0010"
    assert document["message"].startswith("declined 476173******0010D3012201")
