"""Command APDUs: the seven cases of ISO/IEC 7816-4 §5.1 and the commands EMV sends.

A command APDU is a four-byte header (CLA INS P1 P2), an optional body (Lc and data) and an
optional expected length (Le). ISO/IEC 7816-4 §5.1 (Table 1) gives seven shapes::

    case 1    CLA INS P1 P2
    case 2S   CLA INS P1 P2 Le                    Le: 1 byte, 00 means 256
    case 3S   CLA INS P1 P2 Lc data               Lc: 1 byte, 01..FF
    case 4S   CLA INS P1 P2 Lc data Le
    case 2E   CLA INS P1 P2 00 Le1 Le2            Le: 2 bytes, 0000 means 65,536
    case 3E   CLA INS P1 P2 00 Lc1 Lc2 data       Lc: 2 bytes, 0001..FFFF
    case 4E   CLA INS P1 P2 00 Lc1 Lc2 data Le1 Le2

:class:`CommandAPDU` holds the fields (``cla, ins, p1, p2, data, le``) as a frozen value;
``le`` is the number of bytes expected (``None`` when absent, 256 for the short ``00``).
The EMV commands are built by the noun-named constructors below (:func:`Select`,
:func:`GetProcessingOptions`, :func:`ReadRecord`, :func:`GenerateAC` …), following EMV 4.4
Book 3 §6.5 and the contactless kernels (EMV Contactless Books C-2, C-3).

>>> c = Select(bytes.fromhex("325041592E5359532E4444463031"))
>>> c.to_bytes().hex().upper()
'00A404000E325041592E5359532E444446303100'
>>> c.case, c.name
('4S', 'SELECT')
>>> CommandAPDU.from_bytes(bytes.fromhex("00B2010C00")) == ReadRecord(sfi=1, record=1)
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

from apdu.cid import AC_TYPES
from apdu.errors import MalformedAPDU

#: Instruction names, by (INS) and, where EMV gives one INS two meanings, by (CLA & 0xF0, INS).
#: Sources: ISO/IEC 7816-4 §5.4 Table 4 (interindustry), EMV 4.4 Book 3 §6.5 (EMV commands),
#: EMV Contactless Book C-2 §5.3 (COMPUTE CRYPTOGRAPHIC CHECKSUM), EMV Book 3 Annex (issuer
#: script commands).
INSTRUCTIONS: dict[int, str] = {
    0x04: "DEACTIVATE FILE",
    0x0C: "ERASE RECORD",
    0x0E: "ERASE BINARY",
    0x16: "CARD BLOCK",
    0x18: "APPLICATION UNBLOCK",
    0x1E: "APPLICATION BLOCK",
    0x20: "VERIFY",
    0x24: "PIN CHANGE/UNBLOCK",
    0x2A: "COMPUTE CRYPTOGRAPHIC CHECKSUM",
    0x44: "ACTIVATE FILE",
    0x70: "MANAGE CHANNEL",
    0x82: "EXTERNAL AUTHENTICATE",
    0x84: "GET CHALLENGE",
    0x88: "INTERNAL AUTHENTICATE",
    0xA4: "SELECT",
    0xA8: "GET PROCESSING OPTIONS",
    0xAE: "GENERATE AC",
    0xB0: "READ BINARY",
    0xB2: "READ RECORD",
    0xC0: "GET RESPONSE",
    0xCA: "GET DATA",
    0xCB: "GET DATA",
    0xD6: "UPDATE BINARY",
    0xDA: "PUT DATA",
    0xDC: "UPDATE RECORD",
    0xE2: "APPEND RECORD",
}

#: Where ISO/IEC 7816-4 (inter-industry CLA 0X) and EMV (proprietary CLA 8X) disagree.
_BY_CLASS: dict[tuple[int, int], str] = {
    (0x00, 0x2A): "PERFORM SECURITY OPERATION",
    (0x80, 0x2A): "COMPUTE CRYPTOGRAPHIC CHECKSUM",
}

_MAX_SHORT_LC = 0xFF
_MAX_EXTENDED_LC = 0xFFFF
_MAX_SHORT_LE = 256
_MAX_EXTENDED_LE = 65536


def instruction_name(cla: int, ins: int) -> str:
    """The name of an instruction, or ``"INS XX"`` for one not in the table.

    >>> instruction_name(0x80, 0xA8)
    'GET PROCESSING OPTIONS'
    >>> instruction_name(0x00, 0x99)
    'INS 99'
    """
    return _BY_CLASS.get((cla & 0xF0, ins)) or INSTRUCTIONS.get(ins) or f"INS {ins:02X}"


@dataclass(frozen=True, slots=True)
class CommandAPDU:
    """A command APDU (ISO/IEC 7816-4 §5.1), immutable.

    ``le`` is the expected response length: ``None`` for none, 1..256 for short Le (the wire's
    ``00`` is 256), up to 65,536 for extended. ``le=0`` is accepted as the wire's ``00`` and
    stored as 256. ``extended`` forces extended length fields even where short ones fit.
    """

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    extended: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= 0xFF:
                raise MalformedAPDU(f"{name.upper()} must be a byte, got {value!r}")
        if not isinstance(self.data, (bytes, bytearray, memoryview)):
            raise MalformedAPDU(f"data must be bytes, got {type(self.data).__name__}")
        object.__setattr__(self, "data", bytes(self.data))
        if len(self.data) > _MAX_EXTENDED_LC:
            raise MalformedAPDU(f"data of {len(self.data)} bytes exceeds Nc max of 65,535")
        if self.le is not None:
            if self.le == 0:
                object.__setattr__(self, "le", _MAX_SHORT_LE)
            elif not 0 < self.le <= _MAX_EXTENDED_LE:
                raise MalformedAPDU(f"Le must be 1..65536 (or 0 for 256), got {self.le}")
        if not self.extended and (
            len(self.data) > _MAX_SHORT_LC or (self.le or 0) > _MAX_SHORT_LE
        ):
            object.__setattr__(self, "extended", True)

    @property
    def case(self) -> str:
        """The ISO/IEC 7816-4 case: ``"1"``, ``"2S"``, ``"3S"``, ``"4S"``, ``"2E"``, ``"3E"``, ``"4E"``."""
        number = 1 + (self.le is not None) + 2 * bool(self.data)
        if number == 1:
            return "1"
        return f"{number}{'E' if self.extended else 'S'}"

    @property
    def name(self) -> str:
        """The instruction's name (``"SELECT"``, ``"GENERATE AC"`` …)."""
        return instruction_name(self.cla, self.ins)

    @property
    def header(self) -> bytes:
        """CLA INS P1 P2."""
        return bytes((self.cla, self.ins, self.p1, self.p2))

    def to_bytes(self) -> bytes:
        """The APDU as it goes on the wire."""
        out = bytearray(self.header)
        if self.extended:
            if self.data:
                out += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
            if self.le is not None:
                le = b"\x00\x00" if self.le == _MAX_EXTENDED_LE else self.le.to_bytes(2, "big")
                out += le if self.data else b"\x00" + le
        else:
            if self.data:
                out += bytes((len(self.data),)) + self.data
            if self.le is not None:
                out.append(self.le % _MAX_SHORT_LE)
        return bytes(out)

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    def with_le(self, le: int | None) -> CommandAPDU:
        """The same command with another Le (used for a 6CXX resend)."""
        return CommandAPDU(self.cla, self.ins, self.p1, self.p2, self.data, le)

    @classmethod
    def from_bytes(cls, raw: bytes) -> CommandAPDU:
        """Parse a command APDU of any case (ISO/IEC 7816-4 §5.1), or raise :class:`MalformedAPDU`.

        >>> CommandAPDU.from_bytes(bytes.fromhex("80CA9F3600")).le
        256
        >>> CommandAPDU.from_bytes(bytes.fromhex("00A4"))
        Traceback (most recent call last):
        ...
        apdu.errors.MalformedAPDU: a command APDU has at least 4 bytes, got 2
        """
        raw = bytes(raw)
        n = len(raw)
        if n < 4:
            raise MalformedAPDU(f"a command APDU has at least 4 bytes, got {n}")
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, le=body[0] or _MAX_SHORT_LE)
        if body[0] != 0:
            lc = body[0]
            if len(body) == 1 + lc:
                return cls(cla, ins, p1, p2, body[1:])
            if len(body) == 2 + lc:
                return cls(cla, ins, p1, p2, body[1:-1], le=body[-1] or _MAX_SHORT_LE)
            raise MalformedAPDU(
                f"Lc = {lc} does not match the {len(body) - 1} bytes that follow it"
            )
        if len(body) == 3:
            return cls(cla, ins, p1, p2, le=int.from_bytes(body[1:3], "big") or _MAX_EXTENDED_LE,
                       extended=True)
        if len(body) < 3:
            raise MalformedAPDU(f"a body of {len(body)} bytes starting 00 is neither short nor extended")
        lc = int.from_bytes(body[1:3], "big")
        if lc == 0:
            raise MalformedAPDU("extended Lc of 0000 is not allowed")
        rest = body[3:]
        if len(rest) == lc:
            return cls(cla, ins, p1, p2, rest, extended=True)
        if len(rest) == lc + 2:
            le = int.from_bytes(rest[-2:], "big") or _MAX_EXTENDED_LE
            return cls(cla, ins, p1, p2, rest[:-2], le=le, extended=True)
        raise MalformedAPDU(
            f"extended Lc = {lc} does not match the {len(rest)} bytes that follow it"
        )


