"""Accounts: registration, login and logout, each with its audit rows, for the API and the pages.

Both the JSON API (``/api/auth/*``) and the wallet's pages call these methods; a page passes
``via="web"`` for its rows. A refused login is rolled back and written to the audit log in its
own transaction with its reason, so a refusal leaves a trace even though nothing else is kept.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from tsp_backend.errors import DeviceLost, InvalidCredentials, NotFound
from tsp_backend.models import User
from tsp_backend.services.devices import owned_device
from tsp_backend.services.origin import Origin, record, record_now
from tsp_backend.services.sessions import SessionData, SessionManager
from tsp_backend.services.users import UserService


class Accounts:
    """Registration, login and logout over the user and session services."""

    def __init__(
        self,
        users: UserService,
        sessions: SessionManager,
        audit_sessions: sessionmaker[Session],
        admin_emails: Collection[str],
    ) -> None:
        self.users = users
        self.sessions = sessions
        self.audit_sessions = audit_sessions
        self.admin_emails = admin_emails

    def register(self, session: Session, email: str, password: str, origin: Origin) -> User:
        """Create an account (an administrator's if the address is configured so), with its audit
        row; the caller commits."""
        user = self.users.register(
            session, email, password, is_admin=email.strip().lower() in self.admin_emails
        )
        uid = f"user:{user.id}"
        record(session, origin, actor=uid, action="user.register", target=uid)
        return user

    def log_in(
        self,
        session: Session,
        email: str,
        password: str,
        old_token: str | None,
        origin: Origin,
        *,
        device_id: int | None = None,
        via: str | None = None,
        **detail: Any,
    ) -> tuple[User, str, SessionData]:
        """Check the credentials, open a fresh session (bound to ``device_id`` if given) and commit.

        ``old_token``, the session the caller came with, is revoked. A refusal — wrong
        credentials, or a ``device_id`` that is not one of the user's devices or is marked lost —
        is rolled back, written to the audit log in its own transaction with its reason, and
        raised. The success row carries ``detail``; every row carries ``via`` when given. Returns
        the user, the new token and its session.
        """

        def refused(actor_name: str, reason: str) -> None:
            session.rollback()
            record_now(
                self.audit_sessions,
                origin,
                actor=actor_name,
                action="user.login",
                outcome="refused",
                reason=reason,
                via=via,
            )

        try:
            user = self.users.authenticate(session, email, password)
        except InvalidCredentials:
            refused("anonymous", "invalid_credentials")
            raise
        if device_id is not None:
            try:
                device = owned_device(session, user.id, device_id)
            except NotFound:
                refused(f"user:{user.id}", "unknown_device")
                raise
            if device.status != "ACTIVE":
                refused(f"user:{user.id}", "device_lost")
                raise DeviceLost(
                    f"device {device_id} is marked lost: log in without deviceId, or with another device"
                )
        if old_token:
            self.sessions.revoke(old_token)
        token, data = self.sessions.create(user.id, device_id)
        uid = f"user:{user.id}"
        record(session, origin, actor=uid, action="user.login", target=uid, via=via, **detail)
        session.commit()
        return user, token, data

    def log_out(
        self, session: Session, token: str, user_id: int, origin: Origin, *, via: str | None = None
    ) -> None:
        """Revoke the session ``token`` of ``user_id`` and commit its audit row."""
        self.sessions.revoke(token)
        record(session, origin, actor=f"user:{user_id}", action="user.logout", via=via)
        session.commit()
