"""Users: registration and login with Argon2id password hashes (RFC 9106)."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tsp_backend.errors import AlreadyExists, InvalidCredentials, Unprocessable, ValidationFailed
from tsp_backend.models import User

EMAIL_PATTERN = r"^[^@\x00-\x20\x7f]{1,64}@[^@\x00-\x20\x7f]{1,189}\.[^@\x00-\x20\x7f]{1,63}$"
"""An address as the service accepts it: a local part, ``@``, a dotted domain; no ASCII space or
control character. The same pattern is the ``email`` schema of /openapi.json."""

_EMAIL = re.compile(EMAIL_PATTERN)
_ASCII_SPACE = " \t\n\r\f\v"
MAX_EMAIL = 254
"""The ``users.email`` column's length."""
MIN_PASSWORD = 8


def make_hasher(time_cost: int = 3, memory_kib: int = 65536) -> PasswordHasher:
    """An Argon2id hasher (RFC 9106 §4 second recommended option by default)."""
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)


def normalise_email(email: str) -> str:
    """Trimmed of ASCII spaces and lower-cased.

    :class:`ValidationFailed` if it is not an address (:data:`EMAIL_PATTERN`), ``Unprocessable``
    if lower-casing made it longer than the column (a few letters, such as U+0130, grow).

    >>> normalise_email(" Ada@Example.ORG ")
    'ada@example.org'
    """
    cleaned = email.strip(_ASCII_SPACE)
    if not _EMAIL.match(cleaned):
        raise ValidationFailed("email is not a valid address", field="email")
    cleaned = cleaned.lower()
    if len(cleaned) > MAX_EMAIL:
        raise Unprocessable(f"email is longer than {MAX_EMAIL} characters once lower-cased", field="email")
    return cleaned


class UserService:
    """Registration and authentication."""

    def __init__(self, hasher: PasswordHasher) -> None:
        self.hasher = hasher
        self._dummy_hash = hasher.hash("an unused password that equalises timing")

    def register(self, session: Session, email: str, password: str, *, is_admin: bool = False) -> User:
        """Create a user; ``AlreadyExists`` if the address is taken."""
        address = normalise_email(email)
        if len(password) < MIN_PASSWORD:
            raise ValidationFailed(f"password must have at least {MIN_PASSWORD} characters", field="password")
        if session.scalar(select(User.id).where(User.email == address)) is not None:
            raise AlreadyExists("an account with this email already exists")
        user = User(email=address, password_hash=self.hasher.hash(password), is_admin=is_admin)
        try:
            with session.begin_nested():
                session.add(user)
        except IntegrityError as exc:
            raise AlreadyExists("an account with this email already exists") from exc
        return user

    def authenticate(self, session: Session, email: str, password: str) -> User:
        """The user with these credentials; ``InvalidCredentials`` otherwise (same work either way).

        An email no account can have (not :data:`EMAIL_PATTERN`, e.g. with NUL, which the
        database cannot even compare) is never looked up.
        """
        address = email.strip().lower()
        known = _EMAIL.match(address) is not None and len(address) <= MAX_EMAIL
        user = session.scalar(select(User).where(User.email == address)) if known else None
        stored = user.password_hash if user is not None else self._dummy_hash
        try:
            self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            raise InvalidCredentials("email or password is wrong") from None
        if user is None:
            raise InvalidCredentials("email or password is wrong")
        if self.hasher.check_needs_rehash(user.password_hash):
            user.password_hash = self.hasher.hash(password)
        return user

    @staticmethod
    def count(session: Session) -> int:
        """How many users exist."""
        return int(session.scalar(select(func.count()).select_from(User)) or 0)
