"""Command APDUs: the seven ISO/IEC 7816-4 cases and the EMV commands."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.command import (
    PPSE,
    CommandAPDU,
    ComputeCryptographicChecksum,
    ExternalAuthenticate,
    GenerateAC,
    GetChallenge,
    GetData,
    GetProcessingOptions,
    GetResponse,
    InternalAuthenticate,
    ReadRecord,
    Select,
    Verify,
    instruction_name,
)
from apdu.errors import MalformedAPDU

G8 = "MichaelsPlayground/NfcEmvExampleG8 logfile_visacard.md"
P7 = "MichaelsPlayground/TalkToYourCreditCardPart7 logfile.md"
PYEMV_CAP = "russss/python-emv emv/test/test_cap.py"
ISO = "ISO/IEC 7816-4 §5.1 Table 1"
h = bytes.fromhex
B3_GAC = "EMV 4.4 Book 3 §6.5.5.2"
B3_VERIFY = "EMV 4.4 Book 3 §6.5.12"
ISO_GR = "ISO/IEC 7816-4 §7.6.1"


@pytest.mark.parametrize(("raw", "case", "name", "data_len", "le", "source"), [
    ("00A40400",                                   "1",  "SELECT",                 0,   None,  ISO),
    ("80CA9F3600",                                 "2S", "GET DATA",               0,   256,   ISO),
    ("00C000001C",                                 "2S", "GET RESPONSE",           0,   28,    ISO),
  ("0020008008241234FFFFFFFFFF",  "3S", "VERIFY",  8,  None,  B3_VERIFY),
    ("00A404000E325041592E5359532E444446303100",   "4S", "SELECT",                 14,  256,   G8),
    ("00A4040007A000000003101000",                 "4S", "SELECT",                 7,   256,   G8),
    ("80A8000002830000",                           "4S", "GET PROCESSING OPTIONS", 2,   256,   P7),
    ("80A80000238321A0000000000000000001000000000000084000000000000840070203008017337000",
                                                   "4S", "GET PROCESSING OPTIONS", 35,  256,   G8),
    ("00B2010C00",                                 "2S", "READ RECORD",            0,   256,   P7),
    ("80AE80001D" + "00" * 14 + "8000000000" + "0000010101" + "0000000000" + "00",
                                                   "4S", "GENERATE AC",            29,  256,   PYEMV_CAP),
    ("00B0000000" "0100",                          "2E", "READ BINARY",            0,   256,   ISO),
    ("00B0000000" "0000",                          "2E", "READ BINARY",            0,   65536, ISO),
    ("00DA000000" "0002" "AABB",                   "3E", "PUT DATA",               2,   None,  ISO),
    ("00DA000000" "0100" + "AB" * 256,             "3E", "PUT DATA",               256, None,  ISO),
    ("0088000000" "0004" "01020304" "0000",        "4E", "INTERNAL AUTHENTICATE",  4,   65536, ISO),
    ("0088000000" "0004" "01020304" "0102",        "4E", "INTERNAL AUTHENTICATE",  4,   258,   ISO),
])
def test_seven_cases_round_trip(
    raw: str, case: str, name: str, data_len: int, le: int | None, source: str
) -> None:
    """Every ISO case parses to its fields and serialises back to the same bytes."""
    command = CommandAPDU.from_bytes(bytes.fromhex(raw))
    assert (command.case, command.name, len(command.data), command.le) == (case, name, data_len, le)
    assert command.to_bytes().hex().upper() == raw.upper()
    assert bytes(command) == command.to_bytes()


@pytest.mark.parametrize(("raw", "message"), [
    ("",                       "at least 4 bytes, got 0"),
    ("00A4",                   "at least 4 bytes, got 2"),
    ("00A4040005AABB",         "Lc = 5 does not match the 2 bytes"),
    ("00A40400020102030405",   "Lc = 2 does not match the 5 bytes"),
    ("00A404000000",           "neither short nor extended"),
    ("00A4040000000001",       "extended Lc of 0000"),
    ("00A40400000005AABB",     "extended Lc = 5 does not match the 2 bytes"),
])
def test_impossible_lengths(raw: str, message: str) -> None:
    """Lengths that contradict the body raise MalformedAPDU with a clear message."""
    with pytest.raises(MalformedAPDU, match=message):
        CommandAPDU.from_bytes(bytes.fromhex(raw))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cla": 0x100, "ins": 0xA4, "p1": 0, "p2": 0}, "CLA must be a byte"),
        ({"cla": 0, "ins": -1, "p1": 0, "p2": 0}, "INS must be a byte"),
        ({"cla": 0, "ins": 0xA4, "p1": 0, "p2": 0, "le": 65537}, "Le must be"),
        ({"cla": 0, "ins": 0xA4, "p1": 0, "p2": 0, "data": b"\x00" * 65536}, "exceeds Nc"),
        ({"cla": 0, "ins": 0xA4, "p1": 0, "p2": 0, "data": "00"}, "data must be bytes"),
    ],
)
def test_constructor_checks(kwargs: dict[str, object], message: str) -> None:
    """Fields out of range are MalformedAPDU at construction."""
    with pytest.raises(MalformedAPDU, match=message):
        CommandAPDU(**kwargs)  # type: ignore[arg-type]


def test_le_zero_means_256_and_large_values_go_extended() -> None:
    """le=0 is the wire's 00 (256); Le over 256 or data over 255 bytes switch to extended lengths."""
    assert CommandAPDU(0, 0xB0, 0, 0, le=0).le == 256
    assert CommandAPDU(0, 0xB0, 0, 0, le=0).to_bytes() == bytes.fromhex("00B0000000")
    assert CommandAPDU(0, 0xB0, 0, 0, le=257).case == "2E"
    assert CommandAPDU(0, 0xD6, 0, 0, b"\x01" * 256).case == "3E"
    assert CommandAPDU(0, 0xB0, 0, 0, le=65536).to_bytes() == bytes.fromhex("00B00000000000")


