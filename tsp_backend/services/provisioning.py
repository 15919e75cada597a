"""Provisioning a funding card into a network token on a device (POST /api/cards).

Steps (EMVCo Payment Tokenisation Technical Framework v2.3 §5): validate the card (Luhn,
length per network, expiry, CVV format — the CVV is dropped right after), decide risk, put the
PAN in the vault, ask the network's token service (behind its breaker) for a token PAN, token
reference and expiry, then either activate the token and deliver the card profile with a batch
of limited-use keys sealed to the device's public key (green), or leave it INACTIVE and send a
one-time code to the simulated outbox (yellow). Red is refused and nothing is stored.

The card profile and the key batches are :mod:`tsp_backend.services.card_profiles`'s.

Device pickup (POST /api/cards/{id}/profile). A card added on the web, or by another client,
is activated without a profile (``deliver=False``): no key leaves the service until a device
asks. The device then picks the card up with its own session: the service seals a fresh
profile to that device's public key, with a fresh batch of limited-use keys counted against the
same daily limit as replenishment, and with ``atc`` set to the highest ATC the service has seen
for the token, so a reinstalled or new wallet never repeats a counter. A token lives on one
device; picking it up on another device of the user *moves* it, and only when the caller says
so (``move``): the token is rebound, loses its default flag, and every batch of keys issued to
the old device is expired at once, so the old device can no longer pay with it. A token that was
suspended because its device was reported lost can be moved the same way to a healthy device,
which reactivates it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tsp_backend.config import Config
from tsp_backend.errors import (
    AlreadyExists,
    Conflict,
    DeviceLost,
    InvalidTransition,
    ProvisioningDeclined,
    TSPError,
    VerificationExhausted,
    VerificationFailed,
)
from tsp_backend.models import Card, Device, KeyBatch, User, utcnow
from tsp_backend.services.cache import card_list_key, invalidate_after_commit, token_key
from tsp_backend.services.card_profiles import CardProfiles
from tsp_backend.services.cardnumbers import validate_card
from tsp_backend.services.devices import owned_device
from tsp_backend.services.lifecycle import TokenState, next_state
from tsp_backend.services.networks import NetworkClients
from tsp_backend.services.ownership import owned
from tsp_backend.services.risk import VERIFICATION_METHODS, Decision, assess
from tsp_backend.services.vault import Vault, derive_subkey
from tsp_backend.stores import Store

LIVE_STATES = (TokenState.INACTIVE.value, TokenState.ACTIVE.value, TokenState.SUSPENDED.value)


class CardOnAnotherDevice(Conflict):
    """The token lives on another of the user's devices; moving it needs the caller's consent."""

    slug, title = "card-on-another-device", "Card is on another device"


@dataclass(frozen=True)
class ProvisionResult:
    """The outcome of a provisioning: the token row, the decision, and what the device needs."""

    card: Card
    decision: Decision
    sealed_profile: dict[str, str] | None
    verification: dict[str, Any] | None


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of a code check; ``error`` is raised by the caller after committing the counter."""

    card: Card
    sealed_profile: dict[str, str] | None
    error: TSPError | None


@dataclass(frozen=True)
class PickupResult:
    """A device's pickup of a token: the token, the sealed profile, and where it came from."""

    card: Card
    device: Device
    sealed_profile: dict[str, str]
    moved_from: int | None


def card_json(card: Card) -> dict[str, Any]:
    """The API representation of a token (never a PAN: last four digits only)."""
    return {
        "id": card.id,
        "network": card.network,
        "last4": card.funding_last4,
        "tokenLast4": card.token_pan[-4:],
        "tokenRef": card.token_ref,
        "tokenExpiry": card.token_expiry,
        "status": card.status,
        "statusReason": card.status_reason,
        "decision": card.decision,
        "default": card.is_default,
        "deviceId": card.device_id,
        "createdAt": card.created_at.isoformat(),
    }