# --- EMV commands (EMV 4.4 Book 3 §6.5; EMV Contactless Books C-2, C-3) ---------------------

PPSE = b"2PAY.SYS.DDF01"
"""The Proximity Payment System Environment's name, selected first by contactless terminals."""

PSE = b"1PAY.SYS.DDF01"
"""The contact Payment System Environment's name; contactless cards answer it with 6A82."""


def Select(name: bytes, *, next_occurrence: bool = False, le: int | None = 256) -> CommandAPDU:  # noqa: N802
    """SELECT by DF name (EMV 4.4 Book 1 §11.3): ``00 A4 04 00|02 Lc name 00``."""
    return CommandAPDU(0x00, 0xA4, 0x04, 0x02 if next_occurrence else 0x00, name, le)


def GetProcessingOptions(pdol_data: bytes = b"") -> CommandAPDU:  # noqa: N802
    """GET PROCESSING OPTIONS (EMV 4.4 Book 3 §6.5.8): data is tag 83 around the PDOL data."""
    if len(pdol_data) > 0x7F:
        body = b"\x83\x81" + bytes((len(pdol_data),)) + pdol_data
    else:
        body = b"\x83" + bytes((len(pdol_data),)) + pdol_data
    return CommandAPDU(0x80, 0xA8, 0x00, 0x00, body, 256)


