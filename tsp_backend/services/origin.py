"""Where a request came from, as a value the services write into their audit rows.

The HTTP layer builds one :class:`Origin` per request (client address, user agent, the
authenticated actor); services take it as an argument and never read a request themselves, so
tests call them with any origin they like.
"""

from __future__ import annotations

from dataclasses import dataclass

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
