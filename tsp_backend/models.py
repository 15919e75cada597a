"""The service's tables as SQLAlchemy 2.0 typed models (the Alembic migrations create them).

No column holds a funding PAN or a CVV: the PAN lives only in :class:`VaultEntry`, encrypted
with AES-256-GCM, and is found again by its keyed HMAC fingerprint. Card master keys and
limited-use keys are never stored: :class:`KeyBatch` records which LUK indexes were issued,
with their limits, and the keys are re-derived from the issuer master key when needed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)  # type: ignore[no-any-return]
        return value.astimezone(dt.timezone.utc)  # type: ignore[no-any-return]


MAX_ROW_ID = 2**31 - 1
"""The largest id an integer primary key holds on every supported database (PostgreSQL ``integer``).

An id from a request above it can name no row: lookups answer 404 before asking the database,
which would otherwise fail to bind it (SQLite, PostgreSQL overflow)."""


def is_row_id(value: int) -> bool:
    """Whether an integer primary key can hold ``value`` (``1..MAX_ROW_ID``): the one range check
    of every id that comes from a request, in a path, a query string, a cursor or a body.

    >>> is_row_id(1), is_row_id(MAX_ROW_ID), is_row_id(MAX_ROW_ID + 1), is_row_id(0)
    (True, True, False, False)
    """
    return 0 < value <= MAX_ROW_ID


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable migration names)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """A wallet user; the password is an Argon2id hash."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    devices: Mapped[list[Device]] = relationship(back_populates="user")


class Device(Base):
    """A device holding tokens.

    ``kind`` is ``phone`` (a wallet: profiles are sealed to its P-256 public key) or ``browser``
    (a web browser: no profile, its holder proven by a :class:`Passkey`; ``public_key`` empty).
    """

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    lost_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default="phone", server_default="phone")

    user: Mapped[User] = relationship(back_populates="devices")


