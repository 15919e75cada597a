"""Response APDUs (ISO/IEC 7816-4 §5.1): a data field and the two status bytes SW1 SW2.

>>> r = ResponseAPDU.from_bytes(bytes.fromhex("6F0A8408A0000000031010109000"))
>>> r.sw, r.ok, r.data.hex().upper()
(36864, True, '6F0A8408A000000003101010')
>>> ResponseAPDU.from_bytes(bytes.fromhex("6A82")).meaning
'File or application not found'
"""

from __future__ import annotations

from dataclasses import dataclass

from apdu.errors import MalformedAPDU, StatusWordError
from apdu.sw import describe, is_success


@dataclass(frozen=True, slots=True)
class ResponseAPDU:
    """A response APDU, immutable: ``data`` then ``sw1``, ``sw2``."""

    data: bytes
    sw1: int
    sw2: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", bytes(self.data))
        for name in ("sw1", "sw2"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= 0xFF:
                raise MalformedAPDU(f"{name.upper()} must be a byte, got {value!r}")

    @classmethod
    def from_bytes(cls, raw: bytes) -> ResponseAPDU:
        """Split a response into data and status word; fewer than 2 bytes is :class:`MalformedAPDU`."""
        raw = bytes(raw)
        if len(raw) < 2:
            raise MalformedAPDU(f"a response APDU has at least 2 bytes (SW1 SW2), got {len(raw)}")
        return cls(raw[:-2], raw[-2], raw[-1])

    @classmethod
    def status(cls, sw: int, data: bytes = b"") -> ResponseAPDU:
        """A response from a status word as one integer.

        >>> ResponseAPDU.status(0x6985).to_bytes().hex().upper()
        '6985'
        """
        return cls(data, (sw >> 8) & 0xFF, sw & 0xFF)

    def to_bytes(self) -> bytes:
        """The response as it crossed the wire: data then SW1 SW2."""
        return self.data + bytes((self.sw1, self.sw2))

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    @property
    def sw(self) -> int:
        """The status word as one integer, e.g. ``0x9000``."""
        return (self.sw1 << 8) | self.sw2

    @property
    def sw_hex(self) -> str:
        """The status word as four uppercase hex digits."""
        return f"{self.sw:04X}"

    @property
    def ok(self) -> bool:
        """Whether the command completed (9000, or 61XX with more data to fetch)."""
        return is_success(self.sw)

    @property
    def meaning(self) -> str:
        """The status word's meaning, from :func:`apdu.sw.describe`."""
        return describe(self.sw)

    def raise_for_sw(self) -> ResponseAPDU:
        """Return ``self`` if :attr:`ok`, else raise :class:`StatusWordError` (opt-in)."""
        if not self.ok:
            raise StatusWordError(self.sw, self.meaning)
        return self
