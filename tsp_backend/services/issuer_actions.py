"""Issuer actions: a change asked for a card, carried to it as an issuer script through the wallet.

An HCE card has left the terminal's field before the issuer answers, so scripts (EMV 4.4 Book 2
§9) and the ARPC (§8.2) cannot ride back in the authorization's answer as they do for a chip
card; they travel the way limited-use keys do, from the service to the device::

    POST /api/cards/{id}/issuer-actions    {action, amount?}       -> pending
    approved online authorization of the token (ATC, ARQC, LUK)   -> queued   (script + ARPC)
    POST /api/cards/{id}/issuer-scripts    the device takes them   -> delivered
    card.process(script) on the device; POST /api/issuer-scripts/{id}/result {sw}
                                                                   -> applied (9000) | refused

- **Binding** (:func:`bind_after_approval`): after an approval is committed, every ``pending``
  or still undelivered ``queued`` action of the token gets its script MACed to that
  authorization (:func:`~tsp_backend.services.issuer_scripts.script_for`) and the
  authorization's tag 91 value (ARPC ‖ ARC or ARPC ‖ CSU). A newer approval before delivery
  binds the script again, to the newer ARQC: nothing that was sent is ever changed.
- **Delivery** (:meth:`IssuerActions.deliver`) marks what it hands out ``delivered``; a later
  delivery never returns it again (a lost answer is replayed by the ``Idempotency-Key``).
- **Result** (:meth:`IssuerActions.report`): the card's status word, once. A script bound to an
  ATC the card has since moved past fails its MAC on the card (6988) and is recorded
  ``refused``; it is not sent again — the issuer asks anew.

The binding runs after the authorization's answer is settled, in its own small transaction, and
only for a token whose cached snapshot says an action waits
(:attr:`~tsp_backend.services.verdict.TokenSnapshot.issuer_actions`; :meth:`IssuerActions.request`
and :meth:`IssuerActions.deliver` drop that snapshot on commit); it never changes the answer (a
failure is logged and the action stays where it was).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tsp_backend.errors import Conflict, Forbidden, Unprocessable
from tsp_backend.models import Card, IssuerAction, Transaction, utcnow
from tsp_backend.services import audit
from tsp_backend.services.cache import invalidate_after_commit, token_key
from tsp_backend.services.issuer_scripts import ACTIONS, script_for
from tsp_backend.services.networks import NETWORKS
from tsp_backend.services.ownership import owned
from tsp_backend.stores import Store

__all__ = ["ACTIONS", "IssuerActions", "action_json", "bind_after_approval"]

SW_OK = "9000"


def action_json(row: IssuerAction) -> dict[str, Any]:
    """The API representation of an action (the script itself only in a delivery)."""
    times = {"createdAt": row.created_at, "deliveredAt": row.delivered_at, "reportedAt": row.reported_at}
    return {"id": row.id, "cardId": row.card_id, "action": row.action, "amount": row.amount,
            "status": row.status, "atc": row.atc, "sw": row.sw,
            **{name: moment.isoformat() if moment else None for name, moment in times.items()}}


def bind_after_approval(
    session: Session, master_keys: Mapping[str, bytes], *, card_id: int, public_id: str,
    tlvs: Mapping[int, bytes], arpc: bytes | None,
) -> int:
    """MAC the token's open actions to the approved authorization ``public_id``; how many.

    ``tlvs`` are the authorization's field-55 objects (its ATC 9F36 and ARQC 9F26); an
    authorization without an ARQC (mag-stripe mode) binds nothing. Commits when it binds.
    """
    arqc, atc = tlvs.get(0x9F26), tlvs.get(0x9F36)
    if arqc is None or atc is None:
        return 0
    rows = list(session.scalars(
        select(IssuerAction)
        .where(IssuerAction.card_id == card_id, IssuerAction.status.in_(IssuerAction.OPEN))
        .order_by(IssuerAction.id)
    ))
    txn = session.scalar(select(Transaction).where(Transaction.public_id == public_id))
    card = session.get(Card, card_id)
    if txn is None or card is None or txn.status != "approved" or txn.luk_index is None:
        session.rollback()
        return 0
    kernel = NETWORKS[card.network].kernel
    for row in rows:
        row.script = script_for(
            master_keys, token_pan=card.token_pan, psn=card.psn, network_kernel=kernel,
            luk_index=txn.luk_index, atc=atc, arqc=arqc, action=row.action, amount=row.amount,
        )
        row.transaction_id, row.atc, row.arpc, row.status = txn.id, txn.atc, arpc, "queued"
    session.commit()
    return len(rows)


class IssuerActions:
    """Ask, deliver and record issuer actions for the owner's cards (module docstring)."""

    @staticmethod
    def request(session: Session, store: Store, user_id: int, card_id: int, action: str, amount: int | None,
                origin: str | None = None) -> IssuerAction:
        """A new ``pending`` action on the user's card (``NotFound`` for another's).

        The token's cached snapshot is dropped on commit, so its next approval reads that an
        action waits (:attr:`~tsp_backend.services.verdict.TokenSnapshot.issuer_actions`)."""
        card = owned(session, Card, user_id, card_id)
        if (action == "cvm_limit") != (amount is not None):
            raise Unprocessable("amount goes with cvm_limit, and only with it", field="amount")
        if card.status in ("DEACTIVATED", "INACTIVE"):
            raise Conflict(f"the token is {card.status.lower()}; no script can reach its card")
        row = IssuerAction(card_id=card.id, user_id=user_id, action=action, amount=amount, status="pending")
        session.add(row)
        session.flush()
        invalidate_after_commit(session, store, token_key(card.token_pan))
        audit.record(session, actor=f"user:{user_id}", action="issuer_action", outcome="pending",
                     target=f"card:{card.id}", origin=origin, kind=action, issuer_action=row.id)
        return row

    @staticmethod
    def of_card(session: Session, user_id: int, card_id: int) -> list[IssuerAction]:
        """The actions of the user's card, oldest first."""
        owned(session, Card, user_id, card_id)
        return list(session.scalars(
            select(IssuerAction).where(IssuerAction.card_id == card_id).order_by(IssuerAction.id)))

    @staticmethod
    def deliver(session: Session, store: Store, user_id: int, card_id: int,
                device_id: int | None) -> list[dict[str, Any]]:
        """The card's queued scripts, marked ``delivered`` (never handed out twice); the token's
        cached snapshot is dropped on commit, so approvals stop binding once none is open."""
        card = owned(session, Card, user_id, card_id)
        if device_id is not None and device_id != card.device_id:
            raise Forbidden(f"card {card_id} is not on this session's device")
        rows = list(session.scalars(
            select(IssuerAction).where(IssuerAction.card_id == card.id, IssuerAction.status == "queued")
            .order_by(IssuerAction.id).with_for_update()
        ))
        if rows:
            invalidate_after_commit(session, store, token_key(card.token_pan))
        now = utcnow()
        out = []
        for row in rows:
            assert row.script is not None
            row.status, row.delivered_at = "delivered", now
            out.append({**action_json(row), "script": row.script.hex().upper(),
                        "arpc": row.arpc.hex().upper() if row.arpc else None})
        return out

    @staticmethod
    def report(session: Session, user_id: int, action_id: int, sw: str,
               origin: str | None = None) -> IssuerAction:
        """Record the card's status word for a delivered script: ``applied`` on 9000, else ``refused``."""
        row = owned(session, IssuerAction, user_id, action_id, for_update=True)
        if row.status != "delivered":
            raise Conflict(f"issuer action {action_id} is {row.status}; only a delivered script has a result")
        row.sw = sw.upper()
        row.status = "applied" if row.sw == SW_OK else "refused"
        row.reported_at = utcnow()
        audit.record(session, actor=f"user:{user_id}", action="issuer_script", outcome=row.status,
                     target=f"card:{row.card_id}", origin=origin, issuer_action=row.id, sw=row.sw)
        return row
