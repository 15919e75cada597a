"""Tests of apdu.tags: the EMV data dictionary, its lookups and the bitmap decoders."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apdu import tags
from apdu.tags import (
    AIDS,
    BITMAPS,
    COUNTRIES,
    TAGS,
    explain_bits,
    format_of,
    interpret,
    is_sensitive,
    kernel_for_aid,
    lookup,
    name,
    scheme_of,
)

SOURCES = {
    "VISA_WALK": "'Talk to your credit card' walkthrough by AndroidCrypto (MichaelsPlayground on GitHub), "
    "page 'Reading a VisaCard': SELECT and GPO exchanges of a Lloyds Bank Visa Debit card",
    "OPENEMV": "openemv/emv-utils README.md, the example "
    "'emv-decode --tlv 701A9F390105571040123456789095D2512201197339300F82025900'",
    "FLIPPER": "flipperdevices/flipperzero-firmware lib/nfc/protocols/emv/emv_poller_i.c, "
    "the TTQ 79004080 the Flipper Zero reader sends in its PDOL data",
    "MC_DE55": "Mastercard M/Chip ICC data (ISO 8583 DE 55) of approved transactions in public payment "
    "test fixtures on GitHub: ...9F10120310A74005...950500000080009A03...9B02E800..."
    "9F3303E0F8C8 9F3403440302 9F350122...",
    "BOOK3_A": "EMV 4.4 Book 3 Annex A (formats of the data elements)",
    "BOOK3_C2": "EMV 4.4 Book 3 Annex C2 (Application Usage Control)",
    "BOOK3_C3": "EMV 4.4 Book 3 Annex C3 (CV Rule coding)",
    "BOOK3_T15": "EMV 4.4 Book 3 §6.5.5.4 Table 15 (Cryptogram Information Data)",
    "BOOK4_A3": "EMV 4.4 Book 4 Annex A3 (Additional Terminal Capabilities)",
    "BOOK4_A4": "EMV 4.4 Book 4 Annex A4 (CVM Results, 3F0000 = no CVM performed)",
    "BOOK_B": "EMV Contactless Book B Table 3-6 (registered AIDs)",
    "ISO4217": "ISO 4217 currency codes",
    "ISO3166": "ISO 3166-1 country codes",
}
"""Public sources of the vectors below, named in each vector's first column."""

ANNEX_A = [
    # tag     name                                             format source      min max
    (0x4F,   "Application Identifier (AID) – card",            "b",   "ICC",      5,  16),
    (0x50,   "Application Label",                              "ans", "ICC",      1,  16),
    (0x57,   "Track 2 Equivalent Data",                        "b",   "ICC",      0,  19),
    (0x5A,   "Application Primary Account Number (PAN)",       "cn",  "ICC",      0,  10),
    (0x82,   "Application Interchange Profile (AIP)",          "b",   "ICC",      2,   2),
    (0x8C,   "Card Risk Management Data Object List 1 (CDOL1)", "b",  "ICC",      0, 252),
    (0x8E,   "Cardholder Verification Method (CVM) List",      "b",   "ICC",     10, 252),
    (0x94,   "Application File Locator (AFL)",                 "b",   "ICC",      0, 252),
    (0x95,   "Terminal Verification Results (TVR)",            "b",   "Terminal", 5,   5),
    (0x9A,   "Transaction Date",                               "n",   "Terminal", 3,   3),
    (0x9B,   "Transaction Status Information (TSI)",           "b",   "Terminal", 2,   2),
    (0x9C,   "Transaction Type",                               "n",   "Terminal", 1,   1),
    (0x5F20, "Cardholder Name",                                "ans", "ICC",      2,  26),
    (0x5F24, "Application Expiration Date",                    "n",   "ICC",      3,   3),
    (0x5F2A, "Transaction Currency Code",                      "n",   "Terminal", 2,   2),
    (0x5F2D, "Language Preference",                            "an",  "ICC",      2,   8),
    (0x5F34, "Application PAN Sequence Number",                "n",   "ICC",      1,   1),
    (0x8A,   "Authorisation Response Code",                    "an",  "Issuer",   2,   2),
    (0x91,   "Issuer Authentication Data",                     "b",   "Issuer",   8,  16),
    (0x9F02, "Amount, Authorised (Numeric)",                   "n",   "Terminal", 6,   6),
    (0x9F03, "Amount, Other (Numeric)",                        "n",   "Terminal", 6,   6),
    (0x9F07, "Application Usage Control (AUC)",                "b",   "ICC",      2,   2),
    (0x9F0B, "Cardholder Name Extended",                       "ans", "ICC",     27,  45),
    (0x9F10, "Issuer Application Data (IAD)",                  "b",   "ICC",      0,  32),
    (0x9F1A, "Terminal Country Code",                          "n",   "Terminal", 2,   2),
    (0x9F1C, "Terminal Identification",                        "an",  "Terminal", 8,   8),
    (0x9F1F, "Track 1 Discretionary Data",                     "ans", "ICC",      0, 255),
    (0x9F20, "Track 2 Discretionary Data",                     "cn",  "ICC",      0, 255),
    (0x9F21, "Transaction Time",                               "n",   "Terminal", 3,   3),
    (0x9F26, "Application Cryptogram",                         "b",   "ICC",      8,   8),
    (0x9F27, "Cryptogram Information Data (CID)",              "b",   "ICC",      1,   1),
    (0x9F33, "Terminal Capabilities",                          "b",   "Terminal", 3,   3),
    (0x9F34, "Cardholder Verification Method (CVM) Results",   "b",   "Terminal", 3,   3),
    (0x9F35, "Terminal Type",                                  "n",   "Terminal", 1,   1),
    (0x9F36, "Application Transaction Counter (ATC)",          "b",   "ICC",      2,   2),
    (0x9F37, "Unpredictable Number",                           "b",   "Terminal", 4,   4),
    (0x9F38, "Processing Options Data Object List (PDOL)",     "b",   "ICC",      0, 252),
    (0x9F40, "Additional Terminal Capabilities",               "b",   "Terminal", 5,   5),
    (0x9F42, "Application Currency Code",                      "n",   "ICC",      2,   2),
    (0x9F4E, "Merchant Name and Location",                     "ans", "Terminal", 0, 255),
]


