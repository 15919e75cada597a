"""Limited-use keys and the card's counters: the ATC and each key's use count.

An HCE card has no secure element: its keys are limited-use keys (LUKs) derived by the issuer
from the token master key, each good for ``max_uses`` cryptograms until ``not_after``. The
card holds LUK_i and uses it where a chip card uses its ICC master key (EMV 4.4 Book 2
§A1.3 session key derivation; the LUK index travels in the IAD).

Counters must never go backwards. EMV 4.4 Book 3 Annex A1 defines the Application Transaction
Counter (ATC, tag 9F36) as incremented for every transaction; an issuer rejects a cryptogram
whose ATC it has seen before, so an ATC is reserved -- written durably -- *before* the
response that carries it leaves the card. A crash between reserving and answering only wastes
a number. :class:`CounterStore` is that contract; :class:`MemoryCounterStore` keeps it in
memory (tests, benchmarks) and :class:`FileCounterStore` in a JSON file replaced atomically
(write a temporary file, ``fsync``, ``rename``, ``fsync`` the directory: POSIX rename(2) is
atomic, so a reader sees the old or the new file, never half of one).

>>> store = MemoryCounterStore(atc=41)
>>> store.reserve_next_atc(), store.reserve_next_atc(), store.last_atc
(42, 43, 43)
>>> store.reserve_luk_use(1), store.reserve_luk_use(1), store.luk_uses(1)
(1, 2, 2)
>>> store.reserve_next_atc(online=True, luk_index=1), store.luk_uses(1), store.last_online_atc
(44, 3, 44)
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from hce.errors import CounterExhausted, CounterStoreError
from hce.profile import LimitedUseKeySpec

__all__ = [
    "MAX_ATC",
    "CounterStore",
    "FileCounterStore",
    "MemoryCounterStore",
    "usable_luk",
]

MAX_ATC = 0xFFFF
"""The ATC is 2 bytes (EMV 4.4 Book 3 Annex A1); at FFFF the card makes no more cryptograms."""


@runtime_checkable
class CounterStore(Protocol):
    """Where the card's counters live; every ``reserve_*`` is durable when it returns."""

    @property
    def last_atc(self) -> int:
        """The last ATC reserved (0 before the first)."""

    @property
    def last_online_atc(self) -> int:
        """The ATC of the last online (ARQC) cryptogram: the Last Online ATC Register, 9F13."""

    def reserve_next_atc(self, *, online: bool = False, luk_index: int | None = None) -> int:
        """Reserve and return the next ATC; ``online`` also moves the last online ATC to it, and
        ``luk_index`` counts one more use of that limited-use key, in the same durable write."""

    def reserve_luk_use(self, index: int) -> int:
        """Count one more use of limited-use key ``index`` and return the new count."""

    def luk_uses(self, index: int) -> int:
        """How many cryptograms limited-use key ``index`` has made."""

    @property
    def issuer_state(self) -> Mapping[str, Any]:
        """What the issuer's answers left on the card (:mod:`hce.issuer`), a JSON object."""

    def save_issuer_state(self, state: Mapping[str, Any]) -> None:
        """Make ``state`` durable before the card answers with it."""


