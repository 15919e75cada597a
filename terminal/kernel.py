"""The sans-I/O contactless kernel: emits the next C-APDU and consumes the R-APDU.

Why it is shaped so
-------------------
A contactless tap is a short conversation in which the terminal always speaks first and the
card only answers. So the kernel is a function of what the card last said: given a response it
returns the next command, or ``None`` once it has reached an outcome. It owns no reader, no
socket and no clock; whoever holds the transport (:mod:`terminal.tap`, a test, a benchmark)
carries the bytes and the time. The same kernel therefore runs in process against the hce
applet, on a PC/SC reader, over nfcpy, or against a recorded trace (DESIGN.md, "Sans-I/O core";
python-hyper/h11 is the model).

A response is first reduced to an *event* (:class:`Event`: the command worked, the
application was not found, the card asked to see the phone, conditions were not satisfied,
anything else), and the pair (state, event) is looked up in :data:`TRANSITIONS`. The table is
the documentation: every reaction the kernel has to a status word is one row of it, as in
EMV Contactless Book A §3 (Entry Point: pre-processing, protocol activation, combination
selection) and the kernel books C-2 (Mastercard M/Chip) and C-3 (Visa qVSDC)::

    START ─start()─▶ SELECT_PPSE ─ok─▶ SELECT_AID ─ok─▶ GPO ─ok─▶ READ_RECORD* ─▶ (GENERATE_AC) ─▶ DONE
                        │ not found        │ not found: next candidate   │ 6986: try again, see phone
                        ▼                  ▼                             ▼ 6984/6985: try another interface
               try another interface   end application              other: end application

Two paths leave GET PROCESSING OPTIONS. On the Visa path (qVSDC, Book C-3) the card returns
its cryptogram in the GPO response and the records only complete the card's data. On the
Mastercard path (M/Chip, Book C-2) GPO returns the AIP and AFL, the terminal reads the records,
then asks for the cryptogram with GENERATE AC built from CDOL1. The kernel picks the path from
the application's kernel identifier (9F2A) or its AID, unless the terminal forces one.

Pre-processing (Book A §3.1.1) runs before the first command: an amount at or above the
contactless transaction limit ends the tap with Try Another Interface and no APDU at all; the
floor limit and the CVM-required limit set bits in byte 2 of the TTQ (9F66).

The kernel never raises because of the card: a status word, undecodable data or an AFL that
makes no sense is an outcome. It raises :class:`~terminal.errors.KernelError` only when it is
driven out of order.

>>> from terminal.config import TerminalConfig, Transaction
>>> k = Kernel(TerminalConfig(), Transaction(amount=1250), unpredictable=lambda n: bytes(n))
>>> k.start().to_bytes().hex().upper()
'00A404000E325041592E5359532E444446303100'
>>> k.step
'select_ppse'
>>> k.receive(bytes.fromhex("6A82")) is None, k.outcome.outcome.value
(True, 'try_another_interface')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from apdu.command import (
    PPSE,
    CommandAPDU,
    ComputeCryptographicChecksum,
    GenerateAC,
    GetProcessingOptions,
    InternalAuthenticate,
    ReadRecord,
    Select,
)
from apdu.dol import build_dol_data
from apdu.errors import APDUError
from apdu.response import ResponseAPDU
from apdu.tags import format_of
from apdu.tlv import TLV, decode, to_dict, walk
from cryptogram import cvc3 as magstripe
from cryptogram.oda import cda_transaction_hash
from terminal import oda
from terminal.capk import CaKeyTable
from terminal.config import TerminalConfig, Transaction, currency, supported_aid
from terminal.errors import KernelError
from terminal.outcome import MESSAGES, SEE_PHONE, KernelOutcome, Outcome, authorization_block

UnpredictableSource = Callable[[int], bytes]
"""Where the unpredictable number (9F37) comes from: ``n -> n random bytes`` (``secrets.token_bytes``)."""


class State(Enum):
    """Where the kernel is: which command it is waiting on the answer to."""

    START = "start"
    SELECT_PPSE = "select_ppse"
    SELECT_AID = "select_aid"
    GPO = "gpo"
    READ_RECORD = "read_record"
    INTERNAL_AUTHENTICATE = "internal_authenticate"
    COMPUTE_CHECKSUM = "compute_cryptographic_checksum"
    GENERATE_AC = "generate_ac"
    DONE = "done"


class Event(Enum):
    """A response reduced to what the kernel reacts to (ISO/IEC 7816-4 §5.6, EMV Book C-3 §5.2)."""

    OK = "ok"                    # 9000
    NOT_FOUND = "not_found"      # 6A81 function not supported, 6A82 not found, 6283 blocked
    SEE_PHONE = "see_phone"      # 6986: the phone wants its holder to verify (Book C-3 §5.2.2)
    CONDITIONS = "conditions"    # 6984, 6985: not on this interface
    ERROR = "error"              # anything else


_EVENTS: dict[int, Event] = {
    0x9000: Event.OK,
    0x6A81: Event.NOT_FOUND,
    0x6A82: Event.NOT_FOUND,
    0x6283: Event.NOT_FOUND,
    0x6986: Event.SEE_PHONE,
    0x6984: Event.CONDITIONS,
    0x6985: Event.CONDITIONS,
}

#: (state, event) -> the handler that reacts; a missing pair falls back to (state, ERROR).
TRANSITIONS: dict[tuple[State, Event], str] = {
    (State.SELECT_PPSE, Event.OK): "_on_ppse",
    (State.SELECT_PPSE, Event.ERROR): "_on_no_ppse",
    (State.SELECT_AID, Event.OK): "_on_aid",
    (State.SELECT_AID, Event.ERROR): "_on_next_candidate",
    (State.GPO, Event.OK): "_on_gpo",
    (State.GPO, Event.SEE_PHONE): "_on_see_phone",
    (State.GPO, Event.CONDITIONS): "_on_other_interface",
    (State.GPO, Event.NOT_FOUND): "_on_next_candidate",
    (State.GPO, Event.ERROR): "_on_gpo_error",
    (State.READ_RECORD, Event.OK): "_on_record",
    (State.READ_RECORD, Event.ERROR): "_on_end",
    (State.INTERNAL_AUTHENTICATE, Event.OK): "_on_internal_authenticate",
    (State.INTERNAL_AUTHENTICATE, Event.ERROR): "_on_internal_authenticate",
    (State.COMPUTE_CHECKSUM, Event.OK): "_on_checksum",
    (State.COMPUTE_CHECKSUM, Event.ERROR): "_on_end",
    (State.GENERATE_AC, Event.OK): "_on_ac",
    (State.GENERATE_AC, Event.SEE_PHONE): "_on_see_phone",
    (State.GENERATE_AC, Event.ERROR): "_on_end",
}

#: Cryptogram Information Data (9F27) bits 8-7 (EMV 4.4 Book 3 §6.5.5.4, Table 14).
CRYPTOGRAM_TYPES: dict[int, str] = {0x00: "AAC", 0x40: "TC", 0x80: "ARQC"}

_OUTCOME_OF_CRYPTOGRAM: dict[str, Outcome] = {
    "AAC": Outcome.DECLINED,
    "TC": Outcome.APPROVED,
    "ARQC": Outcome.ONLINE_REQUEST,
}

_KERNEL_BY_ID: dict[int, str] = {
    2: "mastercard", 3: "visa", 4: "mastercard", 5: "mastercard", 6: "visa", 7: "visa",
}

#: Application Version Number (terminal) 9F09 per kernel path (Book C-3 Annex A: VCPS 2.2 is
#: 0096; Book C-2 Annex A: M/Chip 0002).
TERMINAL_APP_VERSION: dict[str, bytes] = {"visa": b"\x00\x96", "mastercard": b"\x00\x02"}

#: TTQ byte 2 (EMV Contactless Book C-3 §A.2, Table A-1).
TTQ_ONLINE_CRYPTOGRAM_REQUIRED = 0x80
TTQ_CVM_REQUIRED = 0x40

#: CVM Results (9F34, EMV 4.4 Book 3 Annex C3) the Mastercard path reports.
CVM_RESULTS: dict[str, bytes] = {
    "no_cvm": bytes.fromhex("1F0302"),
    "cdcvm": bytes.fromhex("010002"),
    "signature": bytes.fromhex("1E0300"),
}


@dataclass(frozen=True, slots=True)
class Candidate:
    """An application on the candidate list (EMV Contactless Book B §3.3.2).

    ``priority`` is the Application Priority Indicator (87) low nibble, 0 for none (after all
    others); ``order`` its place in the PPSE, which breaks ties.
    """

    aid: bytes
    label: str
    priority: int
    kernel_id: int
    kernel: str
    order: int = 0

    @property
    def sort_key(self) -> tuple[int, int]:
        """Priority 1 first, 15 last, none after every prioritised entry; PPSE order on ties."""
        return (self.priority or 16, self.order)


def bcd(value: int, length: int) -> bytes:
    """``value`` as ``length`` bytes of packed BCD, right-aligned (EMV 4.4 Book 3 §4.3, format n).

    >>> bcd(1250, 6).hex()
    '000000001250'
    """
    digits = str(value).zfill(2 * length)
    if len(digits) > 2 * length:
        raise ValueError(f"{value} does not fit {length} BCD bytes")
    return bytes.fromhex(digits)


def _needs_phone(pci: bytes) -> bool:
    """POS Cardholder Interaction Information (DF4B) AND '00030F' is not zero (Book C-2 §S910)."""
    padded = pci.ljust(3, b"\x00")
    return bool(padded[1] & 0x03 or padded[2] & 0x0F)


def parse_afl_oda(afl: bytes) -> list[tuple[int, int, bool]] | None:
    """Like :func:`parse_afl`, each record with whether it takes part in offline data authentication.

    >>> parse_afl_oda(bytes.fromhex("08010201"))
    [(1, 1, True), (1, 2, False)]
    """
    records = parse_afl(afl)
    if records is None:
        return None
    out: list[tuple[int, int, bool]] = []
    for i in range(0, len(afl), 4):
        sfi, first, last, count = afl[i] >> 3, afl[i + 1], afl[i + 2], afl[i + 3]
        out.extend((sfi, r, r < first + count) for r in range(first, last + 1))
    return out


def parse_afl(afl: bytes) -> list[tuple[int, int]] | None:
    """The (SFI, record) pairs an Application File Locator names, or ``None`` if it is malformed.

    EMV 4.4 Book 3 §10.2: four bytes per entry (SFI << 3, first record, last record, records
    for offline data authentication); SFI 1..30, first record >= 1, last >= first.

    >>> parse_afl(bytes.fromhex("08010200 10010100"))
    [(1, 1), (1, 2), (2, 1)]
    >>> parse_afl(bytes.fromhex("080201")) is None
    True
    """
    if len(afl) % 4:
        return None
    out: list[tuple[int, int]] = []
    for i in range(0, len(afl), 4):
        sfi, first, last, oda = afl[i] >> 3, afl[i + 1], afl[i + 2], afl[i + 3]
        if not 1 <= sfi <= 30 or first == 0 or last < first or oda > last - first + 1:
            return None
        out.extend((sfi, r) for r in range(first, last + 1))
    return out


class Kernel:
    """One tap's state machine (see the module's essay and :data:`TRANSITIONS`).

    ``unpredictable`` gives the unpredictable number (9F37, 4 bytes): ``secrets.token_bytes``
    in use, a fixed function in tests. Drive it with :meth:`start` then :meth:`receive` until
    it returns ``None``; :attr:`outcome` is then set.
    """

    def __init__(
        self,
        config: TerminalConfig,
        transaction: Transaction,
        *,
        unpredictable: UnpredictableSource,
        ca_keys: CaKeyTable | None = None,
    ) -> None:
        self.config = config
        self.transaction = transaction
        self.state = State.START
        self.step = State.START.value
        self.outcome: KernelOutcome | None = None
        self.candidates: list[Candidate] = []
        self.candidate: Candidate | None = None
        self.card: dict[int, bytes] = {}
        self.terminal: dict[int, bytes] = {}
        self.cvm_required = False
        self.online_required = False
        self._records: list[tuple[int, int, bool]] = []
        self._unpredictable = unpredictable
        self._ca_keys = ca_keys
        self._reading: tuple[int, bool] = (0, False)
        self._oda_records: list[tuple[int, bytes]] = []
        self._pdol_data = b""
        self._cdol_data = b""
        self._ddol_data = b""
        self._method: str | None = None
        self._magstripe = False
        self._un_digits = ""
        self.oda: oda.OdaResult | None = None

    # -- driving ---------------------------------------------------------------------------

    def start(self) -> CommandAPDU | None:
        """Pre-process the amount and return SELECT PPSE, or ``None`` if contactless is not allowed."""
        if self.state is not State.START:
            raise KernelError("start() was already called")
        limits, amount = self.config.limits, self.transaction.amount
        if amount >= limits.transaction:
            return self._finish(
                Outcome.TRY_ANOTHER_INTERFACE, "amount at or above the contactless transaction limit"
            )
        self.online_required = amount > limits.floor or amount == 0
        self.cvm_required = amount >= limits.cvm
        ttq = bytearray(self.config.ttq)
        if self.online_required:
            ttq[1] |= TTQ_ONLINE_CRYPTOGRAM_REQUIRED
        if self.cvm_required:
            ttq[1] |= TTQ_CVM_REQUIRED
        self.terminal = self._terminal_data(bytes(ttq))
        return self._send(State.SELECT_PPSE, Select(PPSE))

    def receive(self, response: ResponseAPDU | bytes) -> CommandAPDU | None:
        """Consume the card's answer to the last command; return the next one or ``None`` when done."""
        if self.state in (State.START, State.DONE):
            raise KernelError(f"no command is outstanding (state {self.state.value})")
        if not isinstance(response, ResponseAPDU):
            try:
                response = ResponseAPDU.from_bytes(response)
            except APDUError:
                return self._finish(Outcome.END_APPLICATION, "a response shorter than a status word")
        event = _EVENTS.get(response.sw, Event.ERROR)
        handler = TRANSITIONS.get((self.state, event)) or TRANSITIONS[(self.state, Event.ERROR)]
        try:
            result: CommandAPDU | None = getattr(self, handler)(response)
        except APDUError as exc:
            return self._finish(Outcome.END_APPLICATION, f"card data could not be decoded: {exc}")
        return result

    @property
    def done(self) -> bool:
        """Whether the kernel has reached an outcome."""
        return self.state is State.DONE

    # -- handlers (named in TRANSITIONS) ---------------------------------------------------

    def _on_ppse(self, response: ResponseAPDU) -> CommandAPDU | None:
        """Build the candidate list from the PPSE's FCI (EMV Contactless Book B §3.3.2)."""
        nodes = decode(response.data)
        found: list[Candidate] = []
        for order, entry in enumerate(n for n in walk(nodes) if n.tag == 0x61):
            aid_node = entry.find(0x4F)
            if aid_node is None:
                continue
            match = supported_aid(aid_node.value, self.config.supported_aids)
            if match is None:
                continue
            label_node, prio_node, kid_node = entry.find(0x50), entry.find(0x87), entry.find(0x9F2A)
            kernel_id = kid_node.value[0] if kid_node is not None and kid_node.value else match.kernel_id
            kernel = self.config.kernel or _KERNEL_BY_ID.get(kernel_id, match.kernel)
            found.append(Candidate(
                aid=aid_node.value,
                label=label_node.value.decode("ascii", "replace") if label_node else match.name,
                priority=prio_node.value[0] & 0x0F if prio_node is not None and prio_node.value else 0,
                kernel_id=kernel_id,
                kernel=kernel,
                order=order,
            ))
        self.candidates = sorted(found, key=lambda c: c.sort_key)
        if not self.candidates:
            return self._finish(Outcome.TRY_ANOTHER_INTERFACE, "no application on the card is supported")
        return self._select_next()

    def _on_no_ppse(self, response: ResponseAPDU) -> CommandAPDU | None:
        """No PPSE: the card is not contactless-capable here (Book B §3.3.2.2)."""
        return self._finish(Outcome.TRY_ANOTHER_INTERFACE, f"SELECT PPSE answered {response.sw_hex}")

    def _on_next_candidate(self, response: ResponseAPDU) -> CommandAPDU | None:
        """The application is not there or refused: try the next candidate (Book B §3.3.3)."""
        return self._select_next()

    def _on_aid(self, response: ResponseAPDU) -> CommandAPDU | None:
        """Keep the FCI's data and send GET PROCESSING OPTIONS with PDOL data (EMV 4.4 Book 3 §10.1)."""
        nodes = decode(response.data)
        fci = to_dict(nodes)
        assert self.candidate is not None
        self.card = {k: v for k, v in fci.items() if k != 0x84}
        self.card[0x84] = fci.get(0x84, self.candidate.aid)
        self.card.setdefault(0x4F, self.candidate.aid)
        self.terminal[0x9F09] = TERMINAL_APP_VERSION.get(self.candidate.kernel, b"\x00\x02")
        pdol = fci.get(0x9F38, b"")
        pdol_data = build_dol_data(pdol, self.terminal, format_of=self._format_of) if pdol else b""
        self._pdol_data = pdol_data
        return self._send(State.GPO, GetProcessingOptions(pdol_data))

    def _on_gpo(self, response: ResponseAPDU) -> CommandAPDU | None:
        """Read the AIP and AFL, format 1 (80) or 2 (77) (EMV 4.4 Book 3 §6.5.8.4)."""
        nodes = decode(response.data)
        if len(nodes) == 1 and nodes[0].tag == 0x80:
            body = nodes[0].value
            if len(body) < 2:
                return self._finish(Outcome.END_APPLICATION, "GPO response format 1 without an AIP")
            self.card[0x82], self.card[0x94] = body[:2], body[2:]
        elif len(nodes) == 1 and nodes[0].tag == 0x77:
            for tag, value in to_dict(nodes).items():
                self.card[tag] = value
        else:
            return self._finish(Outcome.END_APPLICATION, "GPO response is neither format 1 (80) nor 2 (77)")
        if 0x82 not in self.card:
            return self._finish(Outcome.END_APPLICATION, "GPO response without an AIP (82)")
        records = parse_afl_oda(self.card.get(0x94, b""))
        if records is None:
            return self._finish(Outcome.END_APPLICATION, "the AFL (94) is malformed")
        self._records = records
        aip = self.card[0x82]
        assert self.candidate is not None
        self._magstripe = self.candidate.kernel == "mastercard" and len(aip) >= 2 and not aip[1] & 0x80
        return self._next_record_or_decide()

    def _on_gpo_error(self, response: ResponseAPDU) -> CommandAPDU | None:
        """GPO refused: Mastercard selects the next application (C-2), Visa ends (C-3 §5.2.2)."""
        if self.candidate is not None and self.candidate.kernel == "mastercard":
            return self._select_next()
        return self._finish(Outcome.END_APPLICATION, f"GET PROCESSING OPTIONS answered {response.sw_hex}")

    def _on_record(self, response: ResponseAPDU) -> CommandAPDU | None:
        """Keep a record's data; a record is a 70 template (EMV 4.4 Book 3 §10.2)."""
        sfi, for_oda = self._reading
        if for_oda:
            self._oda_records.append((sfi, response.data))
        nodes = decode(response.data)
        if not nodes or nodes[0].tag != 0x70:
            return self._finish(Outcome.END_APPLICATION, "a record is not a 70 template")
        for tag, value in to_dict(nodes).items():
            self.card.setdefault(tag, value)
        return self._next_record_or_decide()

    def _on_ac(self, response: ResponseAPDU) -> CommandAPDU | None:
        """Read the cryptogram, format 1 (80) or 2 (77) (EMV 4.4 Book 3 §6.5.5.4)."""
        nodes = decode(response.data)
        if len(nodes) == 1 and nodes[0].tag == 0x80:
            body = nodes[0].value
            if len(body) < 11:
                return self._finish(Outcome.END_APPLICATION, "GENERATE AC format 1 shorter than 11 bytes")
            self.card[0x9F27], self.card[0x9F36], self.card[0x9F26] = body[:1], body[1:3], body[3:11]
            if body[11:]:
                self.card[0x9F10] = body[11:]
        elif len(nodes) == 1 and nodes[0].tag == 0x77:
            self.card.update(to_dict(nodes))
        else:
            return self._finish(Outcome.END_APPLICATION, "GENERATE AC response is neither format 1 nor 2")
        if self._method == "cda":
            self._cda(response.data, nodes)
            if self.done:
                return None
        if 0x9F26 not in self.card:
            return self._finish(Outcome.END_APPLICATION, "GENERATE AC returned no cryptogram")
        pci = self.card.get(0xDF4B, b"")
        cid = self.card.get(0x9F27, b"\x80")[0] & 0xC0
        if cid == 0x00 and _needs_phone(pci):
            return self._finish(Outcome.TRY_AGAIN, "the phone asks its holder to verify", message=SEE_PHONE)
        return self._decide_by_cryptogram()

    def _on_see_phone(self, response: ResponseAPDU) -> CommandAPDU | None:
        """6986: the phone asks its holder to verify, then tap again (Book C-3 §5.2.2; Book A Table 7.1)."""
        return self._finish(Outcome.TRY_AGAIN, "the phone asks its holder to verify", message=SEE_PHONE)

    def _on_other_interface(self, response: ResponseAPDU) -> CommandAPDU | None:
        """6984/6985 to GPO: this card will not pay contactless here (Book C-3 §5.2.2)."""
        reason = f"GET PROCESSING OPTIONS answered {response.sw_hex}"
        return self._finish(Outcome.TRY_ANOTHER_INTERFACE, reason)

    def _on_end(self, response: ResponseAPDU) -> CommandAPDU | None:
        """Any other error: end the application."""
        reason = f"{self.step} answered {response.sw_hex}: {response.meaning}"
        return self._finish(Outcome.END_APPLICATION, reason)

    # -- steps -----------------------------------------------------------------------------

    def _select_next(self) -> CommandAPDU | None:
        if not self.candidates:
            return self._finish(Outcome.END_APPLICATION, "no candidate application could be selected")
        self.candidate = self.candidates.pop(0)
        self.card = {}
        self._oda_records = []
        return self._send(State.SELECT_AID, Select(self.candidate.aid))

    def _next_record_or_decide(self) -> CommandAPDU | None:
        if self._records:
            sfi, record, for_oda = self._records.pop(0)
            self._reading = (sfi, for_oda)
            return self._send(State.READ_RECORD, ReadRecord(sfi, record))
        assert self.candidate is not None
        self._method = oda.choose_method(
            self.card.get(0x82, b""), self.config.capabilities, self.candidate.kernel, self.card)
        if self._magstripe:
            return self._compute_checksum()
        if self.candidate.kernel == "visa":
            if 0x9F26 not in self.card:
                return self._finish(Outcome.END_APPLICATION, "qVSDC: the GPO response carried no cryptogram")
            return self._visa_decide()
        if 0x9F26 in self.card:
            return self._decide_by_cryptogram()
        if self._method == "sda":
            self._record_oda(oda.perform_sda(self._table(), self.card, self._static(), self.transaction.date))
        elif self._method == "dda":
            return self._internal_authenticate()
        elif self._method is None:
            self._record_oda(oda.NOT_PERFORMED)
        return self._generate_ac()

    def _compute_checksum(self) -> CommandAPDU | None:
        """Mag-stripe mode (Book C-2 §5.3, S12): COMPUTE CRYPTOGRAPHIC CHECKSUM with the UDOL data.

        The numeric unpredictable number (9F6A) has nUN random digits, nUN = set bits of
        PUNATC(Track2) (9F66) minus NATC(Track2) (9F67); the UDOL defaults to 9F6A04.
        """
        try:
            count = magstripe.nun(self.card.get(0x9F66, b""), self.card.get(0x9F67, b"\x00")[0])
        except ValueError:
            return self._finish(Outcome.END_APPLICATION, "mag-stripe: NATC exceeds PUNATC(Track2)")
        if 0x9F6B not in self.card or not 0 <= count <= 8:
            return self._finish(Outcome.END_APPLICATION, "mag-stripe: no Track 2 data or bad PUNATC")
        random = self._unpredictable(8)
        self._un_digits = "".join(str(b % 10) for b in random[:count]).rjust(8, "0")
        self.terminal[0x9F6A] = bytes.fromhex(self._un_digits)
        udol = self.card.get(0x9F69) or bytes.fromhex("9F6A04")
        data = build_dol_data(udol, {**self.card, **self.terminal}, format_of=self._format_of)
        return self._send(State.COMPUTE_CHECKSUM, ComputeCryptographicChecksum(data))

    def _on_checksum(self, response: ResponseAPDU) -> CommandAPDU | None:
        """CVC3 for each track: write CVC3, UN, ATC and nUN into the tracks' discretionary data."""
        values = to_dict(decode(response.data))
        if 0x9F61 not in values or 0x9F36 not in values:
            return self._finish(Outcome.END_APPLICATION, "COMPUTE CRYPTOGRAPHIC CHECKSUM returned no CVC3")
        self.card.update(values)
        try:
            self._write_tracks(values)
        except (ValueError, IndexError) as exc:
            return self._finish(Outcome.END_APPLICATION, f"mag-stripe data does not fit its bitmaps: {exc}")
        return self._finish(Outcome.ONLINE_REQUEST, "mag-stripe mode: the card returned CVC3",
                            cryptogram="CVC3")

    def _write_tracks(self, values: Mapping[int, bytes]) -> None:
        atc = int.from_bytes(values[0x9F36], "big")
        track2 = self.card[0x9F6B].hex().upper().rstrip("F")
        head, _, rest = track2.partition("D")
        dd = magstripe.encode_discretionary(
            rest[7:], pcvc3=self.card.get(0x9F65, b""), punatc=self.card.get(0x9F66, b""),
            natc=self.card.get(0x9F67, b"\x00")[0], cvc3_value=int.from_bytes(values[0x9F61], "big"),
            un=self._un_digits, atc=atc)
        text = f"{head}D{rest[:7]}{dd}"
        self.card[0x9F6B] = bytes.fromhex(text + ("F" if len(text) % 2 else ""))
        track1 = self.card.get(0x56)
        if track1 and 0x9F60 in values and b"^" in track1:
            name_end = track1.rfind(b"^") + 1
            static, dd1 = track1[:name_end + 7], track1[name_end + 7:].decode("ascii", "replace")
            dd1 = magstripe.encode_discretionary(
                dd1, pcvc3=self.card.get(0x9F62, b""), punatc=self.card.get(0x9F63, b""),
                natc=self.card.get(0x9F64, b"\x00")[0], cvc3_value=int.from_bytes(values[0x9F60], "big"),
                un=self._un_digits, atc=atc)
            self.card[0x56] = static + dd1.encode("ascii")

    def _visa_decide(self) -> CommandAPDU | None:
        """qVSDC after the records (Book C-3 §5.4, Annex C): fDDA when the card signed, then decide.

        The TVR the card's cryptogram covers is the one sent with GPO, so the result is recorded
        in the outcome and the TSI only. A failed fDDA on an offline approval (TC) goes online when
        the card's CTQ (9F6C byte 1 bit 6) asks for it, and is declined otherwise.
        """
        if self._method == "fdda":
            result = oda.perform_dynamic(
                self._table(), self.card, self._static(), self.transaction.date,
                sdad=self.card.get(0x9F4B, b""),
                terminal_data=oda.fdda_terminal_data(self.card, self.terminal), method="fdda")
            self.oda = result
            self.terminal[0x9B] = oda.tsi(self.terminal.get(0x9B, b"\x00\x00"), result)
            cid = self.card.get(0x9F27, b"\x80")[0] & 0xC0
            if not result.passed and cid == 0x40:
                ctq = self.card.get(0x9F6C, b"\x00")
                if ctq[0] & 0x20:
                    return self._finish(Outcome.ONLINE_REQUEST, f"fDDA failed ({result.reason}): the card "
                                        "asks to go online", cryptogram="TC")
                return self._finish(Outcome.DECLINED, f"fDDA failed: {result.reason}", cryptogram="TC")
        else:
            self.oda = oda.NOT_PERFORMED
        return self._decide_by_cryptogram()

    def _internal_authenticate(self) -> CommandAPDU | None:
        """INTERNAL AUTHENTICATE with the DDOL data, default DDOL 9F3704 (Book 3 §6.5.9, Book 2 §6.5.1)."""
        ddol = self.card.get(0x9F49) or bytes.fromhex("9F3704")
        data = build_dol_data(ddol, {**self.card, **self.terminal}, format_of=self._format_of)
        self._ddol_data = data
        return self._send(State.INTERNAL_AUTHENTICATE, InternalAuthenticate(data))

    def _on_internal_authenticate(self, response: ResponseAPDU) -> CommandAPDU | None:
        """The DDA signature (format 1: 80, format 2: 77 with 9F4B), checked before GENERATE AC."""
        sdad = b""
        if response.sw == 0x9000:
            nodes = decode(response.data)
            if len(nodes) == 1 and nodes[0].tag == 0x80:
                sdad = nodes[0].value
            elif len(nodes) == 1 and nodes[0].tag == 0x77:
                sdad = to_dict(nodes).get(0x9F4B, b"")
        result = oda.perform_dynamic(self._table(), self.card, self._static(), self.transaction.date,
                                     sdad=sdad, terminal_data=self._ddol_data, method="dda")
        self._record_oda(result)
        if result.passed:
            self.terminal[0x9F4C] = result.icc_dynamic_number
        return self._generate_ac()

    def _cda(self, data: bytes, nodes: list[TLV]) -> None:
        """Verify CDA on a GENERATE AC response and take the cryptogram from it (Book 2 §6.6.2).

        An AAC may come without a signature (the card declined); a TC or ARQC without one, or
        any failed check, is a CDA failure and the tap is declined (Book C-2 §S910; Book 3 §10.3).
        """
        cid = self.card.get(0x9F27, b"")
        sdad = self.card.get(0x9F4B, b"")
        if not sdad and cid[:1] and cid[0] & 0xC0 == 0x00:
            return
        objects = b""
        if len(nodes) == 1 and nodes[0].tag == 0x77:
            template = nodes[0]
            start = template.offset
            for child in template.children:
                end = child.offset + len(child.value)
                if child.tag != 0x9F4B:
                    objects += data[start:end]
                start = end
        result = oda.perform_cda(
            self._table(), self.card, self._static(), self.transaction.date, sdad=sdad,
            unpredictable_number=self.terminal.get(0x9F37, b""), cid=cid,
            transaction_hash=cda_transaction_hash(self._pdol_data, self._cdol_data, objects))
        self._record_oda(result)
        if not result.passed:
            self._finish(Outcome.DECLINED, f"CDA failed: {result.reason}",
                         cryptogram=CRYPTOGRAM_TYPES.get(cid[0] & 0xC0, "AAC") if cid else "AAC")
            return
        self.card[0x9F26] = result.cryptogram
        self.card[0x9F4C] = result.icc_dynamic_number

    def _record_oda(self, result: oda.OdaResult) -> None:
        self.oda = result
        self.terminal[0x95] = oda.tvr(self.terminal[0x95], result)
        self.terminal[0x9B] = oda.tsi(self.terminal.get(0x9B, b"\x00\x00"), result)

    def _static(self) -> bytes | None:
        return oda.static_data(self._oda_records, self.card)

    def _table(self) -> CaKeyTable:
        if self._ca_keys is None:
            self._ca_keys = _builtin_table()
        return self._ca_keys

    def _generate_ac(self) -> CommandAPDU | None:
        """GENERATE AC with CDOL1 data (EMV 4.4 Book 3 §6.5.5; Book C-2 §5.4)."""
        cdol1 = self.card.get(0x8C)
        if not cdol1:
            return self._finish(Outcome.END_APPLICATION, "no CDOL1 (8C) to build GENERATE AC from")
        self.terminal[0x9F34] = CVM_RESULTS[self._cvm()]
        values = {**self.card, **self.terminal}
        data = build_dol_data(cdol1, values, format_of=self._format_of)
        self._cdol_data = data
        kind = "ARQC" if self.online_required else "TC"
        return self._send(State.GENERATE_AC, GenerateAC(kind, data, cda=self._method == "cda"))

    def _decide_by_cryptogram(self) -> CommandAPDU | None:
        cid = self.card.get(0x9F27)
        kind = CRYPTOGRAM_TYPES.get(cid[0] & 0xC0) if cid else "ARQC"
        if kind is None:
            return self._finish(Outcome.END_APPLICATION, "Cryptogram Information Data (9F27) is RFU")
        return self._finish(_OUTCOME_OF_CRYPTOGRAM[kind], f"the card returned an {kind}", cryptogram=kind)

    # -- data ------------------------------------------------------------------------------

    def _terminal_data(self, ttq: bytes) -> dict[int, bytes]:
        """The terminal's data objects (EMV 4.4 Book 3 Annex A; Book C-3 Annex A for 9F66)."""
        t, c = self.transaction, self.config
        return {
            0x9F66: ttq,
            0x9F02: bcd(t.amount, 6),
            0x9F03: bcd(t.other_amount, 6),
            0x9F1A: bytes.fromhex(c.country),
            0x95: bytes(5),
            0x9B: bytes(2),
            0x5F2A: bytes.fromhex(currency(t.currency).numeric),
            0x5F36: bytes((currency(t.currency).exponent,)),
            0x9A: bytes.fromhex(t.date),
            0x9F21: bytes.fromhex(t.time or "000000"),
            0x9F1E: c.ifd_serial.encode("ascii", "ignore")[:8].ljust(8),
            0x9C: bytes((t.type,)),
            0x9F37: self._unpredictable(4),
            0x9F35: bytes((c.terminal_type,)),
            0x9F33: c.capabilities,
            0x9F40: c.additional_capabilities,
            0x9F4E: c.merchant_name_location,
            0x9F1C: c.terminal_id.encode("ascii", "ignore")[:8].ljust(8),
            0x9F15: bcd(int(c.merchant.mcc), 2) if c.merchant.mcc.isdigit() else bytes(2),
        }

    def _format_of(self, tag: int) -> str:
        return format_of(tag, self.candidate.kernel if self.candidate else None)

    def _cvm(self) -> str:
        """The CVM this tap used (Book C-3 §5.3 for the CTQ; Book C-2 §7 for on-device CVM)."""
        if not self.cvm_required:
            return "no_cvm"
        ctq = self.card.get(0x9F6C, b"")
        if len(ctq) >= 2 and ctq[1] & 0x80:
            return "cdcvm"
        aip = self.card.get(0x82, b"")
        if self.candidate is not None and self.candidate.kernel == "mastercard" and aip and aip[0] & 0x02:
            return "cdcvm"
        return "signature"

    def _send(self, state: State, command: CommandAPDU) -> CommandAPDU:
        self.state = state
        self.step = state.value
        return command

    def _finish(
        self,
        outcome: Outcome,
        reason: str,
        *,
        message: str | None = None,
        cryptogram: str | None = None,
    ) -> CommandAPDU | None:
        self.state = State.DONE
        candidate = self.candidate
        data: Mapping[int, bytes] = {**self.card, **self.terminal} if candidate else dict(self.terminal)
        kernel = candidate.kernel if candidate else None
        block = authorization_block(data, kernel) if cryptogram is not None else b""
        self.outcome = KernelOutcome(
            outcome=outcome,
            reason=reason,
            oda=self.oda,
            message=message or MESSAGES[outcome],
            kernel=candidate.kernel if candidate else None,
            aid=candidate.aid if candidate else None,
            label=candidate.label if candidate else None,
            cryptogram=cryptogram,
            cvm=self._cvm() if cryptogram is not None else None,
            amount=self.transaction.amount,
            currency=self.transaction.currency,
            merchant=self.config.merchant,
            data=data,
            authorization_data=block,
        )
        return None



_BUILTIN: list[CaKeyTable] = []


def _builtin_table() -> CaKeyTable:
    """The shipped CA key table, loaded (and its checksums verified) once per process."""
    if not _BUILTIN:
        _BUILTIN.append(CaKeyTable.builtin())
    return _BUILTIN[0]
