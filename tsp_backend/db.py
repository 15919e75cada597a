"""Engines, sessions and programmatic Alembic migrations.

SQLite (the embedded default) runs in WAL mode (``synchronous=NORMAL``) with a busy timeout and
foreign keys on; its file is created (or narrowed to) mode 0600 before SQLite opens it, and
SQLite gives its -wal and -shm files the same mode.

SQLAlchemy, not the ``sqlite3`` module, begins SQLite's write transactions, and begins them
``BEGIN IMMEDIATE`` (SQLAlchemy's documented recipe: the driver's own transaction handling off,
the BEGIN emitted from an engine event), just before a transaction's first write or its first
``SELECT … FOR UPDATE``: the write lock is taken when the transaction starts, so no transaction
ever turns from a reader into a writer. Such an upgrade is what SQLite refuses once another
transaction has committed after the reader's snapshot (``SQLITE_BUSY_SNAPSHOT``, "database is
locked" at once, whatever the busy timeout; https://www.sqlite.org/lang_transaction.html,
https://www.sqlite.org/isolation.html), and the driver's own handling, which begins nothing
before a SELECT, lost the update instead: a read FOR UPDATE and its write were two
transactions. Reads before the first write take no lock and run on the last committed state,
as they did; a transaction that only reads never waits for a writer, and a request that has
read in one session may write in another (``BEGIN IMMEDIATE`` at every begin would make each of
those wait for the write lock, and such a request wait for itself until the busy timeout).
``isolation_level="AUTOCOMMIT"`` begins nothing.

Writers of one process wait for each other here, on a lock that hands the turn to the next one
as soon as a transaction ends (:class:`_WriterTurns`), rather than in SQLite's busy handler,
which polls with sleeps of up to 100 ms and lets late comers overtake (the tail that
``benchmarks/bench_sqlite_tail.py`` measures); writers of other processes still meet in the
busy handler.

PostgreSQL is reached through psycopg 3 (``postgresql+psycopg://``); :func:`driver_execute`
runs a statement on the session's own psycopg connection, prepared on the server.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")
"""The Alembic script directory."""


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the per-dialect settings the service relies on (module docstring)."""
    if url.startswith("sqlite"):
        _private_sqlite_file(make_url(url).database)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        _sqlite_transactions(engine)
        return engine
    # No pre-ping: it costs a round trip on every checkout, and the authorization checks out two
    # connections. A connection that died with the server fails its statement instead; SQLAlchemy
    # then discards the whole pool, the request answers 503 with Retry-After, and the next one
    # connects afresh (tests/tsp_backend/test_tsp_outages.py).
    kwargs.setdefault("pool_pre_ping", False)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


_READS = ("SELECT", "PRAGMA", "EXPLAIN")
"""How the statements that begin no transaction start (unless they lock: FOR UPDATE)."""


def _sqlite_transactions(engine: Engine) -> None:
    """Pragmas on connect; ``BEGIN IMMEDIATE`` before a transaction's first write (module docstring)."""
    turns = _WriterTurns()

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        # WAL with synchronous=NORMAL: a commit survives the process dying (the crash that
        # matters between the issuer and the record) without an fsync per commit; the last
        # commits may be lost only when the machine itself loses power. PostgreSQL is for that.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "before_cursor_execute")
    def _sqlite_begin(
        connection: Connection, cursor: Any, statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        dbapi_connection = cursor.connection
        if dbapi_connection.in_transaction or not connection.in_transaction():
            return
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return
        if statement.lstrip()[:7].upper().startswith(_READS) and not _locks(context):
            return
        # The dialect hands the driver its transactions back after an AUTOCOMMIT checkout.
        dbapi_connection.isolation_level = None
        turns.take(dbapi_connection)
        try:
            dbapi_connection.execute("BEGIN IMMEDIATE")
        except BaseException:
            turns.give(dbapi_connection)
            raise

    # The "commit" and "rollback" events come before SQLAlchemy ends the transaction: the driver
    # ends it here first, so the next writer's BEGIN IMMEDIATE finds the lock free (instead of
    # sleeping in the busy handler); SQLAlchemy's own commit or rollback then finds nothing to end,
    # or, if this one failed, ends it and reports the error its own way.
    def _ends_first(end: str) -> Callable[[Connection], None]:
        def _sqlite_end(connection: Connection) -> None:
            dbapi_connection: Any = connection.connection.driver_connection
            try:
                with contextlib.suppress(sqlite3.Error):
                    getattr(dbapi_connection, end)()
            finally:
                turns.give(dbapi_connection)

        return _sqlite_end

    for end in ("commit", "rollback"):
        event.listen(engine, end, _ends_first(end))

    @event.listens_for(engine, "checkin")
    @event.listens_for(engine, "close")
    def _sqlite_checkin(dbapi_connection: Any, _record: Any) -> None:
        turns.give(dbapi_connection)


def _locks(context: Any) -> bool:
    """Whether the statement was compiled from ``with_for_update()`` (which SQLite's SQL omits)."""
    compiled = getattr(context, "compiled", None)
    return getattr(getattr(compiled, "statement", None), "_for_update_arg", None) is not None


class _WriterTurns:
    """The write lock of one engine's SQLite file, inside the process: one writer at a time.

    ``take`` before ``BEGIN IMMEDIATE``, ``give`` when the transaction ends (commit, rollback,
    the connection going back to the pool or closing). Waiting on a :class:`threading.Lock`
    wakes a waiter as soon as the lock is released; SQLite's own busy handler, where writers of
    other processes still meet, sleeps between polls and lets late comers overtake. A thread
    that already writes on another connection does not wait for itself: SQLite's busy timeout
    answers it, as it did before. After :data:`WAIT_S` a writer stops waiting here and goes on
    to SQLite's busy handler.
    """

    WAIT_S = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: int | None = None
        self._thread: int | None = None

    def take(self, dbapi_connection: Any) -> None:
        """Wait for the write turn and hold it for ``dbapi_connection``."""
        if self._thread == threading.get_ident():
            return
        if self._lock.acquire(timeout=self.WAIT_S):
            self._holder, self._thread = id(dbapi_connection), threading.get_ident()

    def give(self, dbapi_connection: Any) -> None:
        """Release the turn if ``dbapi_connection`` holds it."""
        if self._holder == id(dbapi_connection):
            self._holder = self._thread = None
            self._lock.release()


def _private_sqlite_file(database: str | None) -> None:
    """Create the SQLite file with mode 0600 (or take group and other access away from it)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        mode = os.stat(database).st_mode & 0o777
        if mode & 0o077:
            with contextlib.suppress(PermissionError):
                os.chmod(database, mode & 0o700)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def driver_execute(session: Session, sql: str, params: Mapping[str, Any]) -> Any:
    """Run ``sql`` (``%(name)s`` placeholders) on the session's psycopg connection, in its
    transaction, as a server-side prepared statement; the psycopg cursor.

    For the few statements of the authorization's hot path on PostgreSQL, where SQLAlchemy's
    per-statement work costs more than the round trip itself; the session still owns the
    transaction (its commit and rollback end it).
    """
    connection: Any = session.connection().connection.driver_connection
    return connection.execute(sql, params, prepare=True)


def alembic_config(url: str) -> Any:
    """An Alembic :class:`~alembic.config.Config` pointing at the packaged migrations."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run ``alembic upgrade <revision>`` on ``engine`` (idempotent; safe from several processes)."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Run ``alembic downgrade <revision>`` on ``engine``."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)
