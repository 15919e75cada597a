"""Cardholder verification: which CVM the tap used, and the CVM Results (9F34) and TVR it leaves.

The Mastercard path (EMV Contactless Book C-2 §7.5, "CVM Selection", used alike for the
American Express application this terminal runs on it) decides in this order:

1. below the CVM-required limit with no CVM list to walk, or on Visa (qVSDC, Book C-3 §5.3:
   the card's CTQ 9F6C says whether the phone verified its holder), the decision is the kernel's
   own: no CVM, on-device CVM or signature (:func:`simple_choice`);
2. a card that supports on-device cardholder verification (AIP byte 1 bit 2) gets ``cdcvm``
   above the CVM-required limit;
3. otherwise, when the card supports cardholder verification (AIP byte 1 bit 5) and has a
   CVM List (8E), the list is walked as EMV 4.4 Book 3 §10.5 says (:func:`walk_cvm_list`),
   with the reader's CVM capability for this amount: "CVM Capability – CVM Required" above the
   CVM-required limit, "CVM Capability – No CVM Required" at or below it (Book C-2 Annex A,
   DF8118 and DF8119).

CVM Results (Book 3 Annex C3) are the CV Rule's code byte *as the list has it* (bit 7 included),
its condition code, and the result: ``02`` successful for no CVM, ``00`` unknown for signature
and online PIN (the terminal cannot tell), ``01`` failed. ``3F`` in byte 1 means no CVM was
performed. The kernel never collects a PIN itself: choosing online PIN sets "online PIN entered"
(TVR byte 3 bit 3) as Kernel 2 does, and the outcome's CVM tells the terminal to ask for it.
Offline PIN needs VERIFY, which no contactless kernel sends: it is never supported here.

>>> walk_cvm_list(bytes.fromhex("00000000000000005E031F03"), capability=0x20, amount=10001,
...               same_currency=False, transaction_type=0x00, terminal_type=0x22)
CvmChoice(cvm='signature', results=b'^\\x03\\x00', tvr_byte3=0)
>>> walk_cvm_list(bytes.fromhex("00000000000000005E031F03"), capability=0x08, amount=100,
...               same_currency=False, transaction_type=0x00, terminal_type=0x22).results.hex()
'1f0302'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "CVM_RESULTS",
    "TVR_CVM_UNSUCCESSFUL",
    "TVR_ONLINE_PIN_ENTERED",
    "TVR_UNRECOGNISED_CVM",
    "CvmChoice",
    "choose",
    "simple_choice",
    "walk_cvm_list",
]

#: TVR byte 3 (EMV 4.4 Book 3 Annex C5).
TVR_CVM_UNSUCCESSFUL, TVR_UNRECOGNISED_CVM, TVR_ONLINE_PIN_ENTERED = 0x80, 0x40, 0x04

#: CVM Results (9F34) for the decisions the kernel makes without a CVM list (Book 3 Annex C3).
CVM_RESULTS: dict[str, bytes] = {
    "no_cvm": bytes.fromhex("1F0302"),
    "cdcvm": bytes.fromhex("010002"),
    "signature": bytes.fromhex("1E0300"),
}

#: CVM code (bits 6-1 of a CV Rule's first byte, Book 3 Annex C3 Table 39) -> (name, the
#: Terminal Capabilities byte 2 bits it needs (Book 4 Annex A2), CVM Results byte 3 when done).
_METHODS: dict[int, tuple[str, int, int]] = {
    0x01: ("offline_plaintext_pin", 0x80, 0x00),
    0x02: ("online_pin", 0x40, 0x00),
    0x03: ("offline_plaintext_pin_and_signature", 0xA0, 0x00),
    0x04: ("offline_enciphered_pin", 0x10, 0x00),
    0x05: ("offline_enciphered_pin_and_signature", 0x30, 0x00),
    0x1E: ("signature", 0x20, 0x00),
    0x1F: ("no_cvm", 0x08, 0x02),
}
#: What a contactless kernel can perform: online PIN, signature, no CVM (no VERIFY command).
_KERNEL_CAN = 0x40 | 0x20 | 0x08
_APPLY_NEXT_IF_FAILED = 0x40
_NOT_PERFORMED = 0x3F


@dataclass(frozen=True, slots=True)
class CvmChoice:
    """The CVM the tap used (``no_cvm``, ``signature``, ``online_pin``, ``cdcvm``), the CVM
    Results (9F34) and the bits to set in TVR byte 3."""

    cvm: str
    results: bytes
    tvr_byte3: int = 0


def simple_choice(cvm_required: bool, *, ctq: bytes, aip: bytes, mastercard: bool) -> CvmChoice:
    """The decision without a CVM list (Book C-3 §5.3 for the CTQ; Book C-2 §7.5 for on-device CVM)."""
    if not cvm_required:
        name = "no_cvm"
    elif (len(ctq) >= 2 and ctq[1] & 0x80) or (mastercard and aip[:1] and aip[0] & 0x02):
        name = "cdcvm"
    else:
        name = "signature"
    return CvmChoice(name, CVM_RESULTS[name])


def choose(
    card: Mapping[int, bytes], terminal: Mapping[int, bytes], *, cvm_required: bool, mastercard: bool,
    capabilities: tuple[int, int], amount: int, transaction_type: int, terminal_type: int,
) -> CvmChoice:
    """The CVM of a tap, in the order of the module docstring.

    ``capabilities`` are the reader's CVM capability above the CVM-required limit and at or
    below it; ``card`` and ``terminal`` the data objects read and set so far.
    """
    aip, cvm_list = card.get(0x82, b""), card.get(0x8E, b"")
    on_device = bool(aip[:1] and aip[0] & 0x02)
    walk = mastercard and not on_device and bool(aip[:1] and aip[0] & 0x10) and len(cvm_list) >= 10
    if not walk:
        return simple_choice(cvm_required, ctq=card.get(0x9F6C, b""), aip=aip, mastercard=mastercard)
    return walk_cvm_list(
        cvm_list, capability=capabilities[0] if cvm_required else capabilities[1], amount=amount,
        same_currency=card.get(0x9F42) == terminal.get(0x5F2A), transaction_type=transaction_type,
        terminal_type=terminal_type)


def _condition(code: int, x: int, y: int, *, needs: int, capability: int, amount: int,
               same_currency: bool, transaction_type: int, terminal_type: int) -> bool | None:
    """Whether a CV Rule's condition holds (Book 3 Annex C3 Table 40); ``None``: not understood."""
    cash, cashback = transaction_type == 0x01, transaction_type == 0x09
    unattended = terminal_type & 0x0F in (0x04, 0x05, 0x06)
    if code == 0x00:
        return True
    if code == 0x01:
        return cash and unattended
    if code == 0x02:
        return not cash and not cashback
    if code == 0x03:
        return needs != 0 and capability & needs == needs
    if code == 0x04:
        return cash and not unattended
    if code == 0x05:
        return cashback
    if 0x06 <= code <= 0x09:
        limit = x if code in (0x06, 0x07) else y
        return same_currency and (amount < limit if code in (0x06, 0x08) else amount > limit)
    return None


