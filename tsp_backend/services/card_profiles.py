"""The card profile and the key batches delivered to a device, sealed to its public key.

Card profile (the contract with the card, :class:`hce.profile.CardProfile`), sealed with
:func:`cryptogram.sealing.seal`::

    {"version": 1, "kernel": "visa", "token_ref": "DNITHE…", "pan": "<token PAN>", "psn": "00",
     "expiry": "YYMM", "aid": "A0000000031010", "label": "VISA CREDIT", "priority": 1,
     "kernel_id": "03", "cvn": "visa18", "dki": 1, "issuer_country": "0840",
     "currency": "0840", "cvm_limit": 5000, "atc": 0,
     "luks": [{"index": 1, "key": "<32 hex>", "max_uses": 10, "not_after": <unix s>}, …]}

The network's constants (AID, label, kernel, CVN, CVM limit) come from
:data:`~tsp_backend.services.networks.NETWORKS`, the same table authorization reads.

Key batch delivered on replenishment (POST /api/cards/{id}/keys), sealed the same way::

    {"version": 1, "type": "luk_batch", "token_ref": "…", "luks": [ … as above … ]}

A card may take at most ``Config.max_key_batches_per_day`` batches (profiles included) in 24 hours.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cryptogram.sealing import load_public_key, seal
from tsp_backend.config import Config
from tsp_backend.errors import KeyLimitReached, ValidationFailed
from tsp_backend.models import Card, Device, KeyBatch, Transaction, UsedATC, utcnow
from tsp_backend.services import keys as card_keys
from tsp_backend.services.networks import NETWORKS


class CardProfiles:
    """Issues key batches and builds, seals and counts what a device receives."""

    def __init__(self, config: Config, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.config = config
        self.clock = clock

    def issue_batch(self, session: Session, card: Card) -> list[dict[str, Any]]:
        now = self.clock()
        count = self.config.luk_batch_size
        not_after = int(now.timestamp()) + self.config.luk_lifetime_s
        luks = card_keys.luk_batch(
            self.config.issuer_master_keys,
            card.token_pan,
            card.psn,
            first_index=card.next_luk_index,
            count=count,
            max_uses=self.config.luk_max_uses,
            not_after=not_after,
        )
        session.add(
            KeyBatch(
                card_id=card.id,
                first_index=card.next_luk_index,
                count=count,
                max_uses=self.config.luk_max_uses,
                not_after=not_after,
                created_at=now,
            )
        )
        card.next_luk_index += count
        return luks

    def profile(self, session: Session, card: Card) -> dict[str, Any]:
        """The card profile with a fresh batch of limited-use keys (the contract with the card).

        With ``Config.oda_profiles`` the card also gets an ICC key and its certificate chain
        (:mod:`tsp_backend.services.oda_keys`).
        """
        network = NETWORKS[card.network]
        profile = {
            "version": 1,
            "kernel": network.kernel,
            "token_ref": card.token_ref,
            "pan": card.token_pan,
            "psn": card.psn,
            "expiry": card.token_expiry,
            "aid": network.aid,
            "label": network.label,
            "priority": 1,
            "kernel_id": network.kernel_id,
            "cvn": network.cvn,
            "dki": 1,
            "issuer_country": "0840",
            "currency": "0840",
            "cvm_limit": network.cvm_limit,
            "atc": self.last_atc(session, card),
            "luks": self.issue_batch(session, card),
        }
        if self.config.oda_profiles:
            from tsp_backend.services.oda_keys import OdaIssuer

            return OdaIssuer.from_env(os.environ).certify(profile)
        return profile

    @staticmethod
    def last_atc(session: Session, card: Card) -> int:
        """The highest ATC the service has seen for the token (0 for a new one).

        A profile starts its counter there, so a card picked up again never repeats an ATC the
        issuer has recorded (EMV 4.4 Book 2 §8.1: each ATC is used once).
        """
        used = session.scalar(select(func.max(UsedATC.atc)).where(UsedATC.card_id == card.id))
        logged = session.scalar(select(func.max(Transaction.atc)).where(Transaction.card_id == card.id))
        return max(int(used or 0), int(logged or 0))

    def sealed(self, session: Session, card: Card, device: Device) -> dict[str, str]:
        """The profile sealed to the device's public key (a browser device has none: refused)."""
        if device.kind == "browser":
            raise ValidationFailed(
                f"device {device.id} is a browser: it pays with its passkey and holds no card profile",
                field="deviceId",
            )
        return _seal_to(device, self.profile(session, card))

    def check_key_limit(self, session: Session, card: Card) -> None:
        """``KeyLimitReached`` when the card had its daily number of key batches already."""
        since = self.clock() - dt.timedelta(days=1)
        recent = session.scalar(
            select(func.count())
            .select_from(KeyBatch)
            .where(KeyBatch.card_id == card.id, KeyBatch.created_at > since)
        )
        if int(recent or 0) >= self.config.max_key_batches_per_day:
            raise KeyLimitReached(
                f"at most {self.config.max_key_batches_per_day} key batches per card in 24 hours",
                limit=self.config.max_key_batches_per_day,
            )

    def sealed_batch(self, session: Session, card: Card, device: Device) -> dict[str, str]:
        """A fresh batch of limited-use keys sealed to the device (replenishment)."""
        document = {
            "version": 1,
            "type": "luk_batch",
            "token_ref": card.token_ref,
            "luks": self.issue_batch(session, card),
        }
        return _seal_to(device, document)


def _seal_to(device: Device, document: dict[str, Any]) -> dict[str, str]:
    """``document`` sealed to the device's public key."""
    return seal(load_public_key(base64.b64encode(device.public_key).decode()), document)
