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

from tsp_backend.errors import AlreadyExists, HashingBusy, InvalidCredentials, ValidationFailed
from tsp_backend.models import User

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{1,63}$")
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
    """Trimmed and lower-cased; raises :class:`ValidationFailed` if it is not an address."""
    cleaned = email.strip().lower()
    if not _EMAIL.match(cleaned):
        raise ValidationFailed("email is not a valid address", field="email")
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
        """The user with these credentials; ``InvalidCredentials`` otherwise (same work either way)."""
        user = session.scalar(select(User).where(User.email == email.strip().lower()))
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