@pytest.mark.parametrize(("tag", "label", "fmt", "source", "lo", "hi"), ANNEX_A)
def test_annex_a_rows(tag: int, label: str, fmt: str, source: str, lo: int, hi: int) -> None:
    """Names, formats, sources and lengths match EMV 4.4 Book 3 Annex A."""
    row = lookup(tag)
    assert row is not None
    assert (row.name, row.format, row.source, row.min_length, row.max_length) == (label, fmt, source, lo, hi)
    assert row.kernel is None
    assert "EMV 4.4 Book 3" in row.description


def test_table_has_at_least_200_distinct_tags() -> None:
    """The dictionary holds at least 200 distinct tags."""
    assert len({row.tag for row in TAGS}) >= 200


def test_no_duplicate_tag_kernel_rows() -> None:
    """No (tag, kernel) pair appears twice."""
    keys = [(row.tag, row.kernel) for row in TAGS]
    assert len(keys) == len(set(keys))


def test_rows_are_well_formed() -> None:
    """Every row has a known format, source and kernel, sane lengths, a cited description."""
    for row in TAGS:
        assert row.format in {"b", "n", "cn", "a", "an", "ans"}, row
        assert row.source in {"ICC", "Terminal", "Issuer"}, row
        assert row.kernel in {None, "visa", "mastercard", "amex", "discover"}, row
        assert 0 <= row.min_length <= row.max_length, row
        assert row.name and "(" in row.description, row
        first = int(row.tag_hex[:2], 16)
        assert row.constructed == bool(first & 0x20), row


@pytest.mark.parametrize("tag", [0x5A, 0x57, 0x56, 0x9F6B, 0x9F1F, 0x9F20, 0x5F20, 0x9F0B])
def test_sensitive_tags(tag: int) -> None:
    """PAN, track data and cardholder names are sensitive and listed in the table."""
    assert is_sensitive(tag)
    assert any(row.tag == tag and row.sensitive for row in TAGS)


@pytest.mark.parametrize("tag", [0x5F24, 0x9F62, 0x9F63, 0x9F64, 0x9F65, 0x9F26, 0x90, 0x9F46, 0x9F10])
def test_not_sensitive_tags(tag: int) -> None:
    """Expiry alone, PCVC3/PUNATC bitmaps, keys and cryptograms are not sensitive."""
    assert not is_sensitive(tag)


