"""The authorization client: sends an online request to a token service provider over HTTPS.

The request is ``POST {host}/api/authorize`` with ``Authorization: Bearer <terminal API key>``
and a fresh ``Idempotency-Key`` (a UUID; a retry of the same request reuses it), and a JSON
body built by :func:`terminal.outcome.authorization_request`: the field-55 block as hex,
amount in minor units, ISO 4217 currency, merchant, channel and terminal. A 200 answer is
``{"approved", "responseCode", "authCode", "arpc", "transactionId", "network", "reason"}``;
any other status is an RFC 9457 problem document, raised as
:class:`~terminal.errors.HostRejected` with its stable ``type``. httpx's errors are translated
here, at the boundary (docs/architecture.md, Conventions 6).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from terminal.errors import HostError, HostRejected
from terminal.outcome import HostAnswer

DEFAULT_TIMEOUT = 2.0
"""Seconds to wait for the host: the whole tap has 500 ms, so a slow host is an answer too."""


class AuthorizationClient:
    """A client of ``POST /api/authorize``; ``transport`` lets tests plug in an httpx transport."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "hcekit-terminal"},
        )

    def authorize(self, body: dict[str, Any], *, idempotency_key: str | None = None) -> HostAnswer:
        """Send one authorization request and return the host's answer."""
        key = idempotency_key or str(uuid.uuid4())
        try:
            response = self._client.post("/api/authorize", json=body, headers={"Idempotency-Key": key})
        except httpx.TimeoutException as exc:
            raise HostError(f"the host {self.base_url} did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise HostError(f"cannot reach the host {self.base_url}: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise _problem(response)
        try:
            doc = response.json()
        except ValueError as exc:
            raise HostError("the host's answer is not JSON") from exc
        return parse_answer(doc)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> AuthorizationClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_answer(doc: Any) -> HostAnswer:
    """The host's 200 answer as a :class:`HostAnswer`; a malformed one is :class:`HostError`.

    >>> parse_answer({"approved": True, "responseCode": "00", "arpc": "0A0B"}).arpc.hex()
    '0a0b'
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("approved"), bool):
        raise HostError("the host's answer has no boolean 'approved'")
    try:
        arpc = bytes.fromhex(str(doc.get("arpc") or ""))
    except ValueError as exc:
        raise HostError("the host's 'arpc' is not hex") from exc
    return HostAnswer(
        approved=doc["approved"],
        response_code=str(doc.get("responseCode") or ""),
        auth_code=str(doc.get("authCode") or ""),
        arpc=arpc,
        transaction_id=str(doc.get("transactionId") or ""),
        network=str(doc.get("network") or ""),
        reason=str(doc.get("reason") or ""),
    )


def _problem(response: httpx.Response) -> HostRejected:
    """An RFC 9457 problem document (or any non-200 answer) as :class:`HostRejected`."""
    doc: Any = None
    try:
        doc = response.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        doc = {}
    title = str(doc.get("title") or response.reason_phrase or "error")
    detail = str(doc.get("detail") or "")
    problem_type = str(doc.get("type") or "about:blank")
    message = f"the host refused the request ({response.status_code} {title})"
    if detail:
        message += f": {detail}"
    return HostRejected(message, type=problem_type, status=response.status_code, detail=detail)
