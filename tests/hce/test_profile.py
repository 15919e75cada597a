"""Card profiles: validation, defaults per kernel, and errors that never show secrets."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.pan import luhn_valid
from hce.errors import ProfileError
from hce.profile import KERNEL_DEFAULTS, CardProfile
from hce.testcard import builtin_profile_dict


def test_round_trip_through_json() -> None:
    """A profile's to_dict validates back to the same profile."""
    profile = CardProfile.from_dict(builtin_profile_dict("mastercard", now=0))
    assert CardProfile.from_json(json.dumps(profile.to_dict())) == profile


@pytest.mark.parametrize("kernel", ["visa", "mastercard"])
def test_kernel_defaults_fill_missing_overrides(kernel: str) -> None:
    """Without overrides, AIP, AFL, PDOL and CDOL1 come from the kernel's defaults."""
    profile = CardProfile.from_dict(builtin_profile_dict(kernel, now=0))
    assert profile.aip.hex().upper() == KERNEL_DEFAULTS[kernel]["aip"]
    assert profile.cdol1.hex().upper() == KERNEL_DEFAULTS[kernel]["cdol1"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pan",      "4761739001010011"),  # Luhn fails
        ("pan",      "47617390"),          # too short
        ("expiry",   "3013"),              # month 13
        ("aid",      "A000"),              # shorter than a RID
        ("aid",      "a0000000031010"),    # lowercase hex
        ("kernel",   "amex"),
        ("cvn",      "visa99"),
        ("psn",      "1"),
        ("afl",      "080101"),            # not 4-byte entries
        ("version",  2),
        ("label",    "X" * 17),
    ],
)
def test_invalid_fields_are_profile_errors(field: str, value: object) -> None:
    """Each invalid field is a ProfileError that names the field."""
    data = builtin_profile_dict("visa", now=0)
    data[field] = value
    with pytest.raises(ProfileError, match=field):
        CardProfile.from_dict(data)


def test_errors_and_repr_never_show_the_pan_or_keys() -> None:
    """A bad profile's message and a good profile's repr leave out the PAN and key values."""
    data = builtin_profile_dict("visa", now=0)
    key = data["luks"][0]["key"]
    data["luks"][0]["key"] = key[:-1]
    data["pan"] = data["pan"][:-1] + "9"
    with pytest.raises(ProfileError) as info:
        CardProfile.from_dict(data)
    assert "4761739001" not in str(info.value) and key[:10] not in str(info.value)
    profile = CardProfile.from_dict(builtin_profile_dict("visa", now=0))
    assert profile.pan not in repr(profile) and key not in repr(profile.luks)


def test_not_json_is_a_profile_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A file that is not JSON, or is missing, is a ProfileError."""
    path = tmp_path / "p.json"
    path.write_text("{")
    with pytest.raises(ProfileError):
        CardProfile.load(path)
    with pytest.raises(ProfileError):
        CardProfile.load(tmp_path / "missing.json")


@given(st.text(alphabet="0123456789", min_size=12, max_size=19))
def test_luhn_one_check_digit_in_ten_is_valid(digits: str) -> None:
    """Exactly one of the ten possible last digits passes the Luhn check (ISO/IEC 7812-1)."""
    assert sum(luhn_valid(digits[:-1] + str(d)) for d in range(10)) == 1