@pytest.mark.parametrize(
    ("tag", "kernel", "expected"),
    [
        (0x9F6E, "visa",       "Form Factor Indicator (FFI)"),
        (0x9F6E, "mastercard", "Third Party Data"),
        (0x9F6E, "amex",       "Enhanced Contactless Reader Capabilities"),
        (0x9F6D, "amex",       "Contactless Reader Capabilities"),
        (0x9F6D, "mastercard", "Mag-stripe Application Version Number (Reader)"),
        (0x9F66, None,         "Terminal Transaction Qualifiers (TTQ)"),
        (0x9F66, "visa",       "Terminal Transaction Qualifiers (TTQ)"),
        (0x9F66, "discover",   "Terminal Transaction Qualifiers (TTQ)"),
        (0x9F66, "mastercard", "PUNATC (Track2)"),
        (0x9F6C, "visa",       "Card Transaction Qualifiers (CTQ)"),
        (0x9F6C, "mastercard", "Mag-stripe Application Version Number (Card)"),
        (0x9F5D, "visa",       "Available Offline Spending Amount (AOSA)"),
        (0x9F5D, "mastercard", "Application Capabilities Information"),
        (0x9F69, "visa",       "Card Authentication Related Data"),
        (0x9F69, "mastercard", "UDOL"),
        (0x9F7C, "visa",       "Customer Exclusive Data (CED)"),
        (0x9F7C, "mastercard", "Merchant Custom Data"),
        (0x9F5E, "mastercard", "DS ID"),
        (0x9F5C, "mastercard", "DS Requested Operator ID"),
        (0x9F70, "mastercard", "Protected Data Envelope 1"),
        (0x9F71, "discover",   "Card Processing Requirements (CPR)"),
        (0xDF8117, "mastercard", "Card Data Input Capability"),
        (0xDF8131, "mastercard", "Phone Message Table"),
        (0x9F26, "jcb",        "Application Cryptogram"),
    ],
)
def test_lookup_prefers_the_kernel_row(tag: int, kernel: str | None, expected: str) -> None:
    """lookup(tag, kernel) gives the kernel's own meaning, falling back to the generic one."""
    assert name(tag, kernel) == expected


def test_lookup_unknown_tag() -> None:
    """An unknown tag has no row, a placeholder name and format b."""
    assert lookup(0xDF7F) is None
    assert name(0xDF7F) == "Unknown tag DF7F"
    assert format_of(0xDF7F) == "b"
    assert not is_sensitive(0xDF7F)


def test_format_of_known_tags() -> None:
    """format_of reads the table (the DOL builder pads by it)."""
    assert [format_of(t) for t in (0x9F02, 0x5A, 0x9F1C, 0x9F37, 0x50)] == ["n", "cn", "an", "b", "ans"]


# ------------------------------------------------------------------ bitmaps on real values

_ONLINE_IF_ODA_FAILS = "Go online if offline data authentication fails and reader is online capable"
_SWITCH_IF_ODA_FAILS = (
    "Switch interface if offline data authentication fails and reader supports contact chip"
)

