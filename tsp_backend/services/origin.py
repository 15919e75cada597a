"""Where a request came from, as a value the services write into their audit rows (:func:`record`).

The HTTP layer builds one :class:`Origin` per request (client address, user agent, the
authenticated actor); services take it as an argument and never read a request themselves, so
tests call them with any origin they like.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from tsp_backend.services import audit

AGENT_CHARS = 120
"""How much of the user agent an audit row keeps."""


@dataclass(frozen=True)
class Origin:
    """A request's origin: the client's address, its user agent and who it is authenticated as.

    >>> Origin("192.0.2.7", "curl/8.5").text, Origin(None, "").text
    ('192.0.2.7 curl/8.5', '-')
    """

    ip: str | None
    user_agent: str
    actor: str = "anonymous"

    @property
    def text(self) -> str:
        """The audit log's ``origin`` column: address and user agent."""
        return f"{self.ip or '-'} {self.user_agent[:AGENT_CHARS]}".strip()


def record(
    session: Session,
    origin: Origin,
    *,
    actor: str,
    action: str,
    outcome: str = "success",
    target: str | None = None,
    via: str | None = None,
    **detail: Any,
) -> None:
    """Add the audit row of a request from ``origin`` to ``session`` (:func:`audit.record`);
    ``via`` (``web`` for a page) joins the detail when given."""
    if via is not None:
        detail["via"] = via
    audit.record(
        session, actor=actor, action=action, outcome=outcome, target=target, origin=origin.text, **detail
    )


def record_now(audit_sessions: sessionmaker[Session], origin: Origin, **fields: Any) -> None:
    """:func:`record` in a transaction of its own (a refusal whose effect was rolled back)."""
    with audit_sessions() as session, session.begin():
        record(session, origin, **fields)
