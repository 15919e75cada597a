"""The append-only audit log: who did what, when, with which outcome, from where.

Rows are only ever inserted (on PostgreSQL a trigger refuses UPDATE and DELETE). ``detail`` is
a small JSON object of identifiers and reason codes — never a PAN, CVV, code or key.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from tsp_backend.models import AuditEvent


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    outcome: str,
    target: str | None = None,
    origin: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add an audit row to ``session`` (it commits with the effect it describes)."""
    event = AuditEvent(
        actor=actor,
        action=action,
        target=target,
        outcome=outcome,
        origin=origin[:200] if origin else None,
        detail=json.dumps(detail, sort_keys=True, default=str) if detail else None,
    )
    session.add(event)
    return event


def record_now(sessionmaker: Any, **fields: Any) -> None:
    """Write an audit row in its own transaction (for refusals whose effect was rolled back)."""
    with sessionmaker() as session, session.begin():
        record(session, **fields)