BITMAP_VECTORS = [
    # source       tag     value         kernel  expected set-bit meanings
    ("VISA_WALK", 0x82,   "2000",       None,   ["byte 1 bit 6: DDA supported"]),
    ("VISA_WALK", 0x82,   "0000",       None,   []),
    ("OPENEMV",   0x82,   "5900",       None,   ["byte 1 bit 7: SDA supported",
                                                 "byte 1 bit 5: Cardholder verification is supported",
                                                 "byte 1 bit 4: Terminal risk management is to be performed",
                                                 "byte 1 bit 1: CDA supported"]),
    ("VISA_WALK", 0x9F6C, "1600",       "visa", [f"byte 1 bit 5: {_SWITCH_IF_ODA_FAILS}",
                                                 "byte 1 bit 3: Switch interface for cash transactions",
                                                 "byte 1 bit 2: Switch interface for cashback transactions"]),
    ("VISA_WALK", 0x9F6C, "3800",       "visa", [f"byte 1 bit 6: {_ONLINE_IF_ODA_FAILS}",
                                                 f"byte 1 bit 5: {_SWITCH_IF_ODA_FAILS}",
                                                 "byte 1 bit 4: Go online if application expired"]),
    ("VISA_WALK", 0x9F66, "A0000000",   None,   ["byte 1 bit 8: Mag-stripe mode supported",
                                                 "byte 1 bit 6: EMV mode supported"]),
    ("FLIPPER",   0x9F66, "79004080",   "visa", ["byte 1 bit 7: RFU",
                                                 "byte 1 bit 6: EMV mode supported",
                                                 "byte 1 bit 5: EMV contact chip supported",
                                                 "byte 1 bit 4: Offline-only reader",
                                                 "byte 1 bit 1: Offline Data Authentication for Online "
                                                 "Authorizations supported",
                                                 "byte 3 bit 7: Consumer Device CVM supported",
                                                 "byte 4 bit 8: RFU"]),
    ("MC_DE55",   0x95,   "0000008000", None,   ["byte 4 bit 8: Transaction exceeds floor limit"]),
    ("VISA_WALK", 0x95,   "0000000000", None,   []),
    ("MC_DE55",   0x9B,   "E800",       None,   ["byte 1 bit 8: Offline data authentication was performed",
                                                 "byte 1 bit 7: Cardholder verification was performed",
                                                 "byte 1 bit 6: Card risk management was performed",
                                                 "byte 1 bit 4: Terminal risk management was performed"]),
    ("MC_DE55",   0x9F33, "E0F8C8",     None,   ["byte 1 bit 8: Manual key entry",
                                                 "byte 1 bit 7: Magnetic stripe",
                                                 "byte 1 bit 6: IC with contacts",
                                                 "byte 2 bit 8: Plaintext PIN for ICC verification",
                                                 "byte 2 bit 7: Enciphered PIN for online verification",
                                                 "byte 2 bit 6: Signature (paper)",
                                                 "byte 2 bit 5: Enciphered PIN for offline verification",
                                                 "byte 2 bit 4: No CVM required",
                                                 "byte 3 bit 8: SDA",
                                                 "byte 3 bit 7: DDA",
                                                 "byte 3 bit 4: CDA"]),
    ("MC_DE55",   0x9F34, "440302",     None,   ["method: Enciphered PIN verification performed by ICC",
                                                 "apply succeeding CV Rule if this CVM is unsuccessful",
                                                 "condition: If terminal supports the CVM",
                                                 "result: Successful"]),
    ("BOOK4_A4",  0x9F34, "3F0000",     None,   ["method: No CVM performed", "condition: Always",
                                                 "result: Unknown"]),
    ("VISA_WALK", 0x9F27, "80",         None,   ["bits 8-7: ARQC"]),
    ("BOOK3_T15", 0x9F27, "40",         None,   ["bits 8-7: TC"]),
    ("BOOK3_T15", 0x9F27, "0A",         None,   ["bits 8-7: AAC", "bit 4: Advice required",
                                                 "bits 3-1: PIN Try Limit exceeded"]),
    ("BOOK3_C2",  0x9F07, "FF00",       None,   ["byte 1 bit 8: Valid for domestic cash transactions",
                                                 "byte 1 bit 7: Valid for international cash transactions",
                                                 "byte 1 bit 6: Valid for domestic goods",
                                                 "byte 1 bit 5: Valid for international goods",
                                                 "byte 1 bit 4: Valid for domestic services",
                                                 "byte 1 bit 3: Valid for international services",
                                                 "byte 1 bit 2: Valid at ATMs",
                                                 "byte 1 bit 1: Valid at terminals other than ATMs"]),
    ("BOOK4_A3",  0x9F40, "6000F0A001", None,   ["byte 1 bit 7: Goods", "byte 1 bit 6: Services",
                                                 "byte 3 bit 8: Numeric keys",
                                                 "byte 3 bit 7: Alphabetic and special characters keys",
                                                 "byte 3 bit 6: Command keys", "byte 3 bit 5: Function keys",
                                                 "byte 4 bit 8: Print, attendant",
                                                 "byte 4 bit 6: Display, attendant",
                                                 "byte 5 bit 1: Code table 1"]),
]


@pytest.mark.parametrize(("source", "tag", "value", "kernel", "expected"), BITMAP_VECTORS)
def test_explain_bits_on_real_values(
    source: str, tag: int, value: str, kernel: str | None, expected: list[str]
) -> None:
    """Each set bit of a real bitmap is named as in the EMV and contactless books."""
    assert source in SOURCES
    assert explain_bits(tag, bytes.fromhex(value), kernel) == expected


def test_explain_bits_kernel_without_bitmap() -> None:
    """9F66 and 9F6C mean other things to Mastercard: no TTQ/CTQ bits for that kernel."""
    assert explain_bits(0x9F66, bytes.fromhex("0F00"), "mastercard") == []
    assert explain_bits(0x9F6C, bytes.fromhex("0100"), "mastercard") == []
    assert explain_bits(0x9F26, bytes(8)) == []


