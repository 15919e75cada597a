"""Alembic environment: migrates the connection or URL handed over by :func:`tsp_backend.db.upgrade`.

On PostgreSQL the upgrade holds a transaction-level advisory lock, so several instances
starting together on one database migrate it once.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from tsp_backend.models import Base

config = context.config
target_metadata = Base.metadata
ADVISORY_LOCK_ID = 0x6863656B  # "hcek"


def run_migrations_offline() -> None:
    """Emit SQL without a database (``alembic upgrade --sql``)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate through the given connection, or a fresh engine on ``sqlalchemy.url``."""
    connection = config.attributes.get("connection")
    if connection is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.connect() as conn:
            _run(conn)
        engine.dispose()
    else:
        _run(connection)


def _run(connection):  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": ADVISORY_LOCK_ID})
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
