"""The sans-I/O payment applet: ``CardApplet.process(c_apdu: bytes) -> bytes``.

The applet is the card and nothing else. It opens no socket, reads no clock and touches no file:
bytes come in, bytes go out, and what the card remembers between taps goes through a
:class:`~hce.keys.CounterStore` given to it. Time, needed only for limited-use key expiry, is
passed in (``process(c, now=…)`` or a ``clock`` callable at construction). Transports in
:mod:`hce.transports` do the I/O; this is what lets one card run in-process, behind pcscd, or
over nfcpy (docs/architecture.md, Conventions 1).

The order of commands is the table in :mod:`hce.states`. Every input gets a status word and
nothing raises (ISO/IEC 7816-4 §5.6 and EMV 4.4 Book 3 §6.3.5 for which one)::

    6700  wrong length: fewer than 4 bytes, Lc inconsistent, PDOL/CDOL1 data of the wrong size
    6A80  incorrect data: GPO data not tag 83, amounts that are not BCD
    6A82  SELECT of an application the card does not have (also the contact PSE 1PAY.SYS.DDF01)
    6A83  READ RECORD of a record that is not there
    6A86  P1/P2 wrong for the command
    6A88  GET DATA of a data object the card does not give out
    6985  a command out of order (hce.states), or the ATC is exhausted
    6986  Visa: the amount needs a consumer device CVM that was not performed ("See Phone")
    6581  the counter could not be made durable: no cryptogram leaves the card
    6D00  unknown instruction; 6E00 unknown class; 6881/6882/6884 channels, SM, chaining
    6988  an issuer script whose MAC fails; 6300 an ARPC that does not verify (:mod:`hce.issuer`)

The two kernels
---------------
``visa`` -- qVSDC online (EMV Contactless Book C-3): GPO checks the PDOL data and answers with
template 77 holding AIP (82), AFL (94), Track 2 Equivalent Data (57), PSN (5F34), IAD (9F10),
the cryptogram (9F26), CID (9F27), ATC (9F36), CTQ (9F6C) and the Form Factor Indicator (9F6E).

``mastercard`` -- M/Chip (EMV Contactless Book C-2): GPO answers AIP and AFL; READ RECORD gives
Track 2 (57), PAN (5A), expiry (5F24), CDOL1 (8C), CDOL2 (8D) …; GENERATE AC takes the CDOL1
data and answers template 77 with CID, ATC, cryptogram, IAD and, when there is cardholder
interaction to report, the POS Cardholder Interaction Information (DF4B).

Cryptograms, "See Phone", replenishment
---------------------------------------
:class:`hce.cryptograms.Minter` decides the cryptogram (ARQC online; AAC when asked, on "See
Phone" or when no limited-use key is left, which :attr:`CardApplet.needs_replenishment` also
tells the wallet), reserves the counters durably, then computes it. Above the CVM limit without
a CVM on the phone a Visa card answers GPO 6986 and a Mastercard card an AAC with DF4B
``00 01 00``; :mod:`hce.cryptograms` has the details.

The dispatch
------------
:data:`INSTRUCTIONS` is the card's other table: each instruction byte with the class it must
carry, the :class:`~hce.states.Command` whose order :mod:`hce.states` checks, and its handler.
The catch-all in :meth:`CardApplet.process` is a last guard, not a way of answering: a command
that reaches it is a defect, answered 6F00, counted in :attr:`CardApplet.internal_errors` and
logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from apdu.cid import AC_TYPES, CID_TYPE_MASK, CRYPTOGRAM_TYPES, cryptogram_type
from apdu.command import PPSE, CommandAPDU
from apdu.dol import dol_length, parse_dol, split_dol_data
from apdu.errors import APDUError
from apdu.formats import decode_n, n_digits
from apdu.sw import SW
from apdu.tlv import TLV, tlv
from cryptogram.cvn import CVN
from hce import issuer
from hce.cryptograms import CryptogramRecord, Minted, Minter, OnlineCryptogram, cda_signature, fdda_objects
from hce.files import afl, build_files
from hce.keys import CounterStore, MemoryCounterStore, usable_luk
from hce.profile import CardProfile
from hce.states import Command, State, next_state

__all__ = ["INSTRUCTIONS", "CardApplet", "Instruction"]

_log = logging.getLogger(__name__)


SW_OK = SW.NO_ERROR.encoded



class CardApplet:
    """A payment card applet for one :class:`~hce.profile.CardProfile` (module docstring).

    ``counters`` keeps the ATC and the key use counts (default: in memory, starting at the
    profile's ``atc``); ``clock`` returns the current Unix time for key expiry (without it, and
    without ``now=`` on :meth:`process`, keys expire only by use count).

    >>> from hce.testcard import builtin_profile
    >>> card = CardApplet(builtin_profile("visa", now=0))
    >>> card.process(bytes.fromhex("00A404000E325041592E5359532E444446303100"))[-2:].hex()
    '9000'
    >>> card.state
    <State.PPSE_SELECTED: 'PPSE_SELECTED'>
    >>> card.process(bytes.fromhex("80A8000002830000")).hex()
    '6985'
    """

    def __init__(
        self,
        profile: CardProfile,
        *,
        counters: CounterStore | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.profile = profile
        self.counters: CounterStore = (
            counters if counters is not None else MemoryCounterStore(atc=profile.atc))
        self._minter = Minter(profile, self.counters, clock)
        self._files = build_files(profile)
        self._pdol = parse_dol(profile.pdol)
        self._pdol_length = dol_length(self._pdol)
        self._cdol1 = parse_dol(profile.cdol1)
        self._cdol1_length = dol_length(self._cdol1)
        self._sfis = {sfi for sfi, _ in self._files.records}
        self._psn = bytes.fromhex(profile.psn)
        self.state = State.IDLE
        self._afl = afl(profile)
        self._pdol_data = b""
        self.blocked = False
        self.cvm_limit = profile.cvm_limit
        self.confirmed_atc: int | None = None
        issuer.restore(self)
        self.internal_errors = 0

    # ------------------------------------------------------------------ public

    def reset(self) -> None:
        """Power-on or field reset: nothing is selected (ISO/IEC 7816-3 §6.2; 14443-4 §8)."""
        self.state = State.IDLE

    @property
    def last_cryptogram(self) -> CryptogramRecord | None:
        """What the card did at its last cryptogram (for the wallet; never the key or the PAN)."""
        return self._minter.last

    @property
    def last_online(self) -> OnlineCryptogram | None:
        """The last online cryptogram, which the issuer's answer (:mod:`hce.issuer`) is bound to."""
        return self._minter.last_online

    @last_online.setter
    def last_online(self, record: OnlineCryptogram | None) -> None:
        self._minter.last_online = record

    @property
    def cvn(self) -> CVN:
        """The card's cryptogram version."""
        return self._minter.cvn

    def needs_replenishment_at(self, now: float | None) -> bool:
        """Whether no limited-use key has budget left (and, when ``now`` is known, time)."""
        return usable_luk(self.profile.luks, self.counters, now) is None

    @property
    def needs_replenishment(self) -> bool:
        """Whether the wallet must fetch new limited-use keys (by the clock, when there is one)."""
        return self.needs_replenishment_at(self._minter.now(None))

    def process(self, c_apdu: bytes, *, now: float | None = None) -> bytes:
        """Answer one command APDU with a response APDU (data and status word); never raises.

        A command that raises inside the applet is a defect: it is answered 6F00 "no precise
        diagnosis" (ISO/IEC 7816-4 §5.6), counted in :attr:`internal_errors` and logged with
        its header only (never the data, which may carry card data).
        """
        raw = bytes(c_apdu)
        try:
            return self._process(raw, now)
        except Exception as exc:  # the last guard: a status word, never a traceback
            self.internal_errors += 1
            _log.error("internal error answering %s: %s", raw[:4].hex().upper(), type(exc).__name__)
            return SW.NO_PRECISE_DIAGNOSIS.encoded

    # ------------------------------------------------------------------ dispatch

    def _process(self, raw: bytes, now: float | None) -> bytes:
        if len(raw) < 4:
            return SW.WRONG_LENGTH.encoded
        cla, ins = raw[0], raw[1]
        if cla == 0x84 and ins in issuer.SCRIPT_INS:
            return issuer.issuer_script(self, raw)
        if cla not in (0x00, 0x80):
            return self._class_error(cla).encoded
        instruction = INSTRUCTIONS.get(ins)
        if instruction is None:
            return SW.INS_NOT_SUPPORTED.encoded
        if cla != instruction.cla:
            return SW.CLA_NOT_SUPPORTED.encoded
        try:
            command = CommandAPDU.from_bytes(raw)
        except APDUError:
            return SW.WRONG_LENGTH.encoded
        if instruction.magstripe and not self.profile.magstripe:
            return SW.INS_NOT_SUPPORTED.encoded
        if instruction.command is None:
            return instruction.handler(self, command, now)
        after = next_state(self.profile.kernel, self.state, instruction.command)
        if after is None:
            return SW.CONDITIONS_OF_USE_NOT_SATISFIED.encoded
        response = instruction.handler(self, command, now)
        if response[-2:] == SW_OK:
            self.state = after
        return response

    @staticmethod
    def _class_error(cla: int) -> SW:
        """ISO/IEC 7816-4 §5.4.1: chaining (b5), secure messaging (b4-b3), channel (b2-b1)."""
        if cla & 0x60 or cla == 0xFF:
            return SW.CLA_NOT_SUPPORTED
        if cla & 0x10:
            return SW.COMMAND_CHAINING_NOT_SUPPORTED
        if cla & 0x0C:
            return SW.SECURE_MESSAGING_NOT_SUPPORTED
        if cla & 0x03:
            return SW.LOGICAL_CHANNEL_NOT_SUPPORTED
        return SW.CLA_NOT_SUPPORTED

    # ------------------------------------------------------------------ SELECT

    def _select(self, command: CommandAPDU, now: float | None) -> bytes:
        """SELECT by DF name (EMV 4.4 Book 1 §11.3; Contactless Book B §3.3 for the PPSE)."""
        if command.p1 != 0x04 or command.p2 not in (0x00, 0x02):
            return SW.INCORRECT_P1_P2.encoded
        name = command.data
        if not name:
            return SW.WRONG_LENGTH.encoded
        if command.p2 == 0x02:
            self.state = State.IDLE
            return SW.FILE_NOT_FOUND.encoded
        if name == PPSE:
            self.state = State.PPSE_SELECTED
            return self._files.ppse_fci + SW_OK
        if len(name) >= 5 and self.profile.aid.startswith(name):
            if self.blocked:   # application blocked by an issuer script (Book 3 §6.5.11)
                self.state = State.IDLE
                return SW.SELECTED_FILE_INVALIDATED.encoded
            self.state = State.APP_SELECTED
            return self._files.app_fci + SW_OK
        self.state = State.IDLE
        return SW.FILE_NOT_FOUND.encoded

    # ------------------------------------------------------------------ GPO

    def _application(self, wanted: str, terminal: Mapping[int, bytes], amount: int, now: float | None,
                     *, see_phone: bool = False) -> Minted:
        """The minter's cryptogram; an ARQC leaves only once the issuer state bound to it is durable."""
        made = self._minter.application(wanted, terminal, amount, now, see_phone=see_phone)
        if made.kind == "ARQC" and not issuer.remember(self):
            return Minted(SW.MEMORY_FAILURE)
        return made

    def _gpo(self, command: CommandAPDU, now: float | None) -> bytes:
        """GET PROCESSING OPTIONS (EMV 4.4 Book 3 §6.5.8): tag 83 around the PDOL data."""
        if command.p1 or command.p2:
            return SW.INCORRECT_P1_P2.encoded
        data = command.data
        if len(data) < 2 or data[0] != 0x83:
            return SW.INCORRECT_DATA.encoded
        if data[1] < 0x80:
            length, body = data[1], data[2:]
        elif data[1] == 0x81 and len(data) >= 3:
            length, body = data[2], data[3:]
        else:
            return SW.INCORRECT_DATA.encoded
        if len(body) != length:
            return SW.INCORRECT_DATA.encoded
        if length != self._pdol_length:
            return SW.WRONG_LENGTH.encoded
        self._pdol_data = body
        if self.profile.kernel == "mastercard":
            aip = self.profile.aip
            if self.profile.magstripe:
                aip = bytes((aip[0], aip[1] & 0x7F))   # byte 2 bit 8: EMV mode not supported
            return tlv(0x77, [tlv(0x82, aip), tlv(0x94, self._afl)]).to_bytes() + SW_OK
        terminal = split_dol_data(self._pdol, body)
        return self._visa_gpo(terminal, now)

    def _visa_gpo(self, terminal: Mapping[int, bytes], now: float | None) -> bytes:
        """qVSDC online (EMV Contactless Book C-3): the cryptogram in the GPO response."""
        amount = decode_n(terminal.get(0x9F02, b"\x00"))
        if amount is None:
            return SW.INCORRECT_DATA.encoded
        profile = self.profile
        if amount > self.cvm_limit and not profile.device_cvm:
            return SW.SEE_PHONE.encoded
        made = self._application("ARQC", terminal, amount, now)
        if made.refused:
            return made.sw.encoded
        ctq = bytearray(profile.ctq or bytes(2))
        if profile.device_cvm and len(ctq) >= 2:
            ctq[1] |= 0x80
        nodes: list[TLV] = [tlv(0x82, profile.aip)]
        if self._afl:
            nodes.append(tlv(0x94, self._afl))
        nodes += [
            tlv(0x57, self._files.track2),
            tlv(0x5F34, self._psn),
            tlv(0x9F10, made.iad),
            tlv(0x9F26, made.ac),
            tlv(0x9F27, bytes((AC_TYPES[made.kind],))),
            tlv(0x9F36, made.atc.to_bytes(2, "big")),
            tlv(0x9F6C, bytes(ctq)),
        ]
        if profile.ffi:
            nodes.append(tlv(0x9F6E, profile.ffi))
        if profile.oda is not None and profile.aip[0] & 0x20:
            nodes += fdda_objects(profile.oda.icc_key, self._minter.seed, terminal, made.atc, bytes(ctq))
        return tlv(0x77, nodes).to_bytes() + SW_OK

    # ------------------------------------------------------------------ READ RECORD, GET DATA

    def _read_record(self, command: CommandAPDU, now: float | None) -> bytes:
        """READ RECORD (EMV 4.4 Book 1 §11.2): P1 the record, P2 = SFI << 3 | 100b."""
        if command.p1 == 0 or command.p2 & 0x07 != 0x04 or command.data:
            return SW.INCORRECT_P1_P2.encoded
        sfi = command.p2 >> 3
        record = self._files.records.get((sfi, command.p1))
        if record is None:
            return (SW.RECORD_NOT_FOUND if sfi in self._sfis else SW.FILE_NOT_FOUND).encoded
        return record + SW_OK

    def _get_data(self, command: CommandAPDU, now: float | None) -> bytes:
        """GET DATA (EMV 4.4 Book 3 §6.5.7): the ATC (9F36) or the last online ATC (9F13)."""
        tag = (command.p1 << 8) | command.p2
        if tag == 0x9F36:
            value = self.counters.last_atc
        elif tag == 0x9F13:
            value = self.counters.last_online_atc
        else:
            return SW.REFERENCED_DATA_NOT_FOUND.encoded
        return tlv(tag, value.to_bytes(2, "big")).to_bytes() + SW_OK

    # ------------------------------------------------------------------ GENERATE AC

    def _generate_ac(self, command: CommandAPDU, now: float | None) -> bytes:
        """GENERATE AC (EMV 4.4 Book 3 §6.5.5) with the CDOL1 data; refused by a mag-stripe-only card."""
        if self.profile.magstripe:
            return SW.CONDITIONS_OF_USE_NOT_SATISFIED.encoded
        p1 = command.p1
        if command.p2 or p1 & 0x2F or cryptogram_type(p1) is None:
            return SW.INCORRECT_P1_P2.encoded
        if len(command.data) != self._cdol1_length:
            return SW.WRONG_LENGTH.encoded
        terminal = split_dol_data(self._cdol1, command.data)
        amount = decode_n(terminal.get(0x9F02, b"\x00"))
        if amount is None:
            return SW.INCORRECT_DATA.encoded
        requested = CRYPTOGRAM_TYPES[p1 & CID_TYPE_MASK]
        oda = self.profile.oda
        cda = bool(p1 & 0x10) and oda is not None and bool(self.profile.aip[0] & 0x01)
        see_phone = amount > self.cvm_limit and not self.profile.device_cvm
        made = self._application("AAC" if requested == "AAC" else "ARQC", terminal, amount, now,
                                       see_phone=see_phone)
        if made.refused:
            return made.sw.encoded
        cid = bytes((AC_TYPES[made.kind],))
        nodes = [tlv(0x9F27, cid), tlv(0x9F36, made.atc.to_bytes(2, "big"))]
        if not (cda and made.kind != "AAC"):
            nodes.append(tlv(0x9F26, made.ac))
        nodes.append(tlv(0x9F10, made.iad))
        if see_phone and made.kind == "AAC" and requested != "AAC":
            nodes.append(tlv(0xDF4B, b"\x00\x01\x00"))
        elif self.profile.device_cvm:
            nodes.append(tlv(0xDF4B, b"\x00\x10\x00"))
        if cda and made.kind != "AAC":
            assert oda is not None
            nodes.append(cda_signature(
                oda.icc_key, self._minter.seed, pdol_data=self._pdol_data, cdol_data=command.data,
                nodes=nodes, cid=cid, ac=made.ac, un=terminal.get(0x9F37, bytes(4)), atc=made.atc))
        return tlv(0x77, nodes).to_bytes() + SW_OK

    # ------------------------------------------------------------------ mag-stripe mode

    def _compute_cryptographic_checksum(self, command: CommandAPDU, now: float | None) -> bytes:
        """COMPUTE CRYPTOGRAPHIC CHECKSUM (Book C-2 §5.3): CVC3 of both tracks over UN and ATC.

        The UDOL data is the numeric unpredictable number (9F6A, 4 bytes BCD); the minter
        reserves the counters and computes (:meth:`hce.cryptograms.Minter.checksums`).
        """
        if command.p1 != 0x8E or command.p2 != 0x80:
            return SW.INCORRECT_P1_P2.encoded
        if len(command.data) != 4:
            return SW.WRONG_LENGTH.encoded
        if n_digits(command.data) is None:
            return SW.INCORRECT_DATA.encoded
        made = self._minter.checksums(command.data, now)
        if made.refused:
            return made.sw.encoded
        return tlv(0x77, [
            tlv(0x9F61, made.ac[:2]),
            tlv(0x9F60, made.ac[2:]),
            tlv(0x9F36, made.atc.to_bytes(2, "big")),
        ]).to_bytes() + SW_OK


