"""Users: registration and login with Argon2id password hashes (RFC 9106).

An Argon2id hash is deliberately expensive (64 MiB and three passes by default): a burst of
registrations or logins would take every core from the authorizations that share the process.
So every hash and every verification takes one of a small, fixed number of slots
(:class:`HashSlots`, a bounded semaphore per process); a caller that finds them all busy waits
at most ``wait_s`` and then gets :class:`~tsp_backend.errors.HashingBusy` (429 with
``Retry-After``), while authorization never queues behind it.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tsp_backend.errors import AlreadyExists, HashingBusy, InvalidCredentials, Unprocessable, ValidationFailed
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


def default_hash_concurrency() -> int:
    """Half the process's CPUs (at least one): the rest stay free for authorization."""
    return max(1, (os.cpu_count() or 2) // 2)


class HashSlots:
    """At most ``size`` password hashes at once in this process; others wait up to ``wait_s``."""

    def __init__(self, size: int, wait_s: float) -> None:
        if size < 1:
            raise ValueError("at least one hashing slot")
        self.size = size
        self.wait_s = wait_s
        self._semaphore = threading.BoundedSemaphore(size)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the body; :class:`HashingBusy` if none frees up within ``wait_s``."""
        if self.wait_s > 0:
            acquired = self._semaphore.acquire(timeout=self.wait_s)
        else:
            acquired = self._semaphore.acquire(blocking=False)
        if not acquired:
            raise HashingBusy("too many password checks at once; retry in a moment")
        try:
            yield
        finally:
            self._semaphore.release()


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

    def __init__(self, hasher: PasswordHasher, slots: HashSlots | None = None) -> None:
        self.hasher = hasher
        self.slots = slots if slots is not None else HashSlots(default_hash_concurrency(), 2.0)
        self._dummy_hash = hasher.hash("an unused password that equalises timing")

    def hash_password(self, password: str) -> str:
        """The Argon2id hash of ``password``, computed in one of the :attr:`slots`."""
        with self.slots.slot():
            return self.hasher.hash(password)

    def _verify(self, stored: str, password: str) -> None:
        with self.slots.slot():
            self.hasher.verify(stored, password)

    def register(self, session: Session, email: str, password: str, *, is_admin: bool = False) -> User:
        """Create a user; ``AlreadyExists`` if the address is taken."""
        address = normalise_email(email)
        if len(password) < MIN_PASSWORD:
            raise ValidationFailed(f"password must have at least {MIN_PASSWORD} characters", field="password")
        if session.scalar(select(User.id).where(User.email == address)) is not None:
            raise AlreadyExists("an account with this email already exists")
        user = User(email=address, password_hash=self.hash_password(password), is_admin=is_admin)
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
            self._verify(stored, password)
        except (VerificationError, InvalidHashError):
            raise InvalidCredentials("email or password is wrong") from None
        if user is None:
            raise InvalidCredentials("email or password is wrong")
        if self.hasher.check_needs_rehash(user.password_hash):
            user.password_hash = self.hash_password(password)
        return user

    @staticmethod
    def count(session: Session) -> int:
        """How many users exist."""
        return int(session.scalar(select(func.count()).select_from(User)) or 0)
