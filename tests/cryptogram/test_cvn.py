"""Cryptogram version profiles: published ARQC/ARPC values, round trips, IAD layouts."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cryptogram.cvn import COMMON_ELEMENTS, ELEMENT_LENGTHS, IAD, PROFILES, profile, profile_for_iad
from cryptogram.errors import InvalidInput

IMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
PAN = "1234567890123456"

VISA_TERMINAL = {  # pyemv tests/test_cvn_hsm.py, test_visa_cvn10 / test_visa_cvn18
    0x9F02: "000000004000", 0x9F03: "000000000000", 0x9F1A: "0124", 0x95: "8000048000", 0x5F2A: "0124",
    0x9A: "191105", 0x9C: "01", 0x9F37: "52BF4585", 0x82: "1800", 0x9F36: "001C",
}
MC_TERMINAL = {  # pyemv tests/test_cvn_hsm.py, test_mastercard_cvn16 / cvn17
    0x9F02: "000000009999", 0x9F03: "000000000000", 0x9F1A: "0124", 0x95: "8000000000", 0x5F2A: "0124",
    0x9A: "209906", 0x9C: "00", 0x9F37: "ABCDEF12", 0x82: "1800", 0x9F36: "001C",
}


def tlvs(terminal: Mapping[int, str], iad: str) -> dict[int, bytes]:
    """A tag → value mapping from hex strings plus the IAD."""
    values = {tag: bytes.fromhex(value) for tag, value in terminal.items()}
    values[0x9F10] = bytes.fromhex(iad)
    return values


# Source for every row: pyemv tests/test_cvn_hsm.py (values checked against an HSM), IMK
# 0123456789ABCDEFFEDCBA9876543210, PAN 1234567890123456, PSN 00, ATC 001C.
@pytest.mark.parametrize(
    ("name", "terminal", "iad", "arqc", "response", "arpc"),
    [
        ("visa10", VISA_TERMINAL, "06010A03A06010",                      "29CCA15AE665FA2E", "3030",     "28993816AFAE4AEB"),  # noqa: E501
        ("visa18", VISA_TERMINAL, "06011203A0B800",                      "7A788EA6B8A3E733", "00000000", "9AF514C1"),  # noqa: E501
        ("mc16",   MC_TERMINAL,   "0110A00003220000000000000000000000FF", "24CCF3DEE3158C70", "0010",     "73F6BBF389A6586C"),  # noqa: E501
        ("mc17",   MC_TERMINAL,   "0111A00003220000000000000000000322FF", "EAE8A620A75648D8", "0010",     "29CF11FBDB9CA650"),  # noqa: E501
    ],
)  # fmt: skip
def test_published_arqc_and_arpc(
    name: str, terminal: Mapping[int, str], iad: str, arqc: str, response: str, arpc: str
) -> None:
    """Each profile reproduces the HSM-checked ARQC and ARPC."""
    cvn = profile(name)
    mk = cvn.derive_icc_mk(IMK, PAN, "00")
    data = tlvs(terminal, iad)
    result = cvn.generate(mk, data)
    assert result.cryptogram.hex().upper() == arqc
    assert cvn.verify(mk, data, result.cryptogram)
    if cvn.arpc_method == 1:
        value = cvn.arpc(mk, data, result.cryptogram, arc=bytes.fromhex(response))
    else:
        value = cvn.arpc(mk, data, result.cryptogram, csu=bytes.fromhex(response))
    assert value.hex().upper() == arpc


def test_visa18_docstring_vector() -> None:
    """The pyemv cvn module docstring example: IMK AA…, ATC 0FFF → ARQC 769577B5ABE9FE62, ARPC 76503F48."""
    cvn = profile("visa18")
    mk = cvn.derive_icc_mk(bytes.fromhex("AA" * 16), "1234567890123456", "00")
    data = tlvs({0x9F02: "000000009999", 0x9F03: "000000000000", 0x9F1A: "0840", 0x95: "8000048000",
                 0x5F2A: "0840", 0x9A: "991231", 0x9C: "01", 0x9F37: "52BF4585", 0x82: "1800",
                 0x9F36: "0FFF"}, "06011203A0B800")
    arqc = cvn.generate(mk, data).cryptogram
    assert arqc.hex().upper() == "769577B5ABE9FE62"
    assert cvn.arpc(mk, data, arqc, csu=bytes(4)).hex().upper() == "76503F48"
    assert cvn.issuer_authentication_data(mk, data, arqc).hex().upper() == "76503F48" + "00000000"


@pytest.mark.parametrize("name", ["visa18", "visa22"])
def test_visa_18_22_cover_the_whole_iad(name: str) -> None:
    """For Visa CVN 18/22 the MAC input ends with the whole IAD, so IDD bytes change the ARQC."""
    cvn = profile(name)
    iad = cvn.build_iad(bytes(cvn.cvr_length), luk_index=7)
    data = tlvs(VISA_TERMINAL, iad.hex())
    assert cvn.input_data(data).endswith(iad)
    changed = dict(data)
    changed[0x9F10] = cvn.build_iad(bytes(cvn.cvr_length), luk_index=8)
    mk = cvn.derive_icc_mk(IMK, PAN)
    assert cvn.generate(mk, data).cryptogram != cvn.generate(mk, changed).cryptogram


def test_visa10_covers_only_the_cvr() -> None:
    """For Visa CVN 10 only the CVR enters: IDD bytes do not change the ARQC."""
    cvn = profile("visa10")
    mk = cvn.derive_icc_mk(IMK, PAN)
    one = tlvs(VISA_TERMINAL, cvn.build_iad(bytes.fromhex("03A06010"), luk_index=1).hex())
    two = tlvs(VISA_TERMINAL, cvn.build_iad(bytes.fromhex("03A06010"), luk_index=2).hex())
    assert cvn.input_data(one).endswith(bytes.fromhex("03A06010"))
    assert cvn.generate(mk, one).cryptogram == cvn.generate(mk, two).cryptogram


terminal_values = st.fixed_dictionaries(
    {tag: st.binary(min_size=n, max_size=n) for tag, n in ELEMENT_LENGTHS.items()}
)


@given(st.sampled_from(sorted(PROFILES)), st.binary(min_size=16, max_size=16), terminal_values,
       st.one_of(st.none(), st.integers(1, 0xFFFF)), st.integers(0, 255), st.data())
def test_round_trip_and_tamper(
    name: str, mk: bytes, terminal: dict[int, bytes], luk_index: int | None, dki: int, data: st.DataObject
) -> None:
    """generate → verify holds for every profile; any changed cryptogram or input byte fails."""
    cvn = profile(name)
    cvr = data.draw(st.binary(min_size=cvn.cvr_length, max_size=cvn.cvr_length))
    values = dict(terminal)
    values[0x9F10] = cvn.build_iad(cvr, dki=dki, luk_index=luk_index)
    result = cvn.generate(mk, values)
    assert cvn.verify(mk, values, result.cryptogram)
    position = data.draw(st.integers(0, 7))
    tampered = bytearray(result.cryptogram)
    tampered[position] ^= 0x80
    assert not cvn.verify(mk, values, bytes(tampered))
    tag = data.draw(st.sampled_from(COMMON_ELEMENTS))
    changed = dict(values)
    changed[tag] = bytes([changed[tag][0] ^ 0x01]) + changed[tag][1:]
    assert not cvn.verify(mk, changed, result.cryptogram)


@given(
    st.sampled_from(sorted(PROFILES)),
    st.integers(0, 255),
    st.one_of(st.none(), st.integers(1, 0xFFFF)),
    st.data(),
)
def test_iad_build_parse_round_trip(name: str, dki: int, luk_index: int | None, data: st.DataObject) -> None:
    """parse_iad inverts build_iad: CVN, DKI, CVR and LUK index come back."""
    cvn = profile(name)
    cvr = data.draw(st.binary(min_size=cvn.cvr_length, max_size=cvn.cvr_length))
    iad = cvn.build_iad(cvr, dki=dki, luk_index=luk_index)
    parsed = cvn.parse_iad(iad)
    assert (parsed.cvn, parsed.dki, parsed.cvr, parsed.luk_index) == (cvn.number, dki, cvr, luk_index)
    assert profile_for_iad(iad, cvn.network) is cvn


@pytest.mark.parametrize(
    ("name", "luk_index", "length"),
    [("visa10", None, 7), ("visa18", None, 7), ("visa18", 5, 32), ("visa22", None, 32), ("visa22", 5, 32),
     ("mc16", None, 18), ("mc17", 5, 18)],
)
def test_iad_lengths(name: str, luk_index: int | None, length: int) -> None:
    """Visa IADs are 7 or 32 bytes, Mastercard's 18."""
    cvn = profile(name)
    assert len(cvn.build_iad(bytes(cvn.cvr_length), luk_index=luk_index)) == length


