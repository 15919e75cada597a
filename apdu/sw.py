"""Status words: the two bytes that end every response APDU.

Sources: ISO/IEC 7816-4:2020 §5.6 (Table 6 and the interindustry values), EMV 4.4 Book 3
§6.3.5 and Annex (status words used by EMV commands), EMV Contactless Book C-2 and C-3 for the
values contactless kernels react to.

Status words are data. :func:`describe` names any of the 65,536 values; :class:`SW` names the
exact ones; the families that carry a count in SW2 (61XX, 6CXX, 63CX) are recognised by
:func:`family`. Nothing here raises because of a status word.

>>> describe(0x9000)
'Normal processing: no further qualification'
>>> describe(0x6C10)
'Wrong Le field: resend with Le = 16'
>>> SW.FILE_NOT_FOUND.hex
'6A82'
"""

from __future__ import annotations

from enum import IntEnum


class SW(IntEnum):
    """Status words with one fixed meaning (ISO/IEC 7816-4 §5.6, EMV 4.4 Book 3 §6.3.5)."""

    NO_ERROR = 0x9000
    WARNING_STATE_UNCHANGED = 0x6200
    PART_OF_DATA_CORRUPTED = 0x6281
    END_OF_FILE_REACHED = 0x6282
    SELECTED_FILE_INVALIDATED = 0x6283
    FCI_NOT_FORMATTED = 0x6284
    SELECTED_FILE_TERMINATED = 0x6285
    NO_INPUT_DATA_FROM_SENSOR = 0x6286
    WARNING_STATE_CHANGED = 0x6300
    FILE_FILLED_UP = 0x6381
    EXECUTION_ERROR_STATE_UNCHANGED = 0x6400
    IMMEDIATE_RESPONSE_REQUIRED = 0x6401
    EXECUTION_ERROR_STATE_CHANGED = 0x6500
    MEMORY_FAILURE = 0x6581
    SECURITY_ISSUE = 0x6600
    WRONG_LENGTH = 0x6700
    CLA_FUNCTION_NOT_SUPPORTED = 0x6800
    LOGICAL_CHANNEL_NOT_SUPPORTED = 0x6881
    SECURE_MESSAGING_NOT_SUPPORTED = 0x6882
    LAST_COMMAND_OF_CHAIN_EXPECTED = 0x6883
    COMMAND_CHAINING_NOT_SUPPORTED = 0x6884
    COMMAND_NOT_ALLOWED = 0x6900
    COMMAND_INCOMPATIBLE_WITH_FILE_STRUCTURE = 0x6981
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    AUTHENTICATION_METHOD_BLOCKED = 0x6983
    REFERENCE_DATA_NOT_USABLE = 0x6984
    CONDITIONS_OF_USE_NOT_SATISFIED = 0x6985
    COMMAND_NOT_ALLOWED_NO_CURRENT_EF = 0x6986
    #: 6986 to GET PROCESSING OPTIONS or GENERATE AC on a phone: its holder must verify on the
    #: device, then tap again (EMV Contactless Book C-3 §5.2.2, Book A Table 7.1 "See Phone").
    SEE_PHONE = 0x6986
    EXPECTED_SM_DATA_OBJECTS_MISSING = 0x6987
    INCORRECT_SM_DATA_OBJECTS = 0x6988
    WRONG_PARAMETERS_NO_INFORMATION = 0x6A00
    INCORRECT_DATA = 0x6A80
    FUNCTION_NOT_SUPPORTED = 0x6A81
    FILE_NOT_FOUND = 0x6A82
    RECORD_NOT_FOUND = 0x6A83
    NOT_ENOUGH_MEMORY = 0x6A84
    NC_INCONSISTENT_WITH_TLV = 0x6A85
    INCORRECT_P1_P2 = 0x6A86
    NC_INCONSISTENT_WITH_P1_P2 = 0x6A87
    REFERENCED_DATA_NOT_FOUND = 0x6A88
    FILE_ALREADY_EXISTS = 0x6A89
    DF_NAME_ALREADY_EXISTS = 0x6A8A
    WRONG_P1_P2 = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_PRECISE_DIAGNOSIS = 0x6F00

    @property
    def hex(self) -> str:
        """The status word as four uppercase hex digits."""
        return f"{int(self):04X}"

    @property
    def encoded(self) -> bytes:
        """The status word as the two bytes SW1 SW2 that end a response APDU.

        >>> SW.CONDITIONS_OF_USE_NOT_SATISFIED.encoded
        b'i\\x85'
        """
        return int(self).to_bytes(2, "big")

    @property
    def meaning(self) -> str:
        """The phrase of ISO/IEC 7816-4 or EMV for this status word."""
        return _PHRASES[int(self)]