def ReadRecord(sfi: int, record: int) -> CommandAPDU:  # noqa: N802
    """READ RECORD (EMV 4.4 Book 1 §11.2): P1 the record number, P2 = SFI << 3 | 4."""
    if not 1 <= sfi <= 30:
        raise MalformedAPDU(f"SFI must be 1..30, got {sfi}")
    if not 0 <= record <= 0xFF:
        raise MalformedAPDU(f"record number must be a byte, got {record}")
    return CommandAPDU(0x00, 0xB2, record, (sfi << 3) | 0x04, le=256)


def GenerateAC(kind: str, cdol_data: bytes, *, cda: bool = False) -> CommandAPDU:  # noqa: N802
    """GENERATE AC (EMV 4.4 Book 3 §6.5.5): P1 says AAC, TC or ARQC, bit 5 asks for CDA."""
    try:
        p1 = AC_TYPES[kind.upper()]
    except KeyError:
        raise MalformedAPDU(f"cryptogram type must be AAC, TC or ARQC, got {kind!r}") from None
    return CommandAPDU(0x80, 0xAE, p1 | (0x10 if cda else 0), 0x00, cdol_data, 256)


def GetData(tag: int) -> CommandAPDU:  # noqa: N802
    """GET DATA (EMV 4.4 Book 3 §6.5.7) for a primitive tag such as ATC (9F36) or 9F13."""
    if not 0 <= tag <= 0xFFFF:
        raise MalformedAPDU(f"GET DATA takes a 1- or 2-byte tag, got {tag:X}")
    return CommandAPDU(0x80, 0xCA, tag >> 8, tag & 0xFF, le=256)


def GetResponse(length: int) -> CommandAPDU:  # noqa: N802
    """GET RESPONSE (ISO/IEC 7816-4 §7.6.1) after SW 61XX: fetch ``length`` bytes (0 means 256)."""
    return CommandAPDU(0x00, 0xC0, 0x00, 0x00, le=length or 256)


def Verify(pin_block: bytes, *, enciphered: bool = False) -> CommandAPDU:  # noqa: N802
    """VERIFY (EMV 4.4 Book 3 §6.5.12): P2 80 plaintext PIN, 88 enciphered PIN."""
    return CommandAPDU(0x00, 0x20, 0x00, 0x88 if enciphered else 0x80, pin_block)


def InternalAuthenticate(ddol_data: bytes) -> CommandAPDU:  # noqa: N802
    """INTERNAL AUTHENTICATE (EMV 4.4 Book 3 §6.5.9) for DDA, data built from the DDOL."""
    return CommandAPDU(0x00, 0x88, 0x00, 0x00, ddol_data, 256)


def ExternalAuthenticate(issuer_auth_data: bytes) -> CommandAPDU:  # noqa: N802
    """EXTERNAL AUTHENTICATE (EMV 4.4 Book 3 §6.5.4): the ARPC and its data from the issuer."""
    return CommandAPDU(0x00, 0x82, 0x00, 0x00, issuer_auth_data)


def GetChallenge() -> CommandAPDU:  # noqa: N802
    """GET CHALLENGE (EMV 4.4 Book 3 §6.5.6): an 8-byte unpredictable number from the card."""
    return CommandAPDU(0x00, 0x84, 0x00, 0x00, le=256)


def ComputeCryptographicChecksum(udol_data: bytes) -> CommandAPDU:  # noqa: N802
    """COMPUTE CRYPTOGRAPHIC CHECKSUM (EMV Contactless Book C-2 §5.3), Mastercard mag-stripe mode."""
    return CommandAPDU(0x80, 0x2A, 0x8E, 0x80, udol_data, 256)
