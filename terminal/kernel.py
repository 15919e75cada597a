"""The sans-I/O contactless kernel: emits the next C-APDU and consumes the R-APDU.

Why it is shaped so
-------------------
A contactless tap is a short conversation in which the terminal always speaks first and the
card only answers. So the kernel is a function of what the card last said: given a response it
returns the next command, or ``None`` once it has reached an outcome. It owns no reader, no
socket and no clock; whoever holds the transport (:mod:`terminal.tap`, a test, a benchmark)
carries the bytes and the time. The same kernel therefore runs in process against the hce
applet, on a PC/SC reader, over nfcpy, or against a recorded trace (docs/architecture.md, "Sans-I/O cores";
python-hyper/h11 is the model).

A response is first reduced to an *event* (:class:`Event`: the command worked, the
application was not found, the card asked to see the phone, conditions were not satisfied,
anything else), and the pair (state, event) is looked up in :data:`TRANSITIONS` (at the end of
this module, after the actions it names): ``(state, event) -> (action, states after)``. The
action is a callable that reads the answer and returns the next command; the state is the
command the kernel waits on the answer to (:func:`waiting_on`), and the kernel refuses to enter
one the row does not list. The table is the documentation: every reaction the kernel has to a
status word is one row of it, as in
EMV Contactless Book A §3 (Entry Point: pre-processing, protocol activation, combination
selection) and the kernel books C-2 (Mastercard M/Chip) and C-3 (Visa qVSDC)::

    START ─start()─▶ SELECT_PPSE ─ok─▶ SELECT_AID ─ok─▶ GPO ─ok─▶ READ_RECORD* ─▶ (GENERATE_AC) ─▶ DONE
                        │ not found        │ not found: next candidate   │ 6986: try again, see phone
                        ▼                  ▼                             ▼ 6984/6985: try another interface
               try another interface   end application              other: end application

The actions live by topic: application selection in :mod:`terminal.selection`, GPO and the
records in :mod:`terminal.reading`, offline data authentication in
:mod:`terminal.authentication`, mag-stripe mode in :mod:`terminal.magstripe`; GENERATE AC,
the terminal's data and the outcome are here.

Two paths leave GET PROCESSING OPTIONS. On the Visa path (qVSDC, Book C-3) the card returns
its cryptogram in the GPO response and the records only complete the card's data. On the
Mastercard path (M/Chip, Book C-2) GPO returns the AIP and AFL, the terminal reads the records,
then asks for the cryptogram with GENERATE AC built from CDOL1. The kernel picks the path from
the application's kernel identifier (9F2A) or its AID, unless the terminal forces one.

Pre-processing (Book A §3.1.1) runs before the first command: an amount at or above the
contactless transaction limit ends the tap with Try Another Interface and no APDU at all; the
floor limit and the CVM-required limit set bits in byte 2 of the TTQ (9F66). An amount above the
reader contactless floor limit also sets "transaction exceeds floor limit" in the TVR (95, byte 4
bit 8; Book 3 §10.6.1 floor-limit checking, with the contactless books' comparison: Book A
§5.2.2 and Books C-2/C-3 test *greater than* the reader limit, where the contact Book 3 compares
the Terminal Floor Limit 9F1B *equal to or greater*). A zero amount goes online but exceeds no
floor limit.

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

from apdu.cid import CID_TYPE_MASK, CRYPTOGRAM_TYPES
from apdu.command import PPSE, CommandAPDU, GenerateAC, Select
from apdu.dol import build_dol_data
from apdu.errors import APDUError
from apdu.formats import encode_n
from apdu.response import ResponseAPDU
from apdu.sw import SW
from apdu.tags import format_of
from apdu.tlv import decode, to_dict
from terminal import authentication, cvm, magstripe, oda, reading, selection
from terminal.capk import CaKeyTable
from terminal.config import TerminalConfig, Transaction, currency
from terminal.errors import KernelError
from terminal.outcome import MESSAGES, SEE_PHONE, KernelOutcome, Outcome, authorization_block
from terminal.selection import Candidate

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


#: Status word -> event; any other status word is :attr:`Event.ERROR`.
_EVENTS: dict[int, Event] = {
    SW.NO_ERROR: Event.OK,
    SW.FUNCTION_NOT_SUPPORTED: Event.NOT_FOUND,
    SW.FILE_NOT_FOUND: Event.NOT_FOUND,
    SW.SELECTED_FILE_INVALIDATED: Event.NOT_FOUND,
    SW.SEE_PHONE: Event.SEE_PHONE,
    SW.REFERENCE_DATA_NOT_USABLE: Event.CONDITIONS,
    SW.CONDITIONS_OF_USE_NOT_SATISFIED: Event.CONDITIONS,
}

Action = Callable[["Kernel", ResponseAPDU], "CommandAPDU | None"]
"""What the kernel does with an answer: read it, return the next command or ``None`` (an outcome)."""


@dataclass(frozen=True, slots=True)
class Transition:
    """A row of :data:`TRANSITIONS`: the action, and the states it may leave the kernel in."""

    action: Action
    after: frozenset[State]


#: The state that waits on each command's answer, by INS (SELECT is split by its name).
_WAITING_ON_INS: dict[int, State] = {
    0xA8: State.GPO,
    0xB2: State.READ_RECORD,
    0x88: State.INTERNAL_AUTHENTICATE,
    0x2A: State.COMPUTE_CHECKSUM,
    0xAE: State.GENERATE_AC,
}


def waiting_on(command: CommandAPDU | None) -> State:
    """The state the kernel is in once it has sent ``command`` (``None``: the tap is over).

    >>> waiting_on(Select(PPSE)), waiting_on(None)
    (<State.SELECT_PPSE: 'select_ppse'>, <State.DONE: 'done'>)
    """
    if command is None:
        return State.DONE
    if command.ins == 0xA4:
        return State.SELECT_PPSE if command.data == PPSE else State.SELECT_AID
    return _WAITING_ON_INS[command.ins]


#: Cryptogram Information Data (9F27) bits 8-7 (EMV 4.4 Book 3 §6.5.5.4, Table 14).

_OUTCOME_OF_CRYPTOGRAM: dict[str, Outcome] = {
    "AAC": Outcome.DECLINED,
    "TC": Outcome.APPROVED,
    "ARQC": Outcome.ONLINE_REQUEST,
}

#: TTQ byte 2 (EMV Contactless Book C-3 §A.2, Table A-1).
TTQ_ONLINE_CRYPTOGRAM_REQUIRED = 0x80
TTQ_CVM_REQUIRED = 0x40

#: TVR byte 4 bit 8, "transaction exceeds floor limit" (EMV 4.4 Book 3 Annex C5).
TVR_FLOOR_LIMIT_EXCEEDED = 0x80


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
        self._cvm_choice: cvm.CvmChoice | None = None
        self.oda: oda.OdaResult | None = None

    # -- driving ---------------------------------------------------------------------------

    def start(self) -> CommandAPDU | None:
        """Pre-process the amount and return SELECT PPSE, or ``None`` if contactless is not allowed."""
        if self.state is not State.START:
            raise KernelError("start() was already called")
        limits, amount = self.config.limits, self.transaction.amount
        if amount >= limits.transaction:
            reason = "amount at or above the contactless transaction limit"
            self._finish(Outcome.TRY_ANOTHER_INTERFACE, reason)
            return self._enter(None, _FROM_START)
        self.online_required = amount > limits.floor or amount == 0
        self.cvm_required = amount >= limits.cvm
        ttq = bytearray(self.config.ttq)
        if self.online_required:
            ttq[1] |= TTQ_ONLINE_CRYPTOGRAM_REQUIRED
        if self.cvm_required:
            ttq[1] |= TTQ_CVM_REQUIRED
        self.terminal = self._terminal_data(bytes(ttq))
        if amount > limits.floor:
            self._set_tvr(4, TVR_FLOOR_LIMIT_EXCEEDED)
        return self._enter(Select(PPSE), _FROM_START)

    def receive(self, response: ResponseAPDU | bytes) -> CommandAPDU | None:
        """Consume the card's answer to the last command; return the next one or ``None`` when done."""
        if self.state in (State.START, State.DONE):
            raise KernelError(f"no command is outstanding (state {self.state.value})")
        if not isinstance(response, ResponseAPDU):
            try:
                response = ResponseAPDU.from_bytes(response)
            except APDUError:
                self._finish(Outcome.END_APPLICATION, "a response shorter than a status word")
                return self._enter(None, _OVER)
        event = _EVENTS.get(response.sw, Event.ERROR)
        row = TRANSITIONS.get((self.state, event)) or TRANSITIONS[(self.state, Event.ERROR)]
        try:
            command = row.action(self, response)
        except APDUError as exc:
            self._finish(Outcome.END_APPLICATION, f"card data could not be decoded: {exc}")
            return self._enter(None, _OVER)
        return self._enter(command, row.after)

    def _enter(self, command: CommandAPDU | None, allowed: frozenset[State]) -> CommandAPDU | None:
        """Wait on ``command``'s answer (or stop, for ``None``), in a state the table allows."""
        state = waiting_on(command)
        if state not in allowed:
            raise KernelError(f"{self.step} may not lead to {state.value}: the transition table says "
                              f"{sorted(s.value for s in allowed)}")
        self.state = state
        if command is not None:
            self.step = state.value
        return command

    @property
    def done(self) -> bool:
        """Whether the kernel has reached an outcome."""
        return self.state is State.DONE

    # -- actions (named in TRANSITIONS) ----------------------------------------------------

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
            result = authentication.check_cda(self, response.data, nodes)
            if result is not None and not result.passed:
                cid_data = self.card.get(0x9F27, b"")
                kind = CRYPTOGRAM_TYPES.get(cid_data[0] & CID_TYPE_MASK, "AAC") if cid_data else "AAC"
                return self._finish(Outcome.DECLINED, f"CDA failed: {result.reason}", cryptogram=kind)
        if 0x9F26 not in self.card:
            return self._finish(Outcome.END_APPLICATION, "GENERATE AC returned no cryptogram")
        pci = self.card.get(0xDF4B, b"")
        cid = self.card.get(0x9F27, b"\x80")[0] & CID_TYPE_MASK
        if cid == 0x00 and reading.needs_phone(pci):
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

    def _generate_ac(self) -> CommandAPDU | None:
        """GENERATE AC with CDOL1 data (EMV 4.4 Book 3 §6.5.5; Book C-2 §5.4)."""
        cdol1 = self.card.get(0x8C)
        if not cdol1:
            return self._finish(Outcome.END_APPLICATION, "no CDOL1 (8C) to build GENERATE AC from")
        choice = self._choose_cvm()
        self.terminal[0x9F34] = choice.results
        self._set_tvr(3, choice.tvr_byte3)
        values = {**self.card, **self.terminal}
        data = build_dol_data(cdol1, values, format_of=self._format_of)
        self._cdol_data = data
        kind = "ARQC" if self.online_required else "TC"
        return GenerateAC(kind, data, cda=self._method == "cda")

    def _decide_by_cryptogram(self) -> CommandAPDU | None:
        cid = self.card.get(0x9F27)
        kind = CRYPTOGRAM_TYPES.get(cid[0] & CID_TYPE_MASK) if cid else "ARQC"
        if kind is None:
            return self._finish(Outcome.END_APPLICATION, "Cryptogram Information Data (9F27) is RFU")
        return self._finish(_OUTCOME_OF_CRYPTOGRAM[kind], f"the card returned an {kind}", cryptogram=kind)

    # -- data ------------------------------------------------------------------------------

    def _terminal_data(self, ttq: bytes) -> dict[int, bytes]:
        """The terminal's data objects (EMV 4.4 Book 3 Annex A; Book C-3 Annex A for 9F66)."""
        t, c = self.transaction, self.config
        return {
            0x9F66: ttq,
            0x9F02: encode_n(t.amount, 6),
            0x9F03: encode_n(t.other_amount, 6),
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
            0x9F15: encode_n(int(c.merchant.mcc), 2) if c.merchant.mcc.isdigit() else bytes(2),
        }

    def _set_tvr(self, byte: int, bits: int) -> None:
        """Set ``bits`` in TVR (95) byte ``byte``, counted from 1 as Book 3 Annex C5 does."""
        tvr = bytearray(self.terminal[0x95])
        tvr[byte - 1] |= bits
        self.terminal[0x95] = bytes(tvr)

    def _format_of(self, tag: int) -> str:
        return format_of(tag, self.candidate.kernel if self.candidate else None)

    def _choose_cvm(self) -> cvm.CvmChoice:
        """The CVM this tap used (:func:`terminal.cvm.choose`), chosen once."""
        if self._cvm_choice is None:
            c, mastercard = self.config, self.candidate is not None and self.candidate.kernel == "mastercard"
            self._cvm_choice = cvm.choose(
                self.card, self.terminal, cvm_required=self.cvm_required, mastercard=mastercard,
                capabilities=(c.cvm_capability_required, c.cvm_capability_no_cvm),
                amount=self.transaction.amount, transaction_type=self.transaction.type,
                terminal_type=c.terminal_type)
        return self._cvm_choice

    def _finish(
        self,
        outcome: Outcome,
        reason: str,
        *,
        message: str | None = None,
        cryptogram: str | None = None,
    ) -> CommandAPDU | None:
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
            cvm=self._choose_cvm().cvm if cryptogram is not None else None,
            amount=self.transaction.amount,
            currency=self.transaction.currency,
            merchant=self.config.merchant,
            data=data,
            authorization_data=block,
        )
        return None


