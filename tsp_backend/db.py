"""Engines, sessions and programmatic Alembic migrations.

SQLite (the embedded default) runs in WAL mode (``synchronous=NORMAL``) with a busy timeout and
foreign keys on, so threads of one process can write without "database is locked" errors; its
file is created (or narrowed to) mode 0600 before SQLite opens it, and SQLite gives its -wal and
-shm files the same mode. PostgreSQL is reached through psycopg 3 (``postgresql+psycopg://``);
:func:`driver_execute` runs a statement on the
session's own psycopg connection, prepared on the server.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")
"""The Alembic script directory."""


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the per-dialect settings the service relies on."""
    if url.startswith("sqlite"):
        _private_sqlite_file(make_url(url).database)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            # WAL with synchronous=NORMAL: a commit survives the process dying (the crash that
            # matters between the issuer and the record) without an fsync per commit; the last
            # commits may be lost only when the machine itself loses power. PostgreSQL is for that.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    # No pre-ping: it costs a round trip on every checkout, and the authorization checks out two
    # connections. A connection that died with the server fails its statement instead; SQLAlchemy
    # then discards the whole pool, the request answers 503 with Retry-After, and the next one
    # connects afresh (tests/tsp_backend/test_tsp_outages.py).
    kwargs.setdefault("pool_pre_ping", False)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


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
