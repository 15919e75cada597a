"""The holder's changes to their wallet — provision a card, change a card, lose a device — each
with its audit rows, for the JSON API and the pages alike (a page passes ``via="web"``).

The effects are :class:`~tsp_backend.services.provisioning.Provisioner`'s and
:class:`~tsp_backend.services.cards.CardService`'s; this module adds what every caller owes the
audit log, from the request's :class:`~tsp_backend.services.origin.Origin`. The caller commits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from tsp_backend.errors import ProvisioningDeclined, TSPError
from tsp_backend.models import Card, Device, User
from tsp_backend.services.cards import CardService
from tsp_backend.services.devices import register_device
from tsp_backend.services.origin import Origin, record, record_now
from tsp_backend.services.provisioning import PickupResult, Provisioner, ProvisionResult, VerifyResult


class Wallet:
    """Audited changes to a holder's cards and devices."""

    def __init__(
        self, provisioner: Provisioner, cards: CardService, audit_sessions: sessionmaker[Session]
    ) -> None:
        self.provisioner = provisioner
        self.cards = cards
        self.audit_sessions = audit_sessions

    @contextlib.contextmanager
    def _refusal_recorded(self, session: Session, origin: Origin, **row: Any) -> Iterator[None]:
        """A :class:`TSPError` from the block is rolled back, written to the audit log in its own
        transaction (``declined`` when the issuer declined, ``refused`` otherwise, with the
        problem's slug) and raised again."""
        try:
            yield
        except TSPError as error:
            session.rollback()
            outcome = "declined" if isinstance(error, ProvisioningDeclined) else "refused"
            record_now(self.audit_sessions, origin, outcome=outcome, problem=error.slug, **row)
            raise

    def provision(
        self,
        session: Session,
        user: User,
        device_id: int,
        pan: str,
        expiry: str,
        cvv: str,
        origin: Origin,
        *,
        deliver: bool = True,
        via: str | None = None,
    ) -> ProvisionResult:
        """Provision a card to one of the user's devices, with its audit row; the caller commits.

        The success row's outcome is the risk colour. A refusal is rolled back, written to the
        audit log in its own transaction — ``declined`` when the issuer declined, ``refused``
        otherwise, with the problem's slug and the target device — and raised.
        """
        refusal = {"actor": f"user:{user.id}", "action": "card.provision", "target": f"device:{device_id}"}
        with self._refusal_recorded(session, origin, **refusal, via=via):
            result = self.provisioner.provision(session, user, device_id, pan, expiry, cvv, deliver=deliver)
        card = result.card
        record(
            session,
            origin,
            actor=f"user:{user.id}",
            action="card.provision",
            target=f"card:{card.id}",
            outcome=result.decision.colour,
            network=card.network,
            device=card.device_id,
            via=via,
        )
        return result

    def pickup(
        self,
        session: Session,
        user: User,
        card_id: int,
        device_id: int,
        origin: Origin,
        *,
        move: bool = False,
    ) -> PickupResult:
        """A device picks up a card (:meth:`Provisioner.pickup`), with its audit row (``moved`` or
        ``success``); a refusal is rolled back, written in its own transaction and raised. The
        caller commits."""
        refusal = {"actor": f"user:{user.id}", "action": "card.pickup", "target": f"card:{card_id}"}
        with self._refusal_recorded(session, origin, **refusal, device=device_id):
            result = self.provisioner.pickup(session, user, card_id, device_id, move=move)
        card = result.card
        record(
            session,
            origin,
            actor=f"user:{user.id}",
            action="card.pickup",
            target=f"card:{card.id}",
            outcome="moved" if result.moved_from is not None else "success",
            device=result.device.id,
            moved_from=result.moved_from,
            next_index=card.next_luk_index,
        )
        return result

    def verify(
        self,
        session: Session,
        user: User,
        card_id: int,
        code: str,
        origin: Origin,
        *,
        deliver: bool = True,
        via: str | None = None,
    ) -> VerifyResult:
        """Check a card's one-time code, with its audit row (outcome ``success`` or the refusal's
        slug); the caller commits, whatever the outcome (a miss is counted)."""
        result = self.provisioner.verify(session, user, card_id, code, deliver=deliver)
        outcome = "success" if result.error is None else result.error.slug
        record(
            session,
            origin,
            actor=f"user:{user.id}",
            action="card.verify",
            target=f"card:{card_id}",
            outcome=outcome,
            via=via,
        )
        return result

    @staticmethod
    def card_changed(
        session: Session, user_id: int, action: str, card_id: int, origin: Origin, **detail: Any
    ) -> None:
        """The audit row of a successful ``card.<action>`` on one of the user's cards (commits with it)."""
        target = f"card:{card_id}"
        record(session, origin, actor=f"user:{user_id}", action=f"card.{action}", target=target, **detail)

    @staticmethod
    def register_device(
        session: Session, user_id: int, name: str, public_key: str, origin: Origin, *, via: str | None = None
    ) -> Device:
        """Register a device by its P-256 public key, with its audit row; the caller commits."""
        device = register_device(session, user_id, name, public_key)
        target = f"device:{device.id}"
        record(session, origin, actor=f"user:{user_id}", action="device.register", target=target, via=via)
        return device

    def device_lost(
        self, session: Session, user_id: int, device_id: int, origin: Origin, *, via: str | None = None
    ) -> tuple[Device, list[Card]]:
        """Mark the user's device lost (its tokens suspended, its sessions revoked), with its audit row.

        Returns the device and the cards that changed; the caller commits.
        """
        device, changed = self.cards.device_lost(session, user_id, device_id)
        record(
            session,
            origin,
            actor=f"user:{user_id}",
            action="device.lost",
            target=f"device:{device.id}",
            cards=[c.id for c in changed],
            via=via,
        )
        return device, changed