_S, _E = State, Event
_FROM_START = frozenset({_S.SELECT_PPSE, _S.DONE})
_OVER = frozenset({_S.DONE})
_NEXT_APPLICATION = frozenset({_S.SELECT_AID, _S.DONE})
#: After GPO and after each record: another record, or the path's next command, or an outcome.
_READ_ON = frozenset({_S.READ_RECORD, _S.COMPUTE_CHECKSUM, _S.INTERNAL_AUTHENTICATE, _S.GENERATE_AC, _S.DONE})

#: (state, event) -> (action, states after); a missing pair falls back to (state, ERROR).
TRANSITIONS: dict[tuple[State, Event], Transition] = {
    (_S.SELECT_PPSE, _E.OK):                 Transition(selection.on_ppse, _NEXT_APPLICATION),
    (_S.SELECT_PPSE, _E.ERROR):              Transition(selection.on_no_ppse, _OVER),
    (_S.SELECT_AID, _E.OK):                  Transition(selection.on_aid, frozenset({_S.GPO})),
    (_S.SELECT_AID, _E.ERROR):               Transition(selection.on_next_candidate, _NEXT_APPLICATION),
    (_S.GPO, _E.OK):                         Transition(reading.on_gpo, _READ_ON),
    (_S.GPO, _E.SEE_PHONE):                  Transition(Kernel._on_see_phone, _OVER),
    (_S.GPO, _E.CONDITIONS):                 Transition(Kernel._on_other_interface, _OVER),
    (_S.GPO, _E.NOT_FOUND):                  Transition(selection.on_next_candidate, _NEXT_APPLICATION),
    (_S.GPO, _E.ERROR):                      Transition(reading.on_gpo_error, _NEXT_APPLICATION),
    (_S.READ_RECORD, _E.OK):                 Transition(reading.on_record, _READ_ON),
    (_S.READ_RECORD, _E.ERROR):              Transition(Kernel._on_end, _OVER),
    (_S.INTERNAL_AUTHENTICATE, _E.OK):       Transition(authentication.on_internal_authenticate,
                                                        frozenset({_S.GENERATE_AC, _S.DONE})),
    (_S.INTERNAL_AUTHENTICATE, _E.ERROR):    Transition(authentication.on_internal_authenticate,
                                                        frozenset({_S.GENERATE_AC, _S.DONE})),
    (_S.COMPUTE_CHECKSUM, _E.OK):            Transition(magstripe.on_checksum, _OVER),
    (_S.COMPUTE_CHECKSUM, _E.ERROR):         Transition(Kernel._on_end, _OVER),
    (_S.GENERATE_AC, _E.OK):                 Transition(Kernel._on_ac, _OVER),
    (_S.GENERATE_AC, _E.SEE_PHONE):          Transition(Kernel._on_see_phone, _OVER),
    (_S.GENERATE_AC, _E.ERROR):              Transition(Kernel._on_end, _OVER),
}
