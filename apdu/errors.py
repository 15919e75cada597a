"""The exceptions of :mod:`apdu`, rooted in one class.

::

    APDUError
     ├── MalformedAPDU      bytes that cannot be a command or response APDU (ISO/IEC 7816-4 §5.1)
     ├── DecodeError        BER-TLV or DOL bytes that cannot be decoded; carries tag, offset, partial
     ├── EncodeError        a value that cannot be encoded (a tag or length out of range)
     ├── TraceError         a trace file line that is not a trace record
     ├── PanMismatch        5A and the PAN of Track 2 Equivalent Data (57) name two accounts
     └── StatusWordError    raised only on request, by ``ResponseAPDU.raise_for_sw()``

Decoders raise only these. A status word is data: nothing raises because of one unless the
caller asks.
"""

from __future__ import annotations

from typing import Any


class APDUError(Exception):
    """Root of every error raised by :mod:`apdu`."""


class MalformedAPDU(APDUError, ValueError):
    """Bytes that cannot be an APDU: too short, or lengths that contradict the body."""


class EncodeError(APDUError, ValueError):
    """A value that cannot be put on the wire (tag or length out of range)."""


class DecodeError(APDUError, ValueError):
    """BER-TLV or DOL bytes that cannot be decoded.

    ``tag`` is the tag being decoded when it failed (``None`` before one was read), ``offset``
    the byte offset of the failure in the input, and ``partial`` what was decoded before it.
    """

    def __init__(
        self,
        message: str,
        *,
        tag: int | None = None,
        offset: int = 0,
        partial: Any = None,
    ) -> None:
        super().__init__(message)
        self.tag = tag
        self.offset = offset
        self.partial = partial if partial is not None else []

    def __str__(self) -> str:
        where = f" at offset {self.offset}"
        if self.tag is not None:
            where += f" in tag {self.tag:02X}"
        return f"{self.args[0]}{where}"


class TraceError(APDUError, ValueError):
    """A line of a trace that is not a trace record."""

    def __init__(self, message: str, *, line: int = 0) -> None:
        super().__init__(message)
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.args[0]}" if self.line else str(self.args[0])


class PanMismatch(APDUError, ValueError):
    """The card's Application PAN (5A) and the PAN in its Track 2 Equivalent Data (57) differ.

    ``pan`` is the PAN of 5A, ``track2_pan`` that of 57. Raised by :func:`apdu.pan.card_pan`;
    a kernel or a host turns it into its refusal (a card data error).
    """

    def __init__(self, pan: str, track2_pan: str) -> None:
        super().__init__("the PAN (5A) and the PAN of Track 2 Equivalent Data (57) differ")
        self.pan = pan
        self.track2_pan = track2_pan


class StatusWordError(APDUError):
    """A response's status word reported an error, raised by ``ResponseAPDU.raise_for_sw()``."""

    def __init__(self, sw: int, meaning: str) -> None:
        super().__init__(f"SW {sw:04X}: {meaning}")
        self.sw = sw
        self.meaning = meaning
