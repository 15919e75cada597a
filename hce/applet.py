"""The sans-I/O payment applet: ``CardApplet.process(c_apdu: bytes) -> bytes``.

The applet is the card and nothing else. It opens no socket, reads no clock and touches no file:
bytes come in, bytes go out, and what the card remembers between taps goes through a
:class:`~hce.keys.CounterStore` given to it. Time, needed only for limited-use key expiry, is
passed in (``process(c, now=…)`` or a ``clock`` callable at construction). Transports in
:mod:`hce.transports` do the I/O; this is what lets one card run in-process, behind pcscd, or
over nfcpy (STYLE.md §1).

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

The two kernels
---------------
``visa`` -- qVSDC online (EMV Contactless Book C-3): GPO checks the PDOL data and answers with
template 77 holding AIP (82), AFL (94), Track 2 Equivalent Data (57), PSN (5F34), IAD (9F10),
the cryptogram (9F26), CID (9F27), ATC (9F36), CTQ (9F6C) and the Form Factor Indicator (9F6E).

``mastercard`` -- M/Chip (EMV Contactless Book C-2): GPO answers AIP and AFL; READ RECORD gives
Track 2 (57), PAN (5A), expiry (5F24), CDOL1 (8C), CDOL2 (8D) …; GENERATE AC takes the CDOL1
data and answers template 77 with CID, ATC, cryptogram, IAD and, when there is cardholder
interaction to report, the POS Cardholder Interaction Information (DF4B).

What a cryptogram is made of
----------------------------
GENERATE AC's P1 (EMV 4.4 Book 3 §6.5.5.2, Table 12) asks for an AAC, a TC or an ARQC. This
card is online-only: asked for a TC or an ARQC it answers an ARQC (a card never returns a TC
when going online is possible); asked for an AAC it answers an AAC. It also declines with an
AAC when it cannot go online: no limited-use key with budget and time left (it then says it
needs replenishing, see below), or -- Mastercard -- an amount above the CVM limit without a
consumer device CVM.

The cryptogram is :meth:`cryptogram.cvn.CVN.generate` with the limited-use key in place of the
ICC master key; the IAD carries the key's index (:meth:`~cryptogram.cvn.CVN.build_iad`).
Before any cryptogram, the key's use and the ATC are reserved in the counter store, durably:
an ATC is never used twice, even across a crash.

Consumer device CVM and "See Phone"
-----------------------------------
The wallet records whether the user was verified on the phone (``profile.device_cvm``).

* Visa: with it, CTQ byte 2 bit 8 "Consumer Device CVM Performed" is set (Book C-3, Annex A,
  Card Transaction Qualifiers). Above the CVM limit without it, GPO answers SW 6986, which a
  Kernel 3 reader turns into the "See Phone" message and a Try Again outcome (Book C-3 §5,
  GPO response processing) -- what phone wallets do when the amount needs an unlock.
* Mastercard: with it, the CVR says so (byte 1 bits 3 and 1, "offline PIN verification
  performed / successful", the bits mobile M/Chip profiles use for a successful on-device
  CVM) and DF4B byte 2 bit 5 "OD-CVM verification successful". Above the limit without it,
  GENERATE AC answers an AAC with DF4B = ``00 01 00``, which a Kernel 2 reader's check
  ``DF4B AND 00030F ≠ 0`` turns into "See Phone" and End Application, Start B (Book C-2,
  S910).

Needing replenishment
---------------------
When no limited-use key has budget or time left the card declines (AAC) and says so twice: in
the CVR (Visa byte 3 bit 6 "exceeded velocity checking counters"; Mastercard byte 4 bit 7) and
in :attr:`CardApplet.needs_replenishment`, which the wallet reads to fetch a new batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from apdu.command import PPSE, CommandAPDU
from apdu.dol import dol_length, parse_dol, split_dol_data
from apdu.errors import APDUError
from apdu.tlv import TLV, tlv
from cryptogram import cvc3, oda, scripts
from cryptogram.cvn import ELEMENT_LENGTHS
from cryptogram.cvn import profile as cvn_profile
from hce.errors import CounterExhausted, CounterStoreError
from hce.files import afl, build_files, magstripe_tracks
from hce.keys import CounterStore, MemoryCounterStore, usable_luk
from hce.profile import CardProfile, LimitedUseKeySpec
from hce.states import Command, State, next_state

__all__ = ["CardApplet", "CryptogramRecord"]

_CID = {"AAC": 0x00, "TC": 0x40, "ARQC": 0x80}
_REQUESTED = {0x00: "AAC", 0x40: "TC", 0x80: "ARQC"}
#: CVR bits 6-5 of the byte that reports the first GENERATE AC (EMV 4.4 Book 3 Annex; VIS; M/Chip).
_CVR_AC = {"AAC": 0x00, "TC": 0x10, "ARQC": 0x20}
_CVR_SECOND_AC_NOT_REQUESTED = 0x80

_CLASS_OF = {0xA4: 0x00, 0xB2: 0x00, 0xA8: 0x80, 0xAE: 0x80, 0xCA: 0x80, 0x2A: 0x80}
_GET_DATA_TAGS = (0x9F36, 0x9F13)
#: Issuer script commands the card accepts with secure messaging: APPLICATION BLOCK, UNBLOCK, PUT DATA.
_SCRIPT_INS = frozenset({0x1E, 0x18, 0xDA})


def _sw(sw: int) -> bytes:
    return bytes((sw >> 8, sw & 0xFF))


SW_OK = b"\x90\x00"


def _bcd_amount(value: bytes | None) -> int | None:
    """An amount in format n (BCD), or ``None`` when a nibble is not a digit."""
    if value is None:
        return 0
    text = value.hex()
    return int(text) if text.isdigit() else None


@dataclass(frozen=True, slots=True)
class CryptogramRecord:
    """What the card did at its last cryptogram, for the wallet (never the key or the PAN).

    ``kind`` is ``"ARQC"`` or ``"AAC"``; ``reason`` is ``"online"``, ``"requested"`` (the
    terminal asked for an AAC), ``"see_phone"`` or ``"replenish"``.
    """

    kind: str
    atc: int
    luk_index: int | None
    reason: str
    amount: int


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
        self._clock = clock
        self._cvn = cvn_profile(profile.cvn)
        self._files = build_files(profile)
        self._pdol = parse_dol(profile.pdol)
        self._pdol_length = dol_length(self._pdol)
        self._cdol1 = parse_dol(profile.cdol1)
        self._cdol1_length = dol_length(self._cdol1)
        self._sfis = {sfi for sfi, _ in self._files.records}
        self._psn = bytes.fromhex(profile.psn)
        self.state = State.IDLE
        self.last_cryptogram: CryptogramRecord | None = None
        self._afl = afl(profile)
        self._pdol_data = b""
        self.blocked = False
        self.cvm_limit = profile.cvm_limit
        self._last_online: tuple[bytes, bytes, bytes] | None = None
        secret = profile.oda.icc_key.d if profile.oda is not None else 0
        self._un_seed = hashlib.sha256(secret.to_bytes((secret.bit_length() + 7) // 8, "big")).digest()

    # ------------------------------------------------------------------ public

    def reset(self) -> None:
        """Power-on or field reset: nothing is selected (ISO/IEC 7816-3 §6.2; 14443-4 §8)."""
        self.state = State.IDLE

    def needs_replenishment_at(self, now: float | None) -> bool:
        """Whether no limited-use key has budget left (and, when ``now`` is known, time)."""
        return usable_luk(self.profile.luks, self.counters, now) is None

    @property
    def needs_replenishment(self) -> bool:
        """Whether the wallet must fetch new limited-use keys (by the clock, when there is one)."""
        return self.needs_replenishment_at(self._clock() if self._clock else None)

    def process(self, c_apdu: bytes, *, now: float | None = None) -> bytes:
        """Answer one command APDU with a response APDU (data and status word); never raises."""
        try:
            return self._process(bytes(c_apdu), now)
        except Exception:  # the card's last line: a status word, never a traceback
            return _sw(0x6F00)

    # ------------------------------------------------------------------ dispatch

    def _process(self, raw: bytes, now: float | None) -> bytes:
        if len(raw) < 4:
            return _sw(0x6700)
        cla, ins = raw[0], raw[1]
        if cla == 0x84 and ins in _SCRIPT_INS:
            return self._issuer_script(raw)
        if cla not in (0x00, 0x80):
            return _sw(self._class_error(cla))
        expected_class = _CLASS_OF.get(ins)
        if expected_class is None:
            return _sw(0x6D00)
        if cla != expected_class:
            return _sw(0x6E00)
        try:
            command = CommandAPDU.from_bytes(raw)
        except APDUError:
            return _sw(0x6700)
        if ins == 0xA4:
            return self._select(command)
        if ins == 0xA8:
            return self._gated(Command.GET_PROCESSING_OPTIONS, command, now)
        if ins == 0xB2:
            return self._gated(Command.READ_RECORD, command, now)
        if ins == 0xAE:
            return self._gated(Command.GENERATE_AC, command, now)
        if ins == 0x2A:
            if not self.profile.magstripe:
                return _sw(0x6D00)
            return self._gated(Command.COMPUTE_CRYPTOGRAPHIC_CHECKSUM, command, now)
        return self._gated(Command.GET_DATA, command, now)

    @staticmethod
    def _class_error(cla: int) -> int:
        """ISO/IEC 7816-4 §5.4.1: chaining (b5), secure messaging (b4-b3), channel (b2-b1)."""
        if cla & 0x60 or cla == 0xFF:
            return 0x6E00
        if cla & 0x10:
            return 0x6884
        if cla & 0x0C:
            return 0x6882
        if cla & 0x03:
            return 0x6881
        return 0x6E00

    def _gated(self, what: Command, command: CommandAPDU, now: float | None) -> bytes:
        after = next_state(self.profile.kernel, self.state, what)
        if after is None:
            return _sw(0x6985)
        if what is Command.GET_PROCESSING_OPTIONS:
            response = self._gpo(command, now)
        elif what is Command.READ_RECORD:
            response = self._read_record(command)
        elif what is Command.GENERATE_AC:
            if self.profile.magstripe:
                return _sw(0x6985)
            response = self._generate_ac(command, now)
        elif what is Command.COMPUTE_CRYPTOGRAPHIC_CHECKSUM:
            response = self._compute_cryptographic_checksum(command, now)
        else:
            response = self._get_data(command)
        if response[-2:] == SW_OK:
            self.state = after
        return response

    # ------------------------------------------------------------------ SELECT

    def _select(self, command: CommandAPDU) -> bytes:
        """SELECT by DF name (EMV 4.4 Book 1 §11.3; Contactless Book B §3.3 for the PPSE)."""
        if command.p1 != 0x04 or command.p2 not in (0x00, 0x02):
            return _sw(0x6A86)
        name = command.data
        if not name:
            return _sw(0x6700)
        if command.p2 == 0x02:
            self.state = State.IDLE
            return _sw(0x6A82)
        if name == PPSE:
            self.state = State.PPSE_SELECTED
            return self._files.ppse_fci + SW_OK
        if len(name) >= 5 and self.profile.aid.startswith(name):
            if self.blocked:
                self.state = State.IDLE
                return _sw(0x6283)   # application blocked by an issuer script (Book 3 §6.5.11)
            self.state = State.APP_SELECTED
            return self._files.app_fci + SW_OK
        self.state = State.IDLE
        return _sw(0x6A82)

    # ------------------------------------------------------------------ GPO

    def _gpo(self, command: CommandAPDU, now: float | None) -> bytes:
        """GET PROCESSING OPTIONS (EMV 4.4 Book 3 §6.5.8): tag 83 around the PDOL data."""
        if command.p1 or command.p2:
            return _sw(0x6A86)
        data = command.data
        if len(data) < 2 or data[0] != 0x83:
            return _sw(0x6A80)
        if data[1] < 0x80:
            length, body = data[1], data[2:]
        elif data[1] == 0x81 and len(data) >= 3:
            length, body = data[2], data[3:]
        else:
            return _sw(0x6A80)
        if len(body) != length:
            return _sw(0x6A80)
        if length != self._pdol_length:
            return _sw(0x6700)
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
        amount = _bcd_amount(terminal.get(0x9F02))
        if amount is None:
            return _sw(0x6A80)
        profile = self.profile
        if amount > self.cvm_limit and not profile.device_cvm:
            return _sw(0x6986)
        outcome = self._cryptogram("ARQC", terminal, amount, now)
        if isinstance(outcome, bytes):
            return outcome
        kind, atc, iad, ac = outcome
        ctq = bytearray(profile.ctq or bytes(2))
        if profile.device_cvm and len(ctq) >= 2:
            ctq[1] |= 0x80
        nodes: list[TLV] = [tlv(0x82, profile.aip)]
        if self._afl:
            nodes.append(tlv(0x94, self._afl))
        nodes += [
            tlv(0x57, self._files.track2),
            tlv(0x5F34, self._psn),
            tlv(0x9F10, iad),
            tlv(0x9F26, ac),
            tlv(0x9F27, bytes((_CID[kind],))),
            tlv(0x9F36, atc.to_bytes(2, "big")),
            tlv(0x9F6C, bytes(ctq)),
        ]
        if profile.ffi:
            nodes.append(tlv(0x9F6E, profile.ffi))
        if profile.oda is not None and profile.aip[0] & 0x20:
            nodes += self._fdda(terminal, atc, bytes(ctq))
        return tlv(0x77, nodes).to_bytes() + SW_OK

    def _fdda(self, terminal: Mapping[int, bytes], atc: int, ctq: bytes) -> list[TLV]:
        """fDDA version 01 (EMV Contactless Book C-3 Annex C): sign UN, amount, currency and 9F69.

        The Card Authentication Related Data (9F69) is version 01, the card's unpredictable
        number and the CTQ; the ICC dynamic number is the ATC. The card's unpredictable number is
        derived from the ATC and the terminal's number under the card's key material, so the
        applet needs no source of randomness of its own.
        """
        assert self.profile.oda is not None
        un = terminal.get(0x9F37, bytes(4))
        card_un = self._card_unpredictable(atc, un)[:4]
        cad = b"\x01" + card_un + ctq
        signed = un + terminal.get(0x9F02, bytes(6)) + terminal.get(0x5F2A, bytes(2)) + cad
        sdad = oda.sign_dynamic_data(self.profile.oda.icc_key, b"\x02" + atc.to_bytes(2, "big"), signed,
                                     fmt=oda.FORMAT_FDDA)
        return [tlv(0x9F69, cad), tlv(0x9F4B, sdad)]

    def _card_unpredictable(self, atc: int, terminal_un: bytes) -> bytes:
        """A number the terminal cannot predict: SHA-256 under a secret of the card's private key."""
        return hashlib.sha256(self._un_seed + atc.to_bytes(2, "big") + terminal_un).digest()

    # ------------------------------------------------------------------ READ RECORD

    def _read_record(self, command: CommandAPDU) -> bytes:
        """READ RECORD (EMV 4.4 Book 1 §11.2): P1 the record, P2 = SFI << 3 | 100b."""
        if command.p1 == 0 or command.p2 & 0x07 != 0x04 or command.data:
            return _sw(0x6A86)
        sfi = command.p2 >> 3
        record = self._files.records.get((sfi, command.p1))
        if record is None:
            return _sw(0x6A83 if sfi in self._sfis else 0x6A82)
        return record + SW_OK

    # ------------------------------------------------------------------ GET DATA

    def _get_data(self, command: CommandAPDU) -> bytes:
        """GET DATA (EMV 4.4 Book 3 §6.5.7): the ATC (9F36) or the last online ATC (9F13)."""
        tag = (command.p1 << 8) | command.p2
        if tag not in _GET_DATA_TAGS:
            return _sw(0x6A88)
        value = self.counters.last_atc if tag == 0x9F36 else self.counters.last_online_atc
        return tlv(tag, value.to_bytes(2, "big")).to_bytes() + SW_OK

    # ------------------------------------------------------------------ GENERATE AC

    def _generate_ac(self, command: CommandAPDU, now: float | None) -> bytes:
        """GENERATE AC (EMV 4.4 Book 3 §6.5.5) with the CDOL1 data."""
        p1 = command.p1
        if command.p2 or p1 & 0x2F or p1 & 0xC0 == 0xC0:
            return _sw(0x6A86)
        if len(command.data) != self._cdol1_length:
            return _sw(0x6700)
        terminal = split_dol_data(self._cdol1, command.data)
        amount = _bcd_amount(terminal.get(0x9F02))
        if amount is None:
            return _sw(0x6A80)
        requested = _REQUESTED[p1 & 0xC0]
        cda = bool(p1 & 0x10) and self.profile.oda is not None and bool(self.profile.aip[0] & 0x01)
        see_phone = amount > self.cvm_limit and not self.profile.device_cvm
        outcome = self._cryptogram("AAC" if requested == "AAC" else "ARQC", terminal, amount, now,
                                   see_phone=see_phone)
        if isinstance(outcome, bytes):
            return outcome
        kind, atc, iad, ac = outcome
        cid = bytes((_CID[kind],))
        nodes = [tlv(0x9F27, cid), tlv(0x9F36, atc.to_bytes(2, "big"))]
        if not (cda and kind != "AAC"):
            nodes.append(tlv(0x9F26, ac))
        nodes.append(tlv(0x9F10, iad))
        if see_phone and kind == "AAC" and requested != "AAC":
            nodes.append(tlv(0xDF4B, b"\x00\x01\x00"))
        elif self.profile.device_cvm:
            nodes.append(tlv(0xDF4B, b"\x00\x10\x00"))
        if cda and kind != "AAC":
            nodes.append(self._cda(command.data, nodes, cid, ac, terminal.get(0x9F37, bytes(4)), atc))
        return tlv(0x77, nodes).to_bytes() + SW_OK

    def _cda(self, cdol_data: bytes, nodes: list[TLV], cid: bytes, ac: bytes, un: bytes, atc: int) -> TLV:
        """The CDA signature (EMV 4.4 Book 2 §6.6.1): the cryptogram travels inside 9F4B.

        The transaction data hash covers the PDOL data of GPO, the CDOL1 data, and the response's
        other data objects in the order they are sent; the signature covers the terminal's UN.
        """
        assert self.profile.oda is not None
        objects = b"".join(node.to_bytes() for node in nodes)
        digest = oda.cda_transaction_hash(self._pdol_data, cdol_data, objects)
        idn = self._card_unpredictable(atc, un)[:8]
        dynamic = oda.cda_dynamic_data(idn, cid, ac, digest)
        return tlv(0x9F4B, oda.sign_dynamic_data(self.profile.oda.icc_key, dynamic, un))

    # ------------------------------------------------------------------ issuer scripts

    def _issuer_script(self, raw: bytes) -> bytes:
        """An issuer script command with secure messaging (EMV 4.4 Book 2 §9, Book 3 §6.5.1-2,
        §6.5.10-11): accepted only after this tap's online cryptogram, whose ATC and ARQC its MAC
        covers; the session keys come from the limited-use key that made the ARQC.

        ``84 1E`` APPLICATION BLOCK, ``84 18`` APPLICATION UNBLOCK, ``04``/``84 DA 9F 6B`` PUT
        DATA of the Card CVM Limit (enciphered, 6 bytes BCD). A MAC that fails is 6988.
        """
        if self.state is not State.COMPLETED or self._last_online is None:
            return _sw(0x6985)
        atc, arqc, key = self._last_online
        mac_key, enc_key = scripts.session_keys(key, atc)
        body = scripts.verify_script(raw, mac_key=mac_key, atc=atc, cryptogram=arqc)
        if body is None:
            return _sw(0x6988)
        ins, p1, p2 = raw[1], raw[2], raw[3]
        if ins == 0x1E:
            self.blocked = True
        elif ins == 0x18:
            self.blocked = False
        elif (p1, p2) == (0x9F, 0x6B):
            try:
                scheme = "visa" if self.profile.kernel == "visa" else "mastercard"
                value = scripts.decipher(enc_key, body, scheme)
            except ValueError:
                return _sw(0x6A80)
            amount = _bcd_amount(value[:6]) if len(value) >= 6 else None
            if amount is None:
                return _sw(0x6A80)
            self.cvm_limit = amount
        else:
            return _sw(0x6A88)
        return SW_OK

    # ------------------------------------------------------------------ mag-stripe mode

    def _compute_cryptographic_checksum(self, command: CommandAPDU, now: float | None) -> bytes:
        """COMPUTE CRYPTOGRAPHIC CHECKSUM (Book C-2 §5.3): CVC3 of both tracks over UN and ATC.

        The UDOL data is the numeric unpredictable number (9F6A, 4 bytes BCD). KD(CVC3) is the
        current limited-use key, as for the application cryptogram; the ATC and the key use are
        reserved first, as for every cryptogram.
        """
        if command.p1 != 0x8E or command.p2 != 0x80:
            return _sw(0x6A86)
        if len(command.data) != 4:
            return _sw(0x6700)
        if not command.data.hex().isdigit():
            return _sw(0x6A80)
        if now is None and self._clock is not None:
            now = self._clock()
        luk = usable_luk(self.profile.luks, self.counters, now)
        if luk is None:
            return _sw(0x6985)
        try:
            self.counters.reserve_luk_use(luk.index)
            atc = self.counters.reserve_next_atc(online=True).to_bytes(2, "big")
        except CounterExhausted:
            return _sw(0x6985)
        except CounterStoreError:
            return _sw(0x6581)
        track1, track2 = magstripe_tracks(self.profile)
        un = command.data
        value2 = cvc3.cvc3(luk.key, cvc3.ivcvc3(luk.key, track2), un, atc)
        value1 = cvc3.cvc3(luk.key, cvc3.ivcvc3(luk.key, track1), un, atc)
        self.last_cryptogram = CryptogramRecord("CVC3", int.from_bytes(atc, "big"), luk.index, "online", 0)
        return tlv(0x77, [
            tlv(0x9F61, value2.to_bytes(2, "big")),
            tlv(0x9F60, value1.to_bytes(2, "big")),
            tlv(0x9F36, atc),
        ]).to_bytes() + SW_OK

    # ------------------------------------------------------------------ the cryptogram

    def _cryptogram(
        self, wanted: str, terminal: Mapping[int, bytes], amount: int, now: float | None,
        *, see_phone: bool = False,
    ) -> tuple[str, int, bytes, bytes] | bytes:
        """Decide, reserve the counters durably, then compute: (kind, ATC, IAD, AC) or an SW."""
        if now is None and self._clock is not None:
            now = self._clock()
        luk = usable_luk(self.profile.luks, self.counters, now)
        if wanted == "AAC":
            kind, reason = "AAC", "requested"
        elif see_phone:
            kind, reason = "AAC", "see_phone"
        elif luk is None:
            kind, reason = "AAC", "replenish"
        else:
            kind, reason = "ARQC", "online"
        key_spec: LimitedUseKeySpec | None = luk if luk is not None else (
            self.profile.luks[-1] if self.profile.luks else None)
        try:
            if kind == "ARQC":
                assert luk is not None
                self.counters.reserve_luk_use(luk.index)
            atc = self.counters.reserve_next_atc(online=kind == "ARQC")
        except CounterExhausted:
            return _sw(0x6985)
        except CounterStoreError:
            return _sw(0x6581)
        cvr = self._cvr(kind, replenish=reason == "replenish")
        luk_index = key_spec.index if key_spec is not None else None
        iad = self._cvn.build_iad(cvr, dki=self.profile.dki, luk_index=luk_index)
        if key_spec is None:
            ac = bytes(8)
        else:
            values = {tag: bytes(length) for tag, length in ELEMENT_LENGTHS.items()}
            for tag, value in terminal.items():
                if tag in values and len(value) == len(values[tag]):
                    values[tag] = value
            values[0x82] = self.profile.aip
            values[0x9F36] = atc.to_bytes(2, "big")
            values[0x9F10] = iad
            ac = self._cvn.generate(key_spec.key, values).cryptogram
        used = luk_index if kind == "ARQC" else None
        if kind == "ARQC" and key_spec is not None:
            self._last_online = (atc.to_bytes(2, "big"), ac, key_spec.key)
        self.last_cryptogram = CryptogramRecord(kind, atc, used, reason, amount)
        return kind, atc, iad, ac

    def _cvr(self, kind: str, *, replenish: bool) -> bytes:
        """Card Verification Results for the IAD (VIS 1.6 Appendix; M/Chip 4 CVR), see module docs."""
        first = _CVR_SECOND_AC_NOT_REQUESTED | _CVR_AC[kind]
        if self._cvn.network == "mastercard":
            cvr = bytearray(6)
            cvr[0] = first | (0x05 if self.profile.device_cvm else 0)
            if replenish:
                cvr[3] |= 0x40
        else:
            cvr = bytearray((0x03, first, 0x20 if replenish else 0x00, 0x00))
        length = self._cvn.cvr_length
        if len(cvr) > length:
            cvr = cvr[len(cvr) - length:]
        return bytes(cvr).ljust(length, b"\x00")