class MemoryCounterStore:
    """Counters in memory: durable only as long as the process (tests, benchmarks).

    Every reservation computes the new counters, hands them to :meth:`_persist` and only then
    makes them current, so a store that persists (:class:`FileCounterStore`) overrides that
    one method and a failed write leaves the counters where they were.
    """

    def __init__(self, *, atc: int = 0, last_online_atc: int = 0,
                 luk_uses: Mapping[int, int] | None = None) -> None:
        self._atc = atc
        self._online = last_online_atc
        self._uses: dict[int, int] = dict(luk_uses or {})
        self._issuer: Mapping[str, Any] = {}
        self._lock = threading.Lock()

    def _persist(self, atc: int, online: int, uses: Mapping[int, int]) -> None:
        """Make the new counters durable before they are used; in memory there is nothing to do."""

    @property
    def last_atc(self) -> int:
        """The last ATC reserved."""
        return self._atc

    @property
    def last_online_atc(self) -> int:
        """The ATC of the last ARQC."""
        return self._online

    def reserve_next_atc(self, *, online: bool = False, luk_index: int | None = None) -> int:
        """Reserve the next ATC (and a use of key ``luk_index``) in one durable write; raise
        :class:`CounterExhausted` past FFFF."""
        with self._lock:
            if self._atc >= MAX_ATC:
                raise CounterExhausted("the ATC reached FFFF")
            atc = self._atc + 1
            online_atc = atc if online else self._online
            uses = self._uses
            if luk_index is not None:
                uses = {**uses, luk_index: uses.get(luk_index, 0) + 1}
            self._persist(atc, online_atc, uses)
            self._atc, self._online, self._uses = atc, online_atc, uses
            return atc

    def reserve_luk_use(self, index: int) -> int:
        """Count one use of key ``index``."""
        with self._lock:
            uses = dict(self._uses)
            uses[index] = uses.get(index, 0) + 1
            self._persist(self._atc, self._online, uses)
            self._uses = uses
            return uses[index]

    def luk_uses(self, index: int) -> int:
        """Uses of key ``index`` so far."""
        return self._uses.get(index, 0)

    @property
    def issuer_state(self) -> Mapping[str, Any]:
        """The last state saved by :meth:`save_issuer_state` (empty at first)."""
        return self._issuer

    def save_issuer_state(self, state: Mapping[str, Any]) -> None:
        """Persist ``state`` with the counters; on failure the previous state stays."""
        with self._lock:
            before, self._issuer = self._issuer, dict(state)
            try:
                self._persist(self._atc, self._online, self._uses)
            except BaseException:
                self._issuer = before
                raise


class FileCounterStore(MemoryCounterStore):
    """Counters in a JSON file, rewritten atomically and fsync'ed on every reservation.

    The file holds ``{"atc": n, "last_online_atc": n, "luk_uses": {"<index>": n}, "issuer": {…}}``
    (``issuer``: :attr:`MemoryCounterStore.issuer_state`). When it
    does not exist yet, it starts from ``initial_atc`` (the profile's ``atc``); when it exists,
    the larger of the two wins, so a stale profile can never move the ATC backwards.
    """

    def __init__(self, path: str | Path, *, initial_atc: int = 0) -> None:
        self.path = Path(path)
        state = self._read()
        super().__init__(
            atc=max(int(state.get("atc", 0)), initial_atc),
            last_online_atc=int(state.get("last_online_atc", 0)),
            luk_uses={int(k): int(v) for k, v in dict(state.get("luk_uses", {})).items()},
        )
        issuer = state.get("issuer", {})
        self._issuer = issuer if isinstance(issuer, dict) else {}

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise CounterStoreError(f"cannot read counters {self.path}: {exc.strerror}") from exc
        try:
            state = json.loads(text)
        except ValueError as exc:
            raise CounterStoreError(f"counters file {self.path} is not JSON") from exc
        if not isinstance(state, dict):
            raise CounterStoreError(f"counters file {self.path} is not a JSON object")
        return state

    def _persist(self, atc: int, online: int, uses: Mapping[int, int]) -> None:
        """Write the counters to a temporary file, fsync it, rename it over the file, fsync the directory."""
        counters = {"atc": atc, "last_online_atc": online,
                    "luk_uses": {str(k): v for k, v in sorted(uses.items())}}
        payload = json.dumps({**counters, "issuer": self._issuer} if self._issuer else counters,
                             sort_keys=True).encode()
        directory = self.path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
            try:
                with os.fdopen(fd, "wb") as fp:
                    fp.write(payload)
                    fp.flush()
                    os.fsync(fp.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise CounterStoreError(f"cannot write counters {self.path}: {exc.strerror}") from exc


def usable_luk(luks: Iterable[LimitedUseKeySpec], store: CounterStore,
               now: float | None) -> LimitedUseKeySpec | None:
    """The first key with budget left and not expired at ``now`` (``None``: time unknown).

    Keys are tried in profile order, so a wallet lists them oldest first and uses each up.

    >>> k = LimitedUseKeySpec(index=1, key=bytes(16), max_uses=1, not_after=100)
    >>> s = MemoryCounterStore()
    >>> usable_luk([k], s, now=50) is k, usable_luk([k], s, now=101)
    (True, None)
    >>> _ = s.reserve_luk_use(1); usable_luk([k], s, now=50)
    """
    for luk in luks:
        if store.luk_uses(luk.index) >= luk.max_uses:
            continue
        if now is not None and now > luk.not_after:
            continue
        return luk
    return None
