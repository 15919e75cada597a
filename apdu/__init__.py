"""The wire language of contactless EMV: APDUs, status words, BER-TLV, DOLs, tags and traces.

``apdu`` is the bottom layer of hcekit: it imports nothing else of the project and does no I/O
(trace files are read and written by the caller's open file objects).

Modules: :mod:`apdu.command` (ISO/IEC 7816-4 command APDUs and the EMV commands),
:mod:`apdu.response`, :mod:`apdu.sw` (status words), :mod:`apdu.tlv` (BER-TLV),
:mod:`apdu.dol` (data object lists), :mod:`apdu.tags` (the EMV data dictionary and bitmaps),
:mod:`apdu.trace` (JSON Lines traces with masking), :mod:`apdu.errors`.
"""

from apdu.command import CommandAPDU
from apdu.errors import APDUError, DecodeError, EncodeError, MalformedAPDU, StatusWordError
from apdu.response import ResponseAPDU
from apdu.sw import SW

__all__ = [
    "SW",
    "APDUError",
    "CommandAPDU",
    "DecodeError",
    "EncodeError",
    "MalformedAPDU",
    "ResponseAPDU",
    "StatusWordError",
]
