"""Card lifecycle operations of the seed API: list, suspend, reactivate, delete, default, controls,
device lost.

Every change of state goes through :func:`tsp_backend.services.lifecycle.next_state`, and every
change drops the caches of :mod:`tsp_backend.services.cache` after commit.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tsp_backend.errors import DeviceLost, InvalidTransition, ValidationFailed
from tsp_backend.models import Card, Device
from tsp_backend.services.cache import card_list_key, invalidate_after_commit
from tsp_backend.services.devices import owned_device
from tsp_backend.services.lifecycle import CUSTOMER_REASONS, TokenEvent, TokenState, next_state
from tsp_backend.services.provisioning import Provisioner, card_json
from tsp_backend.services.sessions import SessionManager

MAX_PAGE = 100
"""The largest page of :meth:`CardService.list_cards`."""


class CardService:
    """The wallet's view of its tokens."""

    def __init__(self, provisioner: Provisioner, sessions: SessionManager, cache_ttl_s: int = 300) -> None:
        self.provisioner = provisioner
        self.sessions = sessions
        self.store = provisioner.store
        self.cache_ttl_s = cache_ttl_s

    def list_cards(
        self, session: Session, user_id: int, *, after: int | None = None, limit: int = MAX_PAGE
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of the user's tokens that are not deactivated, oldest first.

        ``after`` is the id of the last card of the previous page (``None``: the first page);
        returns the page and the ``after`` of the next page (``None``: this was the last). The
        first :data:`MAX_PAGE` + 1 cards are read through the card-list cache; later pages come
        from the primary key index.
        """
        limit = max(1, min(limit, MAX_PAGE))
        if after is None:
            cached = self.store.get(card_list_key(user_id))
            if cached is not None:
                head: list[dict[str, Any]] = json.loads(cached)
            else:
                head = self._rows(session, user_id, None, MAX_PAGE + 1)
                self.store.set(card_list_key(user_id), json.dumps(head).encode(), self.cache_ttl_s)
            rows = head[: limit + 1]
        else:
            rows = self._rows(session, user_id, after, limit + 1)
        page = rows[:limit]
        return page, (int(page[-1]["id"]) if len(rows) > limit else None)

    @staticmethod
    def _rows(session: Session, user_id: int, after: int | None, count: int) -> list[dict[str, Any]]:
        query = (
            select(Card)
            .where(Card.user_id == user_id, Card.status != TokenState.DEACTIVATED.value)
            .order_by(Card.id)
            .limit(count)
        )
        if after is not None:
            query = query.where(Card.id > after)
        return [card_json(card) for card in session.scalars(query)]

    def _customer_change(
        self, session: Session, user_id: int, card_id: int, event: TokenEvent, reason: str
    ) -> Card:
        if reason not in CUSTOMER_REASONS[event]:
            raise ValidationFailed(
                f"reason must be one of {', '.join(sorted(CUSTOMER_REASONS[event]))}", field="reason"
            )
        card = self.provisioner.owned_card(session, user_id, card_id, for_update=True)
        if event is TokenEvent.REACTIVATE:
            device = owned_device(session, user_id, card.device_id)
            if device.status != "ACTIVE":
                raise DeviceLost(f"device {device.id} is marked lost; its tokens stay suspended")
        card.status = next_state(card.status, event, reason).value
        card.status_reason = reason
        if card.status != TokenState.ACTIVE.value:
            card.is_default = False
        self.provisioner.invalidate(session, card)
        return card

    def suspend(self, session: Session, user_id: int, card_id: int, reason: str) -> Card:
        """ACTIVE → SUSPENDED."""
        return self._customer_change(session, user_id, card_id, TokenEvent.SUSPEND, reason)

    def reactivate(self, session: Session, user_id: int, card_id: int, reason: str) -> Card:
        """SUSPENDED → ACTIVE (not while the device is lost)."""
        return self._customer_change(session, user_id, card_id, TokenEvent.REACTIVATE, reason)

    def delete(self, session: Session, user_id: int, card_id: int, reason: str = "CUSTOMER_REQUEST") -> Card:
        """Any live state → DEACTIVATED (terminal)."""
        return self._customer_change(session, user_id, card_id, TokenEvent.DEACTIVATE, reason)

    def change(
        self, session: Session, user_id: int, card_id: int, action: str, reason: str = "CUSTOMER_REQUEST"
    ) -> Card:
        """The customer's change named ``action``: ``suspend``, ``reactivate``, ``delete`` or ``default``.

        ``reason`` is one of the event's customer reasons; ``default`` takes none.
        """
        if action == "default":
            return self.set_default(session, user_id, card_id)
        operations = {"suspend": self.suspend, "reactivate": self.reactivate, "delete": self.delete}
        return operations[action](session, user_id, card_id, reason)

    def set_default(self, session: Session, user_id: int, card_id: int) -> Card:
        """Make an ACTIVE token the default of its device (the others on that device lose it)."""
        card = self.provisioner.owned_card(session, user_id, card_id, for_update=True)
        if card.status != TokenState.ACTIVE.value:
            raise InvalidTransition(
                f"only an ACTIVE card can be the default; card {card.id} is {card.status}", state=card.status
            )
        session.execute(
            update(Card)
            .where(Card.user_id == user_id, Card.device_id == card.device_id, Card.id != card.id)
            .values(is_default=False)
            .execution_options(synchronize_session=False)
        )
        card.is_default = True
        invalidate_after_commit(session, self.store, card_list_key(user_id))
        return card

    def set_controls(
        self,
        session: Session,
        user_id: int,
        card_id: int,
        *,
        channels: list[str] | None,
        merchants: list[str] | None,
        blocked_mccs: list[str],
    ) -> Card:
        """Set a token's domain controls (``None``: any channel, any merchant)."""
        card = self.provisioner.owned_card(session, user_id, card_id, for_update=True)
        card.allowed_channels = None if channels is None else ",".join(channels)
        card.allowed_merchants = None if merchants is None else ",".join(merchants)
        card.blocked_mccs = ",".join(blocked_mccs) or None
        self.provisioner.invalidate(session, card)
        return card

    def device_lost(self, session: Session, user_id: int, device_id: int) -> tuple[Device, list[Card]]:
        """Mark a device lost: suspend its ACTIVE tokens, deactivate INACTIVE ones, revoke its sessions.

        Sessions are revoked at once (the store is not transactional); the token changes commit
        with the caller's transaction.
        """
        device = owned_device(session, user_id, device_id, for_update=True)
        changed: list[Card] = []
        if device.status != "LOST":
            device.status = "LOST"
            device.lost_at = self.provisioner.clock()
            cards = session.scalars(select(Card).where(Card.device_id == device.id).with_for_update())
            for card in cards:
                event = {"ACTIVE": TokenEvent.SUSPEND, "INACTIVE": TokenEvent.DEACTIVATE}.get(card.status)
                if event is None:
                    continue
                card.status = next_state(card.status, event, "DEVICE_LOST").value
                card.status_reason = "DEVICE_LOST"
                card.is_default = False
                card.verify_code_hash = None
                self.provisioner.invalidate(session, card)
                changed.append(card)
            invalidate_after_commit(session, self.store, card_list_key(user_id))
        self.sessions.revoke_device(device.id)
        return device, changed