@pytest.mark.parametrize(
    ("name", "iad", "expected", "source"),
    [
        ("visa18", "06011203A0B800", IAD(0x12, 1, bytes.fromhex("03A0B800")), "pyemv cvn module docstring"),
        ("mc16", "0110A00003220000000000000000000000FF",
         IAD(0x10, 1, bytes.fromhex("A00003220000"), None, "mastercard", b"",
             bytes.fromhex("00000000000000FF")),
         "pyemv tests/test_cvn_hsm.py"),
        ("visa22", "1F220100A0000000" + "00" * 24,
         IAD(0x22, 1, bytes.fromhex("00A0000000"), None, "visa2", bytes(24)), "VIS 1.6 format 2 layout"),
    ],
)
def test_parse_published_iads(name: str, iad: str, expected: IAD, source: str) -> None:
    """Published IADs parse into their fields."""
    assert profile(name).parse_iad(bytes.fromhex(iad)) == expected, source


@given(st.sampled_from(sorted(PROFILES)), st.binary(max_size=40))
def test_parse_iad_fuzz(name: str, iad: bytes) -> None:
    """parse_iad of arbitrary bytes returns an IAD or raises InvalidInput, nothing else."""
    try:
        parsed = profile(name).parse_iad(iad)
    except InvalidInput:
        return
    assert isinstance(parsed, IAD)


