"""The wire language of contactless EMV: APDUs, status words, BER-TLV, DOLs, tags and traces.

``apdu`` is the bottom layer of hcekit: it imports nothing else of the project and does no I/O
(trace files are read and written by the caller's open file objects).

Modules: :mod:`apdu.command` (ISO/IEC 7816-4 command APDUs and the EMV commands),
:mod:`apdu.response`, :mod:`apdu.sw` (status words), :mod:`apdu.tlv` (BER-TLV),
:mod:`apdu.ber` (tag and length fields), :mod:`apdu.dol` (data object lists), :mod:`apdu.tags`
(the EMV data dictionary and bitmaps), :mod:`apdu.formats` (formats n and cn),
:mod:`apdu.currency` (ISO 4217), :mod:`apdu.cid` (Cryptogram Information Data),
:mod:`apdu.kernels` (Kernel Identifiers), :mod:`apdu.pan` (PAN, Track 2 and the Luhn check),
:mod:`apdu.trace` (JSON Lines traces with masking), :mod:`apdu.importers` and
:mod:`apdu.proxmark` (other tools' traces), :mod:`apdu.errors`.
"""

from typing import TYPE_CHECKING, Any

from apdu.errors import APDUError, DecodeError, EncodeError, MalformedAPDU, StatusWordError

if TYPE_CHECKING:
    from apdu.command import CommandAPDU
    from apdu.response import ResponseAPDU
    from apdu.sw import SW

#: The names this package re-exports from modules it imports only when one is first used, so
#: that ``import apdu.tlv`` does not pay for the command and response classes.
_LAZY = {"CommandAPDU": "apdu.command", "ResponseAPDU": "apdu.response", "SW": "apdu.sw"}

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


def __getattr__(name: str) -> Any:
    """``CommandAPDU``, ``ResponseAPDU``, ``SW`` and their modules, imported on first use (PEP 562)."""
    import importlib

    if name in ("command", "response", "sw"):  # the submodules, as before they were lazy
        return importlib.import_module(f"{__name__}.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
