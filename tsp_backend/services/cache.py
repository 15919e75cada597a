"""Read-through caches in the store, invalidated after the database commit that changed them.

==========================  ===================================  ==============================
key                         holds                                invalidated by
==========================  ===================================  ==============================
``cards:<user id>``         the user's card list (GET /api/cards) provisioning, verification,
                                                                 every lifecycle change, default,
                                                                 replenishment, device lost
``token:<sha256 token PAN>``  the token's status and card id     every lifecycle change of the
                            (the authorization path)             token, device lost
==========================  ===================================  ==============================

Deleting after commit (not before) means a reader cannot put the old rows back into the cache
between the deletion and the commit.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import event
from sqlalchemy.orm import Session

from tsp_backend.stores import Store

_PENDING = "hcekit_invalidate"


def card_list_key(user_id: int) -> str:
    """The cache key of a user's card list."""
    return f"cards:{user_id}"


def token_key(token_pan: str) -> str:
    """The cache key of a token's status (keyed by a hash, so the store holds no token PAN)."""
    return "token:" + hashlib.sha256(token_pan.encode()).hexdigest()


def invalidate_after_commit(session: Session, store: Store, *keys: str) -> None:
    """Delete ``keys`` from ``store`` once ``session`` commits (nothing on rollback)."""
    pending: dict[int, tuple[Store, set[str]]] = session.info.setdefault(_PENDING, {})
    pending.setdefault(id(store), (store, set()))[1].update(keys)
    if not event.contains(session, "after_commit", _flush_invalidations):
        event.listen(session, "after_commit", _flush_invalidations)
        event.listen(session, "after_rollback", _drop_invalidations)


def _flush_invalidations(session: Session) -> None:
    pending: dict[int, tuple[Store, set[str]]] = session.info.pop(_PENDING, {})
    for store, keys in pending.values():
        store.delete(*keys)


def _drop_invalidations(session: Session) -> None:
    session.info.pop(_PENDING, None)
