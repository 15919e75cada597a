"""The card's PAN on an outcome follows apdu.pan.card_pan: 5A first, 57 only without 5A."""

from __future__ import annotations

import pytest

from terminal.outcome import KernelOutcome, Outcome, pan_of

VISA = "4761739001010010"   # Visa ADVT test card 1
OTHER = "4111111111111111"  # a second published test PAN


@pytest.mark.parametrize(
    ("data",                                                              "pan"),
    [
        ({0x5A: bytes.fromhex(VISA)},                                      VISA),
        ({0x57: bytes.fromhex(f"{VISA}D2512201000F")},                    VISA),
        ({0x57: bytes.fromhex(f"{OTHER}D2512201000F"), 0x5A: bytes.fromhex(VISA)}, VISA),
        ({0x9F26: bytes(8)},                                               None),
    ],
)
def test_pan_of(data: dict[int, bytes], pan: str | None) -> None:
    """5A is the PAN, also when 57 names another (the outcome shows the Application PAN)."""
    assert pan_of(data) == pan


def test_masked_pan_on_the_outcome() -> None:
    """People see the first six and last four digits of that PAN."""
    outcome = KernelOutcome(Outcome.DECLINED, "", data={0x57: bytes.fromhex(f"{VISA}D2512201000F")})
    assert outcome.pan_masked == "476173******0010"