@pytest.mark.parametrize(("command", "raw", "source"), [
    (Select(PPSE),                          "00A404000E" "325041592E5359532E4444463031" "00", G8),
    (Select(h("A0000000031010")),           "00A4040007A000000003101000",   G8),
    (Select(h("A0000000031010"), next_occurrence=True),
                                            "00A4040207A000000003101000",   "EMV 4.4 Book 1 §11.3.2"),
    (GetProcessingOptions(),                "80A8000002830000",             P7),
    (GetProcessingOptions(bytes(200)),      "80A80000CB8381C8" + "00" * 201, "EMV 4.4 Book 3 §6.5.8"),
    (ReadRecord(sfi=1, record=1),           "00B2010C00",                   P7),
    (ReadRecord(sfi=4, record=2),           "00B2022400",                   P7),
    (GenerateAC("ARQC", bytes(29)),         "80AE80001D" + "00" * 30,       PYEMV_CAP),
    (GenerateAC("tc", b"\x01", cda=True),   "80AE5000010100",               B3_GAC),
    (GenerateAC("AAC", b"\x01"),            "80AE0000010100",               B3_GAC),
    (GetData(0x9F36),                       "80CA9F3600",                   "EMV 4.4 Book 3 §6.5.7"),
    (GetResponse(0x1C),                     "00C000001C",                   ISO_GR),
    (GetResponse(0),                        "00C0000000",                   ISO_GR),
    (Verify(h("241234FFFFFFFFFF")),         "0020008008241234FFFFFFFFFF",   B3_VERIFY),
    (InternalAuthenticate(h("01020304")),   "00880000040102030400",         "EMV 4.4 Book 3 §6.5.9"),
    (ExternalAuthenticate(bytes(10)),       "008200000A" + "00" * 10,       "EMV 4.4 Book 3 §6.5.4"),
    (GetChallenge(),                        "0084000000",                   "EMV 4.4 Book 3 §6.5.6"),
    (ComputeCryptographicChecksum(h("01020304")),
                                            "802A8E80040102030400",         "EMV Contactless Book C-2"),
])
def test_emv_commands(command: CommandAPDU, raw: str, source: str) -> None:
    """The EMV command constructors produce the bytes real terminals send."""
    assert command.to_bytes().hex().upper() == raw.upper()
    assert CommandAPDU.from_bytes(bytes.fromhex(raw)) == command


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ReadRecord(sfi=0, record=1), "SFI must be 1..30"),
        (lambda: ReadRecord(sfi=31, record=1), "SFI must be 1..30"),
        (lambda: ReadRecord(sfi=1, record=256), "record number"),
        (lambda: GenerateAC("XYZ", b""), "AAC, TC or ARQC"),
        (lambda: GetData(0x10000), "1- or 2-byte tag"),
    ],
)
def test_command_constructor_errors(call: object, message: str) -> None:
    """Impossible EMV command parameters raise MalformedAPDU."""
    with pytest.raises(MalformedAPDU, match=message):
        call()  # type: ignore[operator]


@pytest.mark.parametrize(("cla", "ins", "name"), [
    (0x80, 0xA8, "GET PROCESSING OPTIONS"),
    (0x80, 0x2A, "COMPUTE CRYPTOGRAPHIC CHECKSUM"),
    (0x00, 0x2A, "PERFORM SECURITY OPERATION"),
    (0x00, 0xB2, "READ RECORD"),
    (0x84, 0x24, "PIN CHANGE/UNBLOCK"),
    (0x00, 0x99, "INS 99"),
])
def test_instruction_names(cla: int, ins: int, name: str) -> None:
    """Instructions are named by ISO/IEC 7816-4 §5.4 and EMV 4.4 Book 3 §6.5."""
    assert instruction_name(cla, ins) == name


def test_with_le_resends() -> None:
    """with_le keeps the command and changes Le, as for a 6CXX resend."""
    command = GetData(0x9F36).with_le(2)
    assert command.to_bytes() == bytes.fromhex("80CA9F3602")
    assert command.with_le(None).case == "1"


@given(
    st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.integers(0, 255),
    st.binary(max_size=300), st.one_of(st.none(), st.integers(1, 65536)),
)
def test_any_command_round_trips(cla: int, ins: int, p1: int, p2: int, data: bytes, le: int | None) -> None:
    """from_bytes(to_bytes(c)) == c for any command of any case."""
    command = CommandAPDU(cla, ins, p1, p2, data, le)
    again = CommandAPDU.from_bytes(command.to_bytes())
    assert again == command
    assert again.to_bytes() == command.to_bytes()
