"""Tests for apdu.pan: the Luhn formula, PAN masking, and the PAN of 5A and Track 2 (57)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.errors import APDUError, EncodeError, PanMismatch
from apdu.pan import card_pan, encode_track2, luhn_check_digit, luhn_valid, mask_pan, split_track2, track2_pan


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


# --- where the card gives its PAN: 5A and Track 2 Equivalent Data (57), EMV 4.4 Book 3 Annex A

VISA = "4761739001010010"      # Visa ADVT test card 1
AMEX = "378282246310005"       # Amex test PAN of payment gateways' test-card tables
PAN_5A = bytes.fromhex(VISA)
TRACK2 = bytes.fromhex(f"{VISA}D25122010000000000000F")   # ISO/IEC 7813: PAN D YYMM SC DD, F pad


@pytest.mark.parametrize(
    ("data",                                  "pan"),
    [
        (TRACK2,                                 VISA),
        (bytes.fromhex(f"{AMEX}D2512201000"),  AMEX),
        (bytes.fromhex(VISA),                    None),   # no separator
        (bytes.fromhex("D2512201"),             None),   # no PAN before it
        (bytes.fromhex("12A4D25122"),           None),   # not digits
    ],
)
def test_track2_pan(data: bytes, pan: str | None) -> None:
    """The PAN of track 2 is the digits before the separator D (ISO/IEC 7813)."""
    assert track2_pan(data) == pan


@pytest.mark.parametrize(
    ("values",                                         "pan"),
    [
        ({0x5A: PAN_5A},                                  VISA),   # 5A is the PAN
        ({0x57: TRACK2},                                  VISA),   # 57 only when 5A is absent
        ({0x5A: PAN_5A, 0x57: TRACK2},                    VISA),   # both, agreeing
        ({0x5A: bytes.fromhex(AMEX + "F")},               AMEX),   # cn padding removed
        ({},                                              None),
        ({0x5A: b""},                                     None),
        ({0x5A: b"", 0x57: TRACK2},                       VISA),   # an empty 5A gives no PAN
    ],
)
def test_card_pan(values: dict[int, bytes], pan: str | None) -> None:
    """5A is the PAN; the PAN of 57 is used only when 5A gives none."""
    assert card_pan(values) == pan


def test_card_pan_refuses_two_different_pans() -> None:
    """When 5A and the PAN of 57 differ the card contradicts itself: PanMismatch names both."""
    other = bytes.fromhex("4111111111111111D25122010000000000000F")
    with pytest.raises(PanMismatch) as caught:
        card_pan({0x57: other, 0x5A: PAN_5A})
    assert (caught.value.pan, caught.value.track2_pan) == (VISA, "4111111111111111")
    assert isinstance(caught.value, APDUError)


@pytest.mark.parametrize(
    ("pan",  "tail",      "encoded"),
    [
        (VISA, "2512201",   f"{VISA}D2512201"),
        (AMEX, "251220100", f"{AMEX}D251220100F"),
    ],
)
def test_encode_track2(pan: str, tail: str, encoded: str) -> None:
    """Track 2 Equivalent Data is PAN, D, the rest, padded with one F to whole bytes."""
    assert encode_track2(pan, tail).hex().upper() == encoded
    assert track2_pan(encode_track2(pan, tail)) == pan


@pytest.mark.parametrize(("pan", "tail"), [("", "2512"), ("4761A", "2512"), (VISA, "25D2"), ("1" * 20, "")])
def test_encode_track2_refuses(pan: str, tail: str) -> None:
    """A PAN of 1 to 19 digits and a digit tail, or EncodeError."""
    with pytest.raises(EncodeError):
        encode_track2(pan, tail)


def test_track2_pan_reads_only_the_field_before_the_separator() -> None:
    """A masked or odd tail (F inside the discretionary data) leaves the PAN readable; only the
    mag-stripe reader, which needs the tail's digits, refuses it. Padding may be several Fs."""
    masked = bytes.fromhex("4761739001010010D2512201FFFF12")
    assert track2_pan(masked) == "4761739001010010"
    assert split_track2(masked) is None
    assert split_track2(bytes.fromhex("5413330056003511D1412101067750500FFF")) == (
        "5413330056003511", "1412101067750500")
