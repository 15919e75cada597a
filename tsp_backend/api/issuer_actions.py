"""Issuer actions and their scripts (:mod:`tsp_backend.services.issuer_actions`).

* ``POST /api/cards/{id}/issuer-actions`` — session, ``Idempotency-Key``: ask for ``block``,
  ``unblock`` or ``cvm_limit`` (with ``amount``, minor units) on the user's card; 201 pending.
* ``GET /api/cards/{id}/issuer-actions`` — the card's actions and where each one is.
* ``POST /api/cards/{id}/issuer-scripts`` — session (of the card's device, when bound),
  ``Idempotency-Key``: the queued scripts with their ARPC, handed out once.
* ``POST /api/issuer-scripts/{id}/result`` — session: the card's status word for a delivered
  script (``9000`` applied, anything else refused); 409 when it already has one.

:func:`after_authorization` is the hook of the payment routes: after an approved answer is
settled it binds the token's open actions to that authorization — only when the token's cached
snapshot says one waits (:attr:`~tsp_backend.services.answers.Answer.issuer_actions`), so other
approvals pay nothing for it; a failure there is logged and never changes the answer.
"""

from __future__ import annotations

import logging
from typing import Literal

from flask import Blueprint, Response, g
from pydantic import Field

from apdu.tlv import decode_flat
from tsp_backend.api import http
from tsp_backend.api.schemas import Body, _Out
from tsp_backend.outages import roll_back_request
from tsp_backend.services.answers import Answer
from tsp_backend.services.issuer_actions import IssuerActions, action_json, bind_after_approval

bp = Blueprint("issuer_actions", __name__)

_log = logging.getLogger(__name__)

MAX_AMOUNT = 999_999_999_999
"""The largest amount n12 (6 bytes BCD) can hold: the Card CVM Limit 9F6B."""


class IssuerActionBody(Body):
    """POST /api/cards/{id}/issuer-actions: the change, and the new limit for ``cvm_limit``."""

    action: Literal["block", "unblock", "cvm_limit"]
    amount: int | None = Field(default=None, ge=0, le=MAX_AMOUNT, description="minor units (cvm_limit)")


class ScriptResultBody(Body):
    """POST /api/issuer-scripts/{id}/result: the status word the card answered the script with."""

    sw: str = Field(pattern=r"^[0-9A-Fa-f]{4}$")


class EmptyBody(Body):
    """A request with nothing to say: no body, or ``{}``."""


IssuerActionStatus = Literal["pending", "queued", "delivered", "applied", "refused"]


class IssuerActionOut(_Out):
    """An issuer action and where it is: bound to an authorization (``atc``), delivered, answered."""

    id: int
    card_id: int
    action: Literal["block", "unblock", "cvm_limit"]
    amount: int | None
    status: IssuerActionStatus
    atc: int | None
    sw: str | None
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    delivered_at: str | None
    reported_at: str | None


class IssuerScriptOut(IssuerActionOut):
    """A delivered script: the command APDU for the card and the authorization's tag 91 value."""

    script: str = Field(description="the script command APDU, hex (Book 2 §9, CLA 84)")
    arpc: str | None = Field(description="issuer authentication data (tag 91), hex: EXTERNAL AUTHENTICATE")


class IssuerActionList(_Out):
    """The actions of a card, oldest first."""

    items: list[IssuerActionOut]


class IssuerScriptList(_Out):
    """The scripts handed to the device (each once)."""

    items: list[IssuerScriptOut]


@bp.post("/api/cards/<int:card_id>/issuer-actions")
@http.login_required
@http.idempotent
def create_action(card_id: int) -> Response:
    """Ask for an action on the user's card: 201 pending."""
    data = http.body(IssuerActionBody)
    user = http.current_user()
    row = IssuerActions.request(
        http.db(), http.services().store, user.id, card_id, data.action, data.amount, http.origin())
    return http.commit_json(action_json(row), 201)


@bp.get("/api/cards/<int:card_id>/issuer-actions")
@http.login_required
def list_actions(card_id: int) -> Response:
    """The card's actions, oldest first."""
    rows = IssuerActions.of_card(http.db(), http.current_user().id, card_id)
    return http.json_response({"items": [action_json(r) for r in rows]})


@bp.post("/api/cards/<int:card_id>/issuer-scripts")
@http.login_required
@http.idempotent
def deliver_scripts(card_id: int) -> Response:
    """Hand the card's queued scripts to its device (each once)."""
    http.body(EmptyBody)
    items = IssuerActions.deliver(
        http.db(), http.services().store, http.current_user().id, card_id, g.auth.device_id)
    return http.commit_json({"items": items})


@bp.post("/api/issuer-scripts/<int:action_id>/result")
@http.login_required
def script_result(action_id: int) -> Response:
    """Record the card's answer to a delivered script."""
    data = http.body(ScriptResultBody)
    row = IssuerActions.report(http.db(), http.current_user().id, action_id, data.sw, http.origin())
    return http.commit_json(action_json(row))


def after_authorization(answer: Answer, emv: bytes) -> None:
    """Bind the token's open actions to an approved authorization; never raises."""
    result = answer.result
    if not answer.issuer_actions or result is None or result.card_id is None or answer.replayed:
        return
    session = http.db()
    try:
        bind_after_approval(
            session, http.services().config.issuer_master_keys, card_id=result.card_id,
            public_id=result.transaction_id, tlvs=decode_flat(emv), arpc=result.arpc,
        )
    except Exception as exc:  # the authorization's answer stands whatever happens here
        roll_back_request()
        _log.warning("issuer actions not bound to %s: %s", result.transaction_id, type(exc).__name__)
