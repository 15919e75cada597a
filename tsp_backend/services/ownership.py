"""Rows a user owns: the one look-up behind every ``/{id}`` route of the wallet.

A row that does not exist and a row of another user answer the same :class:`NotFound`, so an id
reveals nothing about other accounts; an id no row can have (outside ``1..MAX_ROW_ID``) is
refused before the database is asked.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from tsp_backend.errors import NotFound
from tsp_backend.models import Card, Device, IssuerAction, is_row_id

Owned = TypeVar("Owned", Card, Device, IssuerAction)


def owned(
    session: Session, model: type[Owned], user_id: int, row_id: int, *, for_update: bool = False
) -> Owned:
    """The user's row of ``model`` (locked ``FOR UPDATE`` if asked); ``NotFound`` otherwise."""
    if not is_row_id(row_id):
        raise NotFound(f"no {model.__name__.lower()} {row_id}")
    query = select(model).where(model.id == row_id, model.user_id == user_id)
    if for_update:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        raise NotFound(f"no {model.__name__.lower()} {row_id}")
    return row