def test_every_bitmap_cites_its_source() -> None:
    """Each bit table names the section that defines it."""
    for table in BITMAPS.values():
        assert "Book" in table.source
        assert all(1 <= byte <= 5 and 1 <= bit <= 8 for byte, bit, _ in table.bits)


# ------------------------------------------------------------------ interpretation

_MC_IAD = "Mastercard IAD: DKI 03, CVN 16 (10), CVR A74005020000, DAC/IDN 0000, counters 00000000000000FF"
_CVM_LIST = (
    "X=0 Y=0; Enciphered PIN verified online — If terminal supports the CVM, else next; "
    "Signature (paper) — If terminal supports the CVM; No CVM required — Always"
)

INTERPRET_VECTORS = [
    # source       tag     value                                   kernel  expected
    ("VISA_WALK", 0x9F02, "000000001000",                         None,   "1000 minor units (000000001000)"),
    ("VISA_WALK", 0x9A,   "230301",                               None,   "2023-03-01"),
    ("BOOK3_A",   0x5F24, "251231",                               None,   "2025-12-31"),
    ("VISA_WALK", 0x5F2A, "0978",                                 None,   "0978 EUR"),
    ("ISO4217",   0x9F42, "0840",                                 None,   "0840 USD"),
    ("ISO3166",   0x5F28, "0826",                                 None,   "0826 GB"),
    ("ISO3166",   0x9F1A, "0250",                                 None,   "0250 FR"),
    ("VISA_WALK", 0x9C,   "00",                                   None,   "00 (purchase)"),
    ("BOOK3_A",   0x9F21, "074548",                               None,   "07:45:48"),
    ("MC_DE55",   0x9F35, "22",                                   None,
     "22: attended, offline with online capability, operated by merchant"),
    ("VISA_WALK", 0x50,   "56495341204445424954202020202020",     None,   "VISA DEBIT      "),
    ("VISA_WALK", 0x5F2D, "656E",                                 None,   "en"),
    ("BOOK3_A",   0x50,   "41420001",                             None,   "41420001"),
    ("VISA_WALK", 0x9F27, "80",                                   None,   "80: bits 8-7: ARQC"),
    ("VISA_WALK", 0x94,   "10020400",                             None,   "SFI 2 records 2–4 (0 for ODA)"),
    ("BOOK3_A",   0x94,   "0801010110010300",                     None,
     "SFI 1 record 1 (1 for ODA); SFI 2 records 1–3 (0 for ODA)"),
    ("VISA_WALK", 0x4F,   "A0000000031010",                       None,
     "A0000000031010 (Visa credit/debit)"),
    ("BOOK_B",    0x84,   "A0000000043060",                       None,   "A0000000043060 (Maestro)"),
    ("BOOK_B",    0x4F,   "A0000000251234",                       None,
     "A0000000251234 (American Express)"),
    ("BOOK_B",    0x9F06, "A0000009999999",                       None,   "A0000009999999"),
    ("VISA_WALK", 0x9F10, "06040A03A02000",                       None,
     "Visa IAD format 0/1: DKI 04, CVN 10 (0A), CVR 03A02000"),
    ("VISA_WALK", 0x9F10, "06010A03A02000",                       "visa",
     "Visa IAD format 0/1: DKI 01, CVN 10 (0A), CVR 03A02000"),
    ("MC_DE55",   0x9F10, "0310A74005020000000000000000000000FF", None,   _MC_IAD),
    ("BOOK3_A",   0x9F10, "0102",                                 None,   "2 bytes: 0102"),
    ("OPENEMV",   0x57,   "40123456789095D2512201197339300F",     None,
     "PAN 40123456789095, expiry 2025-12, service code 201, discretionary 197339300"),
    ("BOOK3_A",   0x5A,   "4761739001010010FF",                   None,   "4761739001010010"),
    ("VISA_WALK", 0x82,   "2000",                                 None,
     "2000: byte 1 bit 6: DDA supported"),
    ("VISA_WALK", 0x95,   "0000000000",                           None,   "0000000000: no bits set"),
    ("BOOK3_A",   0x77,   "82022000",                             None,   "constructed, 4 bytes"),
    ("BOOK3_C3",  0x8E,   "000000000000000042031E031F00",         None,   _CVM_LIST),
    ("VISA_WALK", 0x9F26, "011AB2FE7D6DD230",                     None,   "011AB2FE7D6DD230"),
    ("BOOK3_A",   0x9F02, "00000000001A",                         None,   "00000000001A (not BCD)"),
]