class Passkey(Base):
    """A browser device's WebAuthn credential: id, COSE public key, signature counter."""

    __tablename__ = "passkeys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    credential_id: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class VaultEntry(Base):
    """An encrypted funding PAN: AES-256-GCM under a versioned key, found by HMAC fingerprint."""

    __tablename__ = "vault_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    key_version: Mapped[int] = mapped_column(Integer)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    rotated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Card(Base):
    """A network token on one device, standing for one funding card in the vault."""

    __tablename__ = "cards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    vault_id: Mapped[int] = mapped_column(ForeignKey("vault_entries.id"))
    network: Mapped[str] = mapped_column(String(16))
    funding_last4: Mapped[str] = mapped_column(String(4))
    token_pan: Mapped[str] = mapped_column(String(19), unique=True)
    token_ref: Mapped[str] = mapped_column(String(64), unique=True)
    token_expiry: Mapped[str] = mapped_column(String(4))
    psn: Mapped[str] = mapped_column(String(2), default="00")
    status: Mapped[str] = mapped_column(String(16), default="INACTIVE")
    status_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    decision: Mapped[str] = mapped_column(String(48))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    verify_code_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    verify_attempts: Mapped[int] = mapped_column(Integer, default=0)
    verify_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_luk_index: Mapped[int] = mapped_column(Integer, default=1)
    allowed_channels: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """Domain control: comma-separated channels the token may pay in (``None``: every channel)."""
    allowed_merchants: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Domain control: comma-separated merchant ids the token may pay (``None``: any merchant)."""
    blocked_mccs: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Domain control: comma-separated merchant category codes the token may not pay."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class KeyBatch(Base):
    """A batch of limited-use keys issued to a token: index range, limits, expiry — never the keys."""

    __tablename__ = "key_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), index=True)
    first_index: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)
    max_uses: Mapped[int] = mapped_column(Integer)
    not_after: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LukUse(Base):
    """How many cryptograms a limited-use key of a token has made (counted by the authorization)."""

    __tablename__ = "luk_uses"
    __table_args__ = (UniqueConstraint("card_id", "luk_index", name="uq_luk_uses_card_luk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"))
    luk_index: Mapped[int] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)


class UsedATC(Base):
    """An application transaction counter already seen for a token (replay protection)."""

    __tablename__ = "used_atcs"
    __table_args__ = (UniqueConstraint("card_id", "atc", name="uq_used_atcs_card_atc"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"))
    atc: Mapped[int] = mapped_column(Integer)
    used_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Transaction(Base):
    """An authorization decision on a token (written by the authorization service).

    ``status`` is ``pending`` (written before the issuer was asked; its answer not yet
    recorded), ``approved``, ``declined``, ``in_doubt`` (the issuer did not answer in time, or
    the request died after asking; the reconciliation settles it) or ``reversed`` (approved by
    the issuer but never delivered, then reversed). ``issuer_ref`` is the stable reference the
    issuer knows it by: one row per reference.
    """

    __tablename__ = "transactions"
    __table_args__ = (
        Index("ix_transactions_card_id_created_at", "card_id", "created_at"),
        Index("ix_transactions_status_created_at", "status", "created_at"),
        Index("uq_transactions_issuer_ref", "issuer_ref", unique=True),
        Index("ix_transactions_user_id_created_at_id", "user_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"), nullable=True, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    """The owner of ``card_id`` (the history is read by user: index (user, time, id))."""
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    merchant_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    merchant_name: Mapped[str | None] = mapped_column(String(120), nullable=True)
    mcc: Mapped[str | None] = mapped_column(String(4), nullable=True)
    terminal_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    channel: Mapped[str] = mapped_column(String(16))
    network: Mapped[str | None] = mapped_column(String(16), nullable=True)
    atc: Mapped[int | None] = mapped_column(Integer, nullable=True)
    approved: Mapped[bool] = mapped_column(Boolean)
    response_code: Mapped[str] = mapped_column(String(2))
    auth_code: Mapped[str | None] = mapped_column(String(6), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(120), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="declined")
    luk_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    issuer_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    settled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ApiKey(Base):
    """A terminal's or merchant's API key, stored as its SHA-256 (the key has 256 bits of entropy)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16), default="terminal")
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditEvent(Base):
    """One append-only audit row: who did what, when, with which outcome, from where."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(48))
    target: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str | None] = mapped_column(String(200), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


class IdempotencyKey(Base):
    """A stored idempotent request: its fingerprint, state and the first response.

    Scoped by client and route (IETF draft-ietf-httpapi-idempotency-key-header §2; Stripe).
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("scope", "route", "key", name="uq_idempotency_keys_scope_route_key"),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))
    route: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="IN_FLIGHT")
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    transaction_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    """The transaction the claiming request wrote (an authorization's pending row)."""


class IssuerAction(Base):
    """An issuer's request to change a card (block, unblock, a new CVM limit) and its script.

    ``status``: ``pending`` until an approved online authorization of the token is known;
    ``queued`` once the script is MACed to that authorization (``transaction_id``, ``atc``;
    a later approval before delivery binds it again, to the newer one); ``delivered`` once the
    device has taken it; ``applied`` or ``refused`` with the card's status word (``sw``). The
    script is not secret (its data is enciphered, its MAC binds it to one ARQC); ``arpc`` is the
    authorization's tag 91 value, delivered with it (:mod:`tsp_backend.services.issuer_actions`).
    """

    __tablename__ = "issuer_actions"
    __table_args__ = (Index("ix_issuer_actions_card_id_status", "card_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"), nullable=True)
    atc: Mapped[int | None] = mapped_column(Integer, nullable=True)
    script: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    arpc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    sw: Mapped[str | None] = mapped_column(String(4), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reported_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    OPEN: ClassVar[tuple[str, ...]] = ("pending", "queued")
    """Statuses whose script may still be (re)bound to the token's newest approval."""