def test_missing_element_names_the_tag() -> None:
    """A missing data element is reported by tag and name."""
    data = tlvs(VISA_TERMINAL, "06011203A0B800")
    del data[0x9F37]
    with pytest.raises(InvalidInput, match="9F37"):
        profile("visa18").input_data(data)


def test_wrong_element_length_is_reported() -> None:
    """A data element of the wrong length is refused (a classic cause of false declines)."""
    data = tlvs(VISA_TERMINAL, "06011203A0B800")
    data[0x9F02] = bytes(4)
    with pytest.raises(InvalidInput, match="9F02 must be 6 bytes"):
        profile("visa18").input_data(data)


def test_unknown_profile_and_bad_build_arguments() -> None:
    """Unknown names, wrong CVR lengths and out-of-range indexes are InvalidInput."""
    with pytest.raises(InvalidInput):
        profile("visa99")
    with pytest.raises(InvalidInput):
        profile("visa18").build_iad(bytes(5))
    with pytest.raises(InvalidInput):
        profile("mc16").build_iad(bytes(6), luk_index=0x10000)
    with pytest.raises(InvalidInput):
        profile("mc16").build_iad(bytes(6), dki=256)
    with pytest.raises(InvalidInput):
        profile_for_iad(bytes(18), "amex")


def test_result_repr_hides_session_key() -> None:
    """ArqcResult's repr shows the cryptogram but not the session key."""
    cvn = profile("visa18")
    data = tlvs(VISA_TERMINAL, "06011203A0B800")
    result = cvn.generate(cvn.derive_icc_mk(IMK, PAN), data)
    assert "session_key" not in repr(result)
    assert result.session_key.hex() not in repr(result) and str(result.session_key) not in repr(result)
