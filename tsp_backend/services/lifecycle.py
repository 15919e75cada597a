"""The token lifecycle: four states, one transition table.

Why a table: a token's state is read by three parties that must agree — the wallet (what to
show), the card network (whether a cryptogram may be honoured) and the audit log (what
happened). Keeping every allowed move in one dict makes the rules reviewable in one glance,
lets a property test walk it exhaustively, and turns any move not in the table into the same
``409 invalid-state-transition`` instead of scattered ``if`` statements. DEACTIVATED is
terminal: a deleted token never comes back, a new provisioning makes a new token (EMVCo Payment
Tokenisation Technical Framework v2.3 §7, token lifecycle management).

=============  ============  =============  ===============================================
from           event         to             reason codes
=============  ============  =============  ===============================================
INACTIVE       activate      ACTIVE         ID_AND_V_PASSED, APPROVED
INACTIVE       deactivate    DEACTIVATED    CUSTOMER_REQUEST, ID_AND_V_FAILED, DEVICE_LOST
ACTIVE         suspend       SUSPENDED      CUSTOMER_REQUEST, SUSPECTED_FRAUD, DEVICE_LOST
ACTIVE         deactivate    DEACTIVATED    CUSTOMER_REQUEST, SUSPECTED_FRAUD, DEVICE_LOST
SUSPENDED      reactivate    ACTIVE         CUSTOMER_REQUEST, FRAUD_CLEARED, DEVICE_FOUND
SUSPENDED      deactivate    DEACTIVATED    CUSTOMER_REQUEST, SUSPECTED_FRAUD, DEVICE_LOST
=============  ============  =============  ===============================================

Only ``suspend``/``reactivate`` with a customer reason are open to the wallet's API; the other
reasons are set by the service itself (device lost, verification).
"""

from __future__ import annotations

import enum

from tsp_backend.errors import InvalidTransition, ValidationFailed


class TokenState(str, enum.Enum):
    """The token states."""

    INACTIVE = "INACTIVE"
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    DEACTIVATED = "DEACTIVATED"


class TokenEvent(str, enum.Enum):
    """The lifecycle events."""

    ACTIVATE = "activate"
    SUSPEND = "suspend"
    REACTIVATE = "reactivate"
    DEACTIVATE = "deactivate"


_S, _E = TokenState, TokenEvent

TRANSITIONS: dict[tuple[TokenState, TokenEvent], TokenState] = {
    (_S.INACTIVE, _E.ACTIVATE): _S.ACTIVE,
    (_S.INACTIVE, _E.DEACTIVATE): _S.DEACTIVATED,
    (_S.ACTIVE, _E.SUSPEND): _S.SUSPENDED,
    (_S.ACTIVE, _E.DEACTIVATE): _S.DEACTIVATED,
    (_S.SUSPENDED, _E.REACTIVATE): _S.ACTIVE,
    (_S.SUSPENDED, _E.DEACTIVATE): _S.DEACTIVATED,
}
"""(state, event) -> next state; anything absent is refused."""

REASONS: dict[TokenEvent, frozenset[str]] = {
    _E.ACTIVATE: frozenset({"ID_AND_V_PASSED", "APPROVED"}),
    _E.SUSPEND: frozenset({"CUSTOMER_REQUEST", "SUSPECTED_FRAUD", "DEVICE_LOST"}),
    _E.REACTIVATE: frozenset({"CUSTOMER_REQUEST", "FRAUD_CLEARED", "DEVICE_FOUND"}),
    _E.DEACTIVATE: frozenset({"CUSTOMER_REQUEST", "SUSPECTED_FRAUD", "DEVICE_LOST", "ID_AND_V_FAILED"}),
}
"""The reason codes each event accepts."""

CUSTOMER_REASONS: dict[TokenEvent, frozenset[str]] = {
    _E.SUSPEND: frozenset({"CUSTOMER_REQUEST", "SUSPECTED_FRAUD"}),
    _E.REACTIVATE: frozenset({"CUSTOMER_REQUEST", "FRAUD_CLEARED"}),
    _E.DEACTIVATE: frozenset({"CUSTOMER_REQUEST", "SUSPECTED_FRAUD"}),
}
"""The reason codes the wallet's API may give."""


def next_state(state: TokenState | str, event: TokenEvent | str, reason: str) -> TokenState:
    """The state after ``event``; ``InvalidTransition`` or ``ValidationFailed`` if not allowed.

    >>> next_state("ACTIVE", "suspend", "CUSTOMER_REQUEST").value
    'SUSPENDED'
    >>> next_state("DEACTIVATED", "reactivate", "CUSTOMER_REQUEST")
    Traceback (most recent call last):
    ...
    tsp_backend.errors.InvalidTransition: cannot reactivate a DEACTIVATED token
    """
    current, ev = TokenState(state), TokenEvent(event)
    if reason not in REASONS[ev]:
        raise ValidationFailed(f"reason must be one of {', '.join(sorted(REASONS[ev]))}", field="reason")
    target = TRANSITIONS.get((current, ev))
    if target is None:
        raise InvalidTransition(f"cannot {ev.value} a {current.value} token", state=current.value)
    return target