@dataclass(frozen=True, slots=True)
class Instruction:
    """One row of :data:`INSTRUCTIONS`: what an instruction byte needs and who answers it.

    ``command`` is the :class:`~hce.states.Command` whose order :mod:`hce.states` checks (the
    state moves on when the handler answers 9000); ``None`` for SELECT, accepted in every
    state. ``magstripe``: only a mag-stripe profile knows the instruction (6D00 otherwise).
    """

    cla: int
    command: Command | None
    handler: Callable[[CardApplet, CommandAPDU, float | None], bytes]
    magstripe: bool = False


#: INS -> its row (EMV 4.4 Book 3 §6.5 for the commands and their classes; Book C-2 §5.3 for 2A;
#: EXTERNAL AUTHENTICATE checks its own state, :mod:`hce.issuer`).
INSTRUCTIONS: dict[int, Instruction] = {
    0xA4: Instruction(0x00, None, CardApplet._select),
    0xA8: Instruction(0x80, Command.GET_PROCESSING_OPTIONS, CardApplet._gpo),
    0xB2: Instruction(0x00, Command.READ_RECORD, CardApplet._read_record),
    0xAE: Instruction(0x80, Command.GENERATE_AC, CardApplet._generate_ac),
    0xCA: Instruction(0x80, Command.GET_DATA, CardApplet._get_data),
    0x82: Instruction(0x00, None, issuer.external_authenticate),
    0x2A: Instruction(0x80, Command.COMPUTE_CRYPTOGRAPHIC_CHECKSUM,
                      CardApplet._compute_cryptographic_checksum, magstripe=True),
}