@pytest.mark.parametrize(("source", "tag", "value", "kernel", "expected"), INTERPRET_VECTORS)
def test_interpret(source: str, tag: int, value: str, kernel: str | None, expected: str) -> None:
    """interpret gives a short human reading by the tag's format and meaning."""
    assert source in SOURCES
    assert interpret(tag, bytes.fromhex(value), kernel) == expected


def test_interpret_text_with_control_bytes_is_hex() -> None:
    """Non-printable text is shown as hex rather than raw control characters."""
    assert interpret(0x9F4E, b"SHOP\x00\x07") == "53484F500007"


# ------------------------------------------------------------------ AIDs, currencies, countries


@pytest.mark.parametrize(
    ("aid", "scheme", "kernel"),
    [
        ("A0000000031010",   "Visa",             "visa"),
        ("A0000000032010",   "Visa",             "visa"),
        ("A0000000032020",   "Visa",             "visa"),
        ("A0000000041010",   "Mastercard",       "mastercard"),
        ("A0000000043060",   "Mastercard",       "mastercard"),
        ("A00000002501",     "American Express", "amex"),
        ("A0000001523010",   "Discover",         "discover"),
        ("A0000000651010",   "JCB",              "jcb"),
        ("A000000333010101", "UnionPay",         "unionpay"),
        ("A0000002771010",   "Interac",          None),
    ],
)
def test_scheme_and_kernel_of_aid(aid: str, scheme: str, kernel: str | None) -> None:
    """Well-known AIDs map to their scheme and default contactless kernel (Book B)."""
    raw = bytes.fromhex(aid)
    assert scheme_of(raw) == scheme
    assert kernel_for_aid(raw) == kernel
    assert any(entry.aid == raw for entry in AIDS)


def test_unknown_aid() -> None:
    """An unregistered RID has no scheme and no kernel."""
    assert scheme_of(bytes.fromhex("F000000001")) is None
    assert kernel_for_aid(b"") is None


def test_currency_and_country_tables() -> None:
    """At least 40 countries; a currency code is explained with ISO 4217's alphabetic code."""
    assert len(COUNTRIES) >= 40 and COUNTRIES[840] == "US"
    assert interpret(0x5F2A, bytes.fromhex("0978")) == "0978 EUR"
    assert interpret(0x5F2A, bytes.fromhex("0999")) == "0999"


# ------------------------------------------------------------------ properties

_TAG_LIST = [*sorted({row.tag for row in TAGS}), 0xDF7F, 0x1F, 0x00]
_KERNELS = [None, "visa", "mastercard", "amex", "discover", "jcb"]


@settings(max_examples=400, deadline=None)
@given(
    tag=st.sampled_from(_TAG_LIST),
    value=st.binary(max_size=300),
    kernel=st.sampled_from(_KERNELS),
)
def test_interpret_and_explain_never_raise(tag: int, value: bytes, kernel: str | None) -> None:
    """interpret and explain_bits read any bytes of any length for every tag without raising."""
    text = interpret(tag, value, kernel)
    assert isinstance(text, str)
    bits = explain_bits(tag, value, kernel)
    assert all(isinstance(line, str) for line in bits)


@settings(max_examples=200, deadline=None)
@given(tag=st.sampled_from([0x82, 0x95, 0x9B, 0x9F07, 0x9F33, 0x9F40, 0x9F66, 0x9F6C]),
       value=st.binary(min_size=1, max_size=8))
def test_explain_bits_counts_every_set_bit(tag: int, value: bytes) -> None:
    """A plain bitmap yields exactly one line per set bit."""
    assert len(explain_bits(tag, value)) == sum(bin(b).count("1") for b in value)


def test_module_exports() -> None:
    """The public names are exported."""
    for symbol in tags.__all__:
        assert hasattr(tags, symbol)


def test_mastercard_kernel_specific_rows_are_its_own() -> None:
    """9F68 on a Mastercard card is the Mag-stripe CVM List; no 9F5x-9F7x tag borrows Visa's meaning."""
    from apdu.tags import lookup
    assert lookup(0x9F68, "mastercard").name == "Mag-stripe CVM List"
    assert lookup(0x9F68, "visa").name == "Card Additional Processes"
    for tag in range(0x9F50, 0x9F80):
        row = lookup(tag, "mastercard")
        assert row is None or row.kernel in ("mastercard", None), f"{tag:04X} -> {row.kernel}: {row.name}"
