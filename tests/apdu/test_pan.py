"""Tests for apdu.pan: the Luhn formula and PAN masking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.pan import luhn_check_digit, luhn_valid, mask_pan


def _luhn_reference(digits: str) -> bool:
    """The Luhn formula as ISO/IEC 7812-1 Annex B words it: double every second digit from the
    right, add the digits of the products, and the sum is a multiple of ten."""
    doubled = [
        sum(int(d) for d in str(int(c) * (2 if i % 2 else 1)))
        for i, c in enumerate(reversed(digits))
    ]
    return sum(doubled) % 10 == 0


@pytest.mark.parametrize(
    ("number",             "valid", "source"),
    [
        ("79927398713",      True,  "the worked example of the Luhn algorithm, Wikipedia 'Luhn algorithm'"),
        ("79927398710",      False, "same example with a wrong check digit"),
        ("4111111111111111", True,  "Visa test PAN published in payment gateway test-card tables"),
        ("5555555555554444", True,  "Mastercard test PAN published in payment gateway test-card tables"),
        ("378282246310005",  True,  "Amex test PAN published in payment gateway test-card tables"),
        ("4761739001010010", True,  "Visa ADVT test card 1 PAN"),
        ("4111111111111112", False, "a one-digit change"),
        ("",                 False, "empty"),
        ("4111 1111",        False, "not digits"),
        ("٤١١١",             False, "non-ASCII digits"),
    ],
)
def test_luhn_vectors(number: str, valid: bool, source: str) -> None:
    """Published numbers pass and altered ones fail."""
    assert luhn_valid(number) is valid


@given(st.text(alphabet="0123456789", min_size=1, max_size=19))
def test_luhn_matches_the_reference_formula(digits: str) -> None:
    """luhn_valid agrees with a literal reading of ISO/IEC 7812-1 Annex B."""
    assert luhn_valid(digits) == _luhn_reference(digits)


@given(st.text(alphabet="0123456789", min_size=0, max_size=18))
def test_check_digit_completes_a_valid_number(partial: str) -> None:
    """The check digit makes the number valid, and it is the only digit that does."""
    digit = luhn_check_digit(partial)
    assert luhn_valid(partial + digit)
    assert [d for d in "0123456789" if _luhn_reference(partial + d)] == [digit]


def test_check_digit_refuses_non_digits() -> None:
    """A partial number with a non-digit is an error, not a guess."""
    with pytest.raises(ValueError, match="digits"):
        luhn_check_digit("4111-1111")


@pytest.mark.parametrize(
    ("pan",                 "masked"),
    [
        ("4761739001010010",    "476173******0010"),
        ("378282246310005",     "378282*****0005"),
        ("6011000990139424123", "601100*********4123"),
        ("1234567890",          "**********"),
    ],
)
def test_mask_pan_keeps_first_six_and_last_four(pan: str, masked: str) -> None:
    """Display masking keeps the BIN and last four (PCI DSS 3.4), all of it for short numbers."""
    assert mask_pan(pan) == masked
