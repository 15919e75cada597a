"""Taps on a real reader with a real card or phone (run with `pytest -m hardware`; see hardware.md)."""

from __future__ import annotations

import os

import pytest

from terminal.config import Transaction
from terminal.outcome import Outcome
from terminal.tap import run_tap
from terminal.transports import open_transport

pytestmark = pytest.mark.hardware

READER = os.environ.get("HCEKIT_READER", "pcsc")


def test_tap_a_real_card() -> None:
    """A card or phone on the reader (HCEKIT_READER, default pcsc) reaches an outcome within the wait."""
    with open_transport(READER, wait=30) as transport:
        result = run_tap(transport, Transaction(amount=100))
    assert result.outcome.outcome in set(Outcome)
    assert result.timing.apdus[0].name == "SELECT"
