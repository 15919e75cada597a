"""Replays of real cards' published exchanges (tests/data/traces/README.md names each source)."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminal.config import Transaction
from terminal.outcome import Outcome
from terminal.tap import run_tap
from terminal.transports.replay import ReplayTransport

TRACES = Path(__file__).resolve().parents[1] / "data" / "traces"


@pytest.mark.parametrize(
    ("trace",                    "outcome",                 "kernel",     "last"),
    [
        # MichaelsPlayground/TalkToYourCreditCardPart7: a Lloyds Visa debit card, qVSDC
        ("visa_qvsdc.jsonl",       Outcome.ONLINE_REQUEST,    "visa",       "READ RECORD"),
        # same source: a Mastercard credit card, M/Chip; the session never reached GENERATE AC
        ("mastercard_mchip.jsonl", Outcome.END_APPLICATION,   "mastercard", "GENERATE AC"),
    ],
)
def test_real_card_replay(trace: str, outcome: Outcome, kernel: str, last: str) -> None:
    """The kernel walks a real card's recorded answers to the outcome the recording allows."""
    path = TRACES / trace
    if not path.exists():
        pytest.skip(f"{path} is not there")
    result = run_tap(ReplayTransport.from_file(path), Transaction(amount=1250))
    assert (result.outcome.outcome, result.outcome.kernel) == (outcome, kernel)
    assert result.timing.apdus[-1].name == last


def test_real_visa_cryptogram_reaches_field_55() -> None:
    """The real Visa card's ARQC, CID, ATC and IAD land in the authorization block."""
    path = TRACES / "visa_qvsdc.jsonl"
    if not path.exists():
        pytest.skip(f"{path} is not there")
    out = run_tap(ReplayTransport.from_file(path), Transaction(amount=1250)).outcome
    assert out.data[0x9F27] == b"\x80"
    assert out.data[0x9F36] == bytes.fromhex("03A4")
    assert out.data[0x9F10] == bytes.fromhex("06040A03A02000")
    assert out.authorization_data.startswith(b"\x9f\x26\x08")
