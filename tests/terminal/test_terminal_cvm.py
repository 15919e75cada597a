"""Cardholder verification: CVM List processing (EMV 4.4 Book 3 §10.5, Annex C3; Book C-2 §7.5)."""

from __future__ import annotations

import pytest

from terminal.cvm import choose, walk_cvm_list

XY0 = "0000000000000000"


@pytest.mark.parametrize(
    ("cvm_list",                      "capability", "amount", "results", "tvr3", "cvm"),
    [
        # the PayPass test card of binaryfoo/emv-bertlv: signature if supported, then no CVM
        (XY0 + "5E031F03",             0x20,         10001,    "5E0300",  0x00,   "signature"),
        (XY0 + "5E031F03",             0x08,         100,      "1F0302",  0x00,   "no_cvm"),
        # the ExpressPay test card: online PIN first; the byte is kept as the list has it
        (XY0 + "42031E03",             0x60,         12000,    "420300",  0x04,   "online_pin"),
        (XY0 + "42031E03",             0x20,         12000,    "1E0300",  0x00,   "signature"),
        # nothing the terminal supports: no rule applies, verification not successful
        (XY0 + "42031E03",             0x08,         100,      "3F0001",  0x80,   "no_cvm"),
        # "always" with an unsupported CVM and bit 7 clear fails at once; set, the next rule applies
        (XY0 + "02001F00",             0x08,         100,      "020001",  0x80,   "no_cvm"),
        (XY0 + "42001F00",             0x08,         100,      "1F0002",  0x00,   "no_cvm"),
        # offline PIN needs VERIFY, which a contactless kernel never sends
        (XY0 + "01001E00",             0xA8,         100,      "010001",  0x80,   "no_cvm"),
        # an unrecognised CVM: TVR byte 3 bit 7, and it counts as failed
        (XY0 + "10001F00",             0x08,         100,      "100001",  0xC0,   "no_cvm"),
        (XY0 + "70001F00",             0x08,         100,      "1F0002",  0x40,   "no_cvm"),
        # "fail CVM processing"
        (XY0 + "0000",                 0x68,         100,      "000001",  0x80,   "no_cvm"),
        # amount conditions 06-09 in the application currency, X = 50.00 and Y = 100.00
        ("0000138800002710" "1E061F00", 0x28,        4999,     "1E0600",  0x00,   "signature"),
        ("0000138800002710" "1E061F00", 0x28,        5000,     "1F0002",  0x00,   "no_cvm"),
        ("0000138800002710" "1E071F00", 0x28,        5001,     "1E0700",  0x00,   "signature"),
        ("0000138800002710" "1E091F00", 0x28,        10001,    "1E0900",  0x00,   "signature"),
        ("0000138800002710" "1E081F00", 0x28,        10000,    "1F0002",  0x00,   "no_cvm"),
        # an RFU condition code is skipped
        (XY0 + "1E201F00",             0x28,         100,      "1F0002",  0x00,   "no_cvm"),
    ],
)
def test_cvm_list_walk(
    cvm_list: str, capability: int, amount: int, results: str, tvr3: int, cvm: str,
) -> None:
    """Each rule's condition, support and bit 7 decide the CVM, the CVM Results and TVR byte 3."""
    got = walk_cvm_list(bytes.fromhex(cvm_list), capability=capability, amount=amount, same_currency=True,
                        transaction_type=0x00, terminal_type=0x22)
    assert (got.results.hex().upper(), got.tvr_byte3, got.cvm) == (results, tvr3, cvm)


@pytest.mark.parametrize(
    ("transaction_type", "terminal_type", "condition", "applies"),
    [
        (0x01, 0x14, "01", True),    # unattended cash
        (0x01, 0x22, "01", False),
        (0x01, 0x22, "04", True),    # manual cash
        (0x09, 0x22, "05", True),    # purchase with cashback
        (0x09, 0x22, "02", False),   # not cash, not cashback
        (0x00, 0x22, "02", True),
    ],
)
def test_transaction_type_conditions(transaction_type: int, terminal_type: int, condition: str,
                                     applies: bool) -> None:
    """Conditions 01, 02, 04 and 05 read the transaction type (9C) and terminal type (9F35)."""
    got = walk_cvm_list(bytes.fromhex(XY0 + "1E" + condition + "1F00"), capability=0x28, amount=100,
                        same_currency=True, transaction_type=transaction_type, terminal_type=terminal_type)
    assert (got.cvm == "signature") is applies


def test_amount_conditions_need_the_application_currency() -> None:
    """Conditions 06-09 hold only when the transaction is in the application currency (9F42)."""
    got = walk_cvm_list(bytes.fromhex("0000138800002710" "1E061F00"), capability=0x28, amount=100,
                        same_currency=False, transaction_type=0x00, terminal_type=0x22)
    assert got.cvm == "no_cvm"


@pytest.mark.parametrize(
    ("aip",  "cvm_list",          "required", "results"),
    [
        ("5980", XY0 + "5E031F03", True,      "5E0300"),   # the list is walked
        ("4980", XY0 + "5E031F03", True,      "1E0300"),   # AIP: cardholder verification not supported
        ("5B80", XY0 + "5E031F03", True,      "010002"),   # on-device CVM
        ("5B80", XY0 + "5E031F03", False,     "1F0302"),
        ("5980", "",               True,      "1E0300"),   # no CVM List
    ],
)
def test_choose_walks_the_list_only_when_the_card_asks(
    aip: str, cvm_list: str, required: bool, results: str,
) -> None:
    """The Mastercard path walks 8E when the AIP supports cardholder verification (Book C-2 §7.5)."""
    card = {0x82: bytes.fromhex(aip), 0x8E: bytes.fromhex(cvm_list)}
    got = choose(card, {}, cvm_required=required, mastercard=True, capabilities=(0x20, 0x08), amount=100,
                 transaction_type=0x00, terminal_type=0x22)
    assert got.results.hex().upper() == results