_PHRASES: dict[int, str] = {
    0x9000: "Normal processing: no further qualification",
    0x6200: "Warning, state unchanged: no information given",
    0x6281: "Warning: part of returned data may be corrupted",
    0x6282: "Warning: end of file or record reached before reading Ne bytes",
    0x6283: "Warning: selected file invalidated (application blocked)",
    0x6284: "Warning: FCI not formatted according to ISO/IEC 7816-4",
    0x6285: "Warning: selected file in termination state",
    0x6286: "Warning: no input data available from a sensor",
    0x6300: "Warning, state changed: no information given (authentication failed)",
    0x6381: "Warning: file filled up by the last write",
    0x6400: "Execution error, state unchanged",
    0x6401: "Execution error: immediate response required by the card",
    0x6500: "Execution error, state changed: no information given",
    0x6581: "Execution error: memory failure",
    0x6600: "Security-related issue",
    0x6700: "Wrong length (Lc or Le)",
    0x6800: "Functions in CLA not supported",
    0x6881: "Logical channel not supported",
    0x6882: "Secure messaging not supported",
    0x6883: "Last command of the chain expected",
    0x6884: "Command chaining not supported",
    0x6900: "Command not allowed: no information given",
    0x6981: "Command incompatible with file structure",
    0x6982: "Security status not satisfied",
    0x6983: "Authentication method blocked (PIN try limit exceeded)",
    0x6984: "Reference data not usable",
    0x6985: "Conditions of use not satisfied",
    0x6986: "Command not allowed: no current EF",
    0x6987: "Expected secure messaging data objects missing",
    0x6988: "Incorrect secure messaging data objects",
    0x6A00: "Wrong parameters P1-P2: no information given",
    0x6A80: "Incorrect parameters in the command data field",
    0x6A81: "Function not supported (card or application blocked)",
    0x6A82: "File or application not found",
    0x6A83: "Record not found",
    0x6A84: "Not enough memory space in the file",
    0x6A85: "Nc inconsistent with TLV structure",
    0x6A86: "Incorrect parameters P1-P2",
    0x6A87: "Nc inconsistent with parameters P1-P2",
    0x6A88: "Referenced data or reference data not found",
    0x6A89: "File already exists",
    0x6A8A: "DF name already exists",
    0x6B00: "Wrong parameters P1-P2 (offset outside the EF)",
    0x6D00: "Instruction code not supported or invalid",
    0x6E00: "Class not supported",
    0x6F00: "No precise diagnosis",
}


def family(sw: int) -> str | None:
    """The family of a status word whose SW2 carries a number, or ``None``.

    ``"61XX"``: SW2 more bytes are available with GET RESPONSE (ISO/IEC 7816-4 §5.6, T=0).
    ``"6CXX"``: wrong Le; resend with Le = SW2. ``"63CX"``: a counter (tries left) in the
    low nibble of SW2. ``"9XXX"``: proprietary to the application.

    >>> family(0x6110), family(0x63C2), family(0x9000)
    ('61XX', '63CX', None)
    """
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw1 == 0x61:
        return "61XX"
    if sw1 == 0x6C:
        return "6CXX"
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        return "63CX"
    if sw1 & 0xF0 == 0x90 and sw != 0x9000:
        return "9XXX"
    return None


def is_success(sw: int) -> bool:
    """Whether the command completed: 9000, or 61XX (more data waiting) per ISO/IEC 7816-4."""
    return sw == 0x9000 or sw >> 8 == 0x61


def is_warning(sw: int) -> bool:
    """Whether the status word is a warning (62XX, 63XX): processing completed with a remark."""
    return sw >> 8 in (0x62, 0x63)


def describe(sw: int) -> str:
    """A phrase for any status word, exact or by family (never raises for 0..0xFFFF).

    >>> describe(0x63C2)
    'Warning: counter, 2 tries left'
    >>> describe(0x6F42)
    'No precise diagnosis (SW2 = 42)'
    """
    if not 0 <= sw <= 0xFFFF:
        return "Not a status word"
    if sw in _PHRASES:
        return _PHRASES[sw]
    sw1, sw2 = sw >> 8, sw & 0xFF
    kind = family(sw)
    if kind == "61XX":
        return f"Normal processing: {sw2 or 256} more bytes available (GET RESPONSE)"
    if kind == "6CXX":
        return f"Wrong Le field: resend with Le = {sw2 or 256}"
    if kind == "63CX":
        return f"Warning: counter, {sw2 & 0x0F} tries left"
    if kind == "9XXX":
        return f"Application-specific status {sw:04X}"
    generic = {
        0x62: "Warning, state unchanged",
        0x63: "Warning, state changed",
        0x64: "Execution error, state unchanged",
        0x65: "Execution error, state changed",
        0x66: "Security-related issue",
        0x67: "Wrong length",
        0x68: "Functions in CLA not supported",
        0x69: "Command not allowed",
        0x6A: "Wrong parameters P1-P2",
        0x6B: "Wrong parameters P1-P2",
        0x6D: "Instruction code not supported or invalid",
        0x6E: "Class not supported",
        0x6F: "No precise diagnosis",
    }.get(sw1)
    if generic is None:
        return f"Unknown status word {sw:04X}"
    return f"{generic} (SW2 = {sw2:02X})"
