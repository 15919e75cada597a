"""What a dependency going away looks like, recognised in one place for the API and the pages.

The database and the shared store can stop answering in the middle of any request. The foreign
errors that say so are recognised here (:func:`unavailable`) and nowhere else; a failed request
is ended here (:func:`end_failed_request`: its database session rolled back, or dropped when even
the rollback fails). The API answers a ``503`` problem with ``Retry-After``
(:mod:`tsp_backend.app`), the wallet pages a ``503`` page (:mod:`tsp_backend.web.pages`): never
"something went wrong" (500) for an outage.
"""

from __future__ import annotations

import sys

from flask import g
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tsp_backend.errors import DependencyUnavailable

__all__ = ["end_failed_request", "roll_back_request", "unavailable"]


def _psycopg_unavailable(error: BaseException) -> bool:
    """Whether ``error`` is psycopg's own connection failure (checked only where psycopg is in use:
    a service on SQLite never imports it)."""
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))


def _dependency_of(error: BaseException) -> str | None:
    if isinstance(error, (OperationalError, InterfaceError, PoolTimeout)):
        return "database"
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return "database"
    if _psycopg_unavailable(error):
        return "database"
    if isinstance(error, (RedisConnectionError, RedisTimeoutError)):
        return "store"
    return None


def unavailable(error: BaseException) -> DependencyUnavailable | None:
    """The 503 problem for an error that means the database or the store does not answer, or ``None``.

    The foreign errors — SQLAlchemy's ``OperationalError``/``InterfaceError``/pool time-out, a DBAPI
    error that invalidated its connection, psycopg's own ``OperationalError`` (statements run on
    the driver's connection), redis' ``ConnectionError``/``TimeoutError`` — are recognised here
    and only here, also when another error wraps them (``__cause__``/``__context__``).
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        dependency = _dependency_of(current)
        if dependency is not None:
            return DependencyUnavailable(
                f"the {dependency} is unavailable; the request was not completed, retry later",
                dependency=dependency,
            )
        current = current.__cause__ or current.__context__
    return None


def roll_back_request() -> None:
    """Roll the request's database session back; drop its connection if even the rollback fails."""
    session = g.get("db")
    if session is not None:
        try:
            session.rollback()
        except Exception:
            session.invalidate()


def end_failed_request(error: BaseException) -> DependencyUnavailable | None:
    """End a request that raised ``error`` (:func:`roll_back_request`); the 503 problem when the
    error means a dependency is gone."""
    roll_back_request()
    return unavailable(error)