def walk_cvm_list(
    cvm_list: bytes, *, capability: int, amount: int, same_currency: bool, transaction_type: int,
    terminal_type: int,
) -> CvmChoice:
    """Walk a CVM List (8E: amount X, amount Y, then 2-byte CV Rules) as Book 3 §10.5 says.

    ``capability`` is the Terminal Capabilities byte 2 in force for this amount (only online
    PIN, signature and no CVM count); ``same_currency`` whether the transaction is in the
    application currency (9F42 = 5F2A), for the amount conditions 06-09. A rule whose
    condition fails or is not understood is skipped; a CVM that fails (code 00, not recognised,
    or not supported) ends processing unless the rule's bit 7 says to apply the next one.
    """
    x, y = int.from_bytes(cvm_list[0:4], "big"), int.from_bytes(cvm_list[4:8], "big")
    flags = 0
    for i in range(8, len(cvm_list) - 1, 2):
        rule, condition = cvm_list[i], cvm_list[i + 1]
        code = rule & 0x3F
        method = _METHODS.get(code)
        met = _condition(condition, x, y, needs=method[1] if method else 0,
                         capability=capability & _KERNEL_CAN, amount=amount, same_currency=same_currency,
                         transaction_type=transaction_type, terminal_type=terminal_type)
        if not met:
            continue
        if method is None and code != 0x00:
            flags |= TVR_UNRECOGNISED_CVM
        if method and capability & _KERNEL_CAN & method[1] == method[1]:
            name, _, result = method
            if name == "online_pin":
                flags |= TVR_ONLINE_PIN_ENTERED
            return CvmChoice(name, bytes((rule, condition, result)), flags)
        if not rule & _APPLY_NEXT_IF_FAILED:
            return CvmChoice("no_cvm", bytes((rule, condition, 0x01)), flags | TVR_CVM_UNSUCCESSFUL)
    return CvmChoice("no_cvm", bytes((_NOT_PERFORMED, 0x00, 0x01)), flags | TVR_CVM_UNSUCCESSFUL)
