"""Status words (ISO/IEC 7816-4 §5.6, EMV 4.4 Book 3 §6.3.5)."""

from __future__ import annotations

import pytest

from apdu.sw import SW, describe, family, is_success, is_warning

ISO = "ISO/IEC 7816-4 §5.6 Table 6"
EMV = "EMV 4.4 Book 3 §6.3.5"


@pytest.mark.parametrize(("sw", "phrase", "source"), [
    (0x9000, "Normal processing: no further qualification",          ISO),
    (0x6110, "16 more bytes available",                              ISO),
    (0x6100, "256 more bytes available",                             ISO),
    (0x6C10, "resend with Le = 16",                                  ISO),
    (0x63C2, "counter, 2 tries left",                                EMV),
    (0x6283, "selected file invalidated",                            EMV),
    (0x6700, "Wrong length",                                         ISO),
    (0x6985, "Conditions of use not satisfied",                      EMV),
    (0x6986, "no current EF",                                        ISO),
    (0x6A80, "Incorrect parameters in the command data field",       ISO),
    (0x6A81, "Function not supported",                               EMV),
    (0x6A82, "File or application not found",                        EMV),
    (0x6A83, "Record not found",                                     EMV),
    (0x6A84, "Not enough memory",                                    ISO),
    (0x6A85, "Nc inconsistent with TLV structure",                   ISO),
    (0x6A86, "Incorrect parameters P1-P2",                           ISO),
    (0x6A87, "Nc inconsistent with parameters P1-P2",                ISO),
    (0x6A88, "Referenced data or reference data not found",          EMV),
    (0x6D00, "Instruction code not supported",                       ISO),
    (0x6E00, "Class not supported",                                  ISO),
    (0x6F42, "No precise diagnosis (SW2 = 42)",                      ISO),
    (0x9123, "Application-specific status 9123",                     ISO),
    (0x6A99, "Wrong parameters P1-P2 (SW2 = 99)",                    ISO),
    (0x1234, "Unknown status word 1234",                             "not a status word of ISO/IEC 7816-4"),
])
def test_describe(sw: int, phrase: str, source: str) -> None:
    """Each status word has the phrase of its standard, exact or by family."""
    assert phrase in describe(sw)


def test_describe_never_raises() -> None:
    """describe names every one of the 65,536 values and refuses nothing."""
    assert all(describe(sw) for sw in range(0x10000))
    assert describe(-1) == describe(0x10000) == "Not a status word"


@pytest.mark.parametrize(("sw", "kind", "success", "warning"), [
    (0x9000, None,   True,  False),
    (0x6110, "61XX", True,  False),
    (0x6C00, "6CXX", False, False),
    (0x63C1, "63CX", False, True),
    (0x6300, None,   False, True),
    (0x6283, None,   False, True),
    (0x9001, "9XXX", False, False),
    (0x6A82, None,   False, False),
])
def test_families(sw: int, kind: str | None, success: bool, warning: bool) -> None:
    """Families, success and warnings follow ISO/IEC 7816-4 §5.6."""
    assert (family(sw), is_success(sw), is_warning(sw)) == (kind, success, warning)


@pytest.mark.parametrize("member", list(SW), ids=[member.name for member in SW])
def test_enum_members(member: SW) -> None:
    """Every named status word has a phrase, four hex digits, and describe agrees."""
    assert member.hex == f"{int(member):04X}"
    assert member.meaning == describe(member)
    assert member.meaning