class Provisioner:
    """Provisioning, ID&V codes and key batches; every method works inside the caller's transaction."""

    def __init__(
        self,
        config: Config,
        store: Store,
        vault: Vault,
        networks: NetworkClients,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.config = config
        self.store = store
        self.vault = vault
        self.networks = networks
        self.clock = clock
        self._otp_key = derive_subkey(config.secret_key, "otp")
        self.profiles = CardProfiles(config, clock)

    def owned_card(self, session: Session, user_id: int, card_id: int, *, for_update: bool = False) -> Card:
        """The user's token; ``NotFound`` if absent or someone else's (or an id no row can have)."""
        return owned(session, Card, user_id, card_id, for_update=for_update)

    def invalidate(self, session: Session, card: Card) -> None:
        """Drop the caches a change to ``card`` makes stale (after commit)."""
        invalidate_after_commit(session, self.store, card_list_key(card.user_id), token_key(card.token_pan))

    def provision(
        self,
        session: Session,
        user: User,
        device_id: int,
        pan: str,
        expiry: str,
        cvv: str,
        *,
        deliver: bool = True,
    ) -> ProvisionResult:
        """Provision a card to one of the user's devices (raises problems for every refusal).

        With ``deliver=False`` (the web form) an approved token is activated without a profile:
        the device picks it up later (:meth:`pickup`).
        """
        now = self.clock()
        device = owned_device(session, user.id, device_id)
        if device.status != "ACTIVE":
            raise DeviceLost(f"device {device.id} is marked lost")
        funding = validate_card(pan, expiry, cvv, today=now.date())
        del cvv
        live = session.scalar(
            select(func.count())
            .select_from(Card)
            .where(Card.device_id == device.id, Card.status.in_(LIVE_STATES))
        )
        risk = assess(funding.pan, live_tokens_on_device=int(live or 0))
        if risk.decision is Decision.DECLINED:
            raise ProvisioningDeclined("the issuer declined to tokenise this card", reason=risk.reason)
        entry = self.vault.store(session, funding.pan)
        duplicate = session.scalar(
            select(Card.id).where(
                Card.vault_id == entry.id, Card.device_id == device.id, Card.status.in_(LIVE_STATES)
            )
        )
        if duplicate is not None:
            raise AlreadyExists("this card is already on this device", cardId=duplicate)
        issued = self.networks.request_token(
            funding.network, fingerprint=entry.fingerprint, funding_expiry=funding.expiry, now=now.timestamp()
        )
        card = Card(
            user_id=user.id,
            device_id=device.id,
            vault_id=entry.id,
            network=funding.network,
            funding_last4=funding.last4,
            token_pan=issued.token_pan,
            token_ref=issued.token_ref,
            token_expiry=issued.token_expiry,
            psn="00",
            status=TokenState.INACTIVE.value,
            decision=risk.decision.value,
            created_at=now,
            updated_at=now,
        )
        session.add(card)
        session.flush()
        self.invalidate(session, card)
        if risk.decision is Decision.APPROVED:
            self._transition(card, "activate", "APPROVED")
            profile = self.profiles.sealed(session, card, device) if deliver else None
            return ProvisionResult(card, risk.decision, profile, None)
        verification = self._send_code(card, user, device)
        return ProvisionResult(card, risk.decision, None, verification)

    def _transition(self, card: Card, event: str, reason: str) -> None:
        card.status = next_state(card.status, event, reason).value
        card.status_reason = reason
        card.updated_at = self.clock()

    def _code_hash(self, card: Card, code: str) -> str:
        return hmac.new(self._otp_key, f"{card.id}:{code}".encode(), hashlib.sha256).hexdigest()

    def _send_code(self, card: Card, user: User, device: Device, method: str = "otp_sms") -> dict[str, Any]:
        code = f"{secrets.randbelow(10**6):06d}"
        now = self.clock()
        card.verify_code_hash = self._code_hash(card, code)
        card.verify_attempts = 0
        card.verify_expires_at = now + dt.timedelta(seconds=self.config.otp_ttl_s)
        to = f"device {device.name}" if method == "otp_sms" else _mask_email(user.email)
        message = {
            "at": now.isoformat(),
            "channel": method.removeprefix("otp_"),
            "to": to,
            "cardId": card.id,
            "code": code,
            "text": f"Your hcekit verification code is {code}",
        }
        self.store.lpush(f"outbox:{user.id}", json.dumps(message).encode())
        return {
            "methods": list(VERIFICATION_METHODS),
            "sentVia": method,
            "to": to,
            "attempts": self.config.otp_attempts,
            "expiresAt": card.verify_expires_at.isoformat(),
        }

    def resend(self, session: Session, user: User, card_id: int, method: str) -> dict[str, Any]:
        """Send a new one-time code for an INACTIVE token."""
        card = self.owned_card(session, user.id, card_id, for_update=True)
        if card.status != TokenState.INACTIVE.value or card.verify_code_hash is None:
            raise InvalidTransition(f"card {card.id} is {card.status}; nothing to verify", state=card.status)
        device = owned_device(session, user.id, card.device_id)
        return self._send_code(card, user, device, method)

    def verify(
        self, session: Session, user: User, card_id: int, code: str, *, deliver: bool = True
    ) -> VerifyResult:
        """Check a one-time code; activate (and deliver the profile), or count the failure."""
        card = self.owned_card(session, user.id, card_id, for_update=True)
        if card.status != TokenState.INACTIVE.value or card.verify_code_hash is None:
            raise InvalidTransition(f"card {card.id} is {card.status}; nothing to verify", state=card.status)
        device = owned_device(session, user.id, card.device_id)
        if device.status != "ACTIVE":
            raise DeviceLost(f"device {device.id} is marked lost")
        now = self.clock()
        expired = card.verify_expires_at is None or card.verify_expires_at <= now
        if not expired and hmac.compare_digest(card.verify_code_hash, self._code_hash(card, code.strip())):
            card.verify_code_hash = None
            card.verify_expires_at = None
            self._transition(card, "activate", "ID_AND_V_PASSED")
            self.invalidate(session, card)
            sealed = self.profiles.sealed(session, card, device) if deliver else None
            return VerifyResult(card, sealed, None)
        card.verify_attempts += 1
        remaining = self.config.otp_attempts - card.verify_attempts
        if remaining <= 0:
            card.verify_code_hash = None
            self._transition(card, "deactivate", "ID_AND_V_FAILED")
            self.invalidate(session, card)
            return VerifyResult(
                card,
                None,
                VerificationExhausted(
                    f"too many wrong codes; card {card.id} was deactivated", attemptsRemaining=0
                ),
            )
        detail = "the code has expired; request a new one" if expired else "the code is wrong"
        return VerifyResult(card, None, VerificationFailed(detail, attemptsRemaining=remaining))

    def replenish(self, session: Session, user: User, card_id: int) -> dict[str, str]:
        """A new sealed batch of limited-use keys for an ACTIVE token, bounded per day."""
        card = self.owned_card(session, user.id, card_id, for_update=True)
        if card.status != TokenState.ACTIVE.value:
            raise InvalidTransition(
                f"keys are issued only to ACTIVE tokens; card {card.id} is {card.status}", state=card.status
            )
        device = owned_device(session, user.id, card.device_id)
        if device.status != "ACTIVE":
            raise DeviceLost(f"device {device.id} is marked lost")
        self.profiles.check_key_limit(session, card)
        sealed = self.profiles.sealed_batch(session, card, device)
        self.invalidate(session, card)
        return sealed

    def pickup(
        self, session: Session, user: User, card_id: int, device_id: int, *, move: bool = False
    ) -> PickupResult:
        """Seal a fresh profile of an ACTIVE token to one of the user's devices (module docstring).

        A move may also rescue a token that was suspended because its device was reported lost
        (reason ``DEVICE_LOST``): it is rebound, reactivated (``DEVICE_FOUND``) and the lost
        device's keys are expired.

        Refusals: ``NotFound`` (not the user's card or device), ``DeviceLost`` (the requesting
        device is marked lost), ``InvalidTransition`` (the token is not ACTIVE),
        ``CardOnAnotherDevice`` (bound elsewhere and ``move`` not set), ``AlreadyExists`` (the
        same funding card already has a live token on the requesting device),
        ``KeyLimitReached`` (the daily key-batch limit, shared with replenishment).
        """
        card = self.owned_card(session, user.id, card_id, for_update=True)
        device = owned_device(session, user.id, device_id)
        if device.status != "ACTIVE":
            raise DeviceLost(f"device {device.id} is marked lost")
        elsewhere = card.device_id != device.id
        rescued = (
            elsewhere and card.status == TokenState.SUSPENDED.value and card.status_reason == "DEVICE_LOST"
        )
        if card.status != TokenState.ACTIVE.value and not (rescued and move):
            raise InvalidTransition(
                f"only ACTIVE tokens are delivered to a device; card {card.id} is {card.status}",
                state=card.status,
            )
        moved_from: int | None = None
        if elsewhere:
            if not move:
                raise CardOnAnotherDevice(
                    f"card {card.id} is on device {card.device_id}; ask again with move to bring "
                    f"it to device {device.id} (the other device loses it)",
                    deviceId=card.device_id,
                )
            duplicate = session.scalar(
                select(Card.id).where(
                    Card.vault_id == card.vault_id,
                    Card.device_id == device.id,
                    Card.status.in_(LIVE_STATES),
                )
            )
            if duplicate is not None:
                raise AlreadyExists("this card is already on that device", cardId=duplicate)
            moved_from = card.device_id
        self.profiles.check_key_limit(session, card)
        if rescued:
            self._transition(card, "reactivate", "DEVICE_FOUND")
        if moved_from is not None:
            expired_at = int(self.clock().timestamp()) - 1
            session.execute(
                update(KeyBatch)
                .where(KeyBatch.card_id == card.id, KeyBatch.not_after > expired_at)
                .values(not_after=expired_at)
            )
            card.device_id = device.id
            card.is_default = False
            card.updated_at = self.clock()
        sealed = self.profiles.sealed(session, card, device)
        self.invalidate(session, card)
        return PickupResult(card, device, sealed, moved_from)


def _mask_email(email: str) -> str:
    """``a***@example.com``.

    >>> _mask_email("alice@example.com")
    'a***@example.com'
    """
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"
