"""Short-lived shared state: sessions, caches, one-time codes — in Redis or in process.

The service keeps anything that may be lost on restart (sessions, the card-list and token
caches, the development outbox) behind one small :class:`Store` interface. :class:`RedisStore`
makes several processes behave as one service; :class:`MemoryStore` is the embedded default
for a single process. Durable state (cards, idempotency keys, audit) lives in the database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol


class Store(Protocol):
    """The operations the service needs; values are bytes, TTLs are seconds."""

    def get(self, key: str) -> bytes | None:
        """The value, or ``None`` if absent or expired."""

    def get_many(self, *keys: str) -> list[bytes | None]:
        """The values of ``keys`` in order (``None`` where absent), in one round trip."""

    def set(self, key: str, value: bytes, ttl: int | None = None) -> None:
        """Store a value, optionally expiring after ``ttl`` seconds."""

    def delete(self, *keys: str) -> None:
        """Remove keys (absent keys are ignored)."""

    def incr(self, key: str, ttl: int | None = None) -> int:
        """Increment an integer counter, setting ``ttl`` when it is created; the new value."""

    def sadd(self, key: str, member: str, ttl: int | None = None) -> None:
        """Add a member to a set."""

    def smembers(self, key: str) -> frozenset[str]:
        """The members of a set (empty if absent)."""

    def lpush(self, key: str, value: bytes, limit: int = 100) -> None:
        """Prepend to a list, keeping at most ``limit`` items."""

    def lrange(self, key: str) -> list[bytes]:
        """Every item of a list, newest first."""

    def ping(self) -> bool:
        """Whether the store answers."""


class MemoryStore:
    """An in-process :class:`Store` (thread-safe; one process only).

    >>> store = MemoryStore()
    >>> store.set("a", b"1"); store.get("a")
    b'1'
    >>> store.incr("n"), store.incr("n")
    (1, 2)
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._data: dict[str, tuple[Any, float | None]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def _live(self, key: str) -> Any:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and self._clock() >= expires:
            del self._data[key]
            return None
        return value

    def _expiry(self, ttl: int | None) -> float | None:
        return None if ttl is None else self._clock() + ttl

    def get(self, key: str) -> bytes | None:
        """See :meth:`Store.get`."""
        with self._lock:
            value = self._live(key)
            return value if isinstance(value, bytes) else None

    def get_many(self, *keys: str) -> list[bytes | None]:
        """See :meth:`Store.get_many`."""
        return [self.get(key) for key in keys]

    def set(self, key: str, value: bytes, ttl: int | None = None) -> None:
        """See :meth:`Store.set`."""
        with self._lock:
            self._data[key] = (value, self._expiry(ttl))

    def delete(self, *keys: str) -> None:
        """See :meth:`Store.delete`."""
        with self._lock:
            for key in keys:
                self._data.pop(key, None)

    def incr(self, key: str, ttl: int | None = None) -> int:
        """See :meth:`Store.incr`."""
        with self._lock:
            current = self._live(key)
            if current is None:
                self._data[key] = (b"1", self._expiry(ttl))
                return 1
            value = int(current) + 1
            self._data[key] = (str(value).encode(), self._data[key][1])
            return value

    def sadd(self, key: str, member: str, ttl: int | None = None) -> None:
        """See :meth:`Store.sadd`."""
        with self._lock:
            current = self._live(key)
            members = set(current) if isinstance(current, frozenset) else set()
            members.add(member)
            self._data[key] = (frozenset(members), self._expiry(ttl))

    def smembers(self, key: str) -> frozenset[str]:
        """See :meth:`Store.smembers`."""
        with self._lock:
            current = self._live(key)
            return current if isinstance(current, frozenset) else frozenset()

    def lpush(self, key: str, value: bytes, limit: int = 100) -> None:
        """See :meth:`Store.lpush`."""
        with self._lock:
            current = self._live(key)
            items = [value, *(current if isinstance(current, tuple) else ())][:limit]
            self._data[key] = (tuple(items), None)

    def lrange(self, key: str) -> list[bytes]:
        """See :meth:`Store.lrange`."""
        with self._lock:
            current = self._live(key)
            return list(current) if isinstance(current, tuple) else []

    def ping(self) -> bool:
        """See :meth:`Store.ping`."""
        return True


class RedisStore:
    """A :class:`Store` on Redis/Valkey, shared by every process of the service."""

    def __init__(self, client: Any, prefix: str = "hcekit:") -> None:
        self.client = client
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, prefix: str = "hcekit:") -> RedisStore:
        """Connect to ``redis://…``, ``rediss://…`` or ``unix:///path``."""
        import redis

        return cls(redis.Redis.from_url(url), prefix)

    def _k(self, key: str) -> str:
        return self.prefix + key

    def get(self, key: str) -> bytes | None:
        """See :meth:`Store.get`."""
        value = self.client.get(self._k(key))
        return None if value is None else bytes(value)

    def get_many(self, *keys: str) -> list[bytes | None]:
        """See :meth:`Store.get_many` (one MGET)."""
        values = self.client.mget([self._k(key) for key in keys])
        return [None if value is None else bytes(value) for value in values]

    def set(self, key: str, value: bytes, ttl: int | None = None) -> None:
        """See :meth:`Store.set`."""
        self.client.set(self._k(key), value, ex=ttl)

    def delete(self, *keys: str) -> None:
        """See :meth:`Store.delete`."""
        if keys:
            self.client.delete(*(self._k(k) for k in keys))

    def incr(self, key: str, ttl: int | None = None) -> int:
        """See :meth:`Store.incr`."""
        pipe = self.client.pipeline()
        if ttl is not None:
            pipe.set(self._k(key), 0, ex=ttl, nx=True)
        pipe.incr(self._k(key))
        return int(pipe.execute()[-1])

    def sadd(self, key: str, member: str, ttl: int | None = None) -> None:
        """See :meth:`Store.sadd`."""
        pipe = self.client.pipeline()
        pipe.sadd(self._k(key), member)
        if ttl is not None:
            pipe.expire(self._k(key), ttl)
        pipe.execute()

    def smembers(self, key: str) -> frozenset[str]:
        """See :meth:`Store.smembers`."""
        return frozenset(
            m.decode() if isinstance(m, bytes) else str(m) for m in self.client.smembers(self._k(key))
        )

    def lpush(self, key: str, value: bytes, limit: int = 100) -> None:
        """See :meth:`Store.lpush`."""
        pipe = self.client.pipeline()
        pipe.lpush(self._k(key), value)
        pipe.ltrim(self._k(key), 0, limit - 1)
        pipe.execute()

    def lrange(self, key: str) -> list[bytes]:
        """See :meth:`Store.lrange`."""
        return [bytes(v) for v in self.client.lrange(self._k(key), 0, -1)]

    def ping(self) -> bool:
        """See :meth:`Store.ping`."""
        try:
            return bool(self.client.ping())
        except Exception:
            return False


def open_store(redis_url: str | None) -> Store:
    """:class:`RedisStore` when a URL is given, else a fresh :class:`MemoryStore`."""
    return RedisStore.from_url(redis_url) if redis_url else MemoryStore()
