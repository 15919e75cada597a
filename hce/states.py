"""The card's states and the transition table: the whole machine, in one place.

Why a table
-----------
A contactless tap is a short, strictly ordered conversation (EMV Contactless Book B, Entry
Point; Books C-2 and C-3 for the kernels): the terminal selects the PPSE, then an application,
then starts the transaction with GET PROCESSING OPTIONS, reads records, and -- on the
Mastercard path -- asks for the cryptogram with GENERATE AC. A card that accepts a command out
of order is a card that can be tricked into signing something it never initiated, so every
(state, command) pair the card accepts is written down below and anything else is answered
with SW 6985 "conditions of use not satisfied" (EMV 4.4 Book 3 §6.3.5). The table is also the
documentation: reading it tells you what the card does, as h11's ``_state.py`` does for HTTP.

States::

    IDLE            powered, nothing selected (also after a failed SELECT)
    PPSE_SELECTED   the PPSE directory was returned (EMV Contactless Book B §3.3)
    APP_SELECTED    the payment application was selected; waiting for GPO
    INITIATED       GPO done: records may be read; on Mastercard, GENERATE AC may follow
    COMPLETED       the transaction's cryptogram was produced; records may still be read

SELECT is accepted in every state (a terminal may restart at any time) and its outcome decides
the next state. The two kernels differ in one place: a Visa (qVSDC) card produces its
cryptogram in the GPO response, so GPO leads to COMPLETED and GENERATE AC is never accepted;
a Mastercard (M/Chip) card answers GPO with AIP/AFL and produces the cryptogram at the first
GENERATE AC. A second GENERATE AC is refused: this card is online-only and does not complete
the transaction after the issuer's answer.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["TABLES", "Command", "State", "next_state"]


class State(Enum):
    """Where the card is in a tap."""

    IDLE = "IDLE"
    PPSE_SELECTED = "PPSE_SELECTED"
    APP_SELECTED = "APP_SELECTED"
    INITIATED = "INITIATED"
    COMPLETED = "COMPLETED"


class Command(Enum):
    """The commands whose order matters (SELECT is handled before the table, see above)."""

    GET_PROCESSING_OPTIONS = "GET PROCESSING OPTIONS"
    READ_RECORD = "READ RECORD"
    GENERATE_AC = "GENERATE AC"
    GET_DATA = "GET DATA"
    COMPUTE_CRYPTOGRAPHIC_CHECKSUM = "COMPUTE CRYPTOGRAPHIC CHECKSUM"


_S, _C = State, Command

#: (state, command) -> the state after the command succeeds; absent pairs are SW 6985.
VISA: dict[tuple[State, Command], State] = {
    (_S.APP_SELECTED, _C.GET_PROCESSING_OPTIONS): _S.COMPLETED,
    (_S.APP_SELECTED, _C.GET_DATA): _S.APP_SELECTED,
    (_S.COMPLETED, _C.READ_RECORD): _S.COMPLETED,
    (_S.COMPLETED, _C.GET_DATA): _S.COMPLETED,
}

#: The Mastercard (M/Chip, EMV Contactless Book C-2) table.
MASTERCARD: dict[tuple[State, Command], State] = {
    (_S.APP_SELECTED, _C.GET_PROCESSING_OPTIONS): _S.INITIATED,
    (_S.APP_SELECTED, _C.GET_DATA): _S.APP_SELECTED,
    (_S.INITIATED, _C.READ_RECORD): _S.INITIATED,
    (_S.INITIATED, _C.GET_DATA): _S.INITIATED,
    (_S.INITIATED, _C.GENERATE_AC): _S.COMPLETED,
    (_S.INITIATED, _C.COMPUTE_CRYPTOGRAPHIC_CHECKSUM): _S.COMPLETED,   # mag-stripe mode (Book C-2)
    (_S.COMPLETED, _C.READ_RECORD): _S.COMPLETED,
    (_S.COMPLETED, _C.GET_DATA): _S.COMPLETED,
}

TABLES: dict[str, dict[tuple[State, Command], State]] = {"visa": VISA, "mastercard": MASTERCARD}
"""The transition table of each kernel."""


def next_state(kernel: str, state: State, command: Command) -> State | None:
    """The state after ``command`` in ``state``, or ``None`` when the command is out of order.

    >>> next_state("visa", State.APP_SELECTED, Command.GET_PROCESSING_OPTIONS)
    <State.COMPLETED: 'COMPLETED'>
    >>> next_state("visa", State.COMPLETED, Command.GENERATE_AC) is None
    True
    """
    return TABLES[kernel].get((state, command))
