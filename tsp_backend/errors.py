"""The service's errors and their RFC 9457 ``application/problem+json`` form.

Every error the service can answer is a subclass of :class:`TSPError` carrying an HTTP status, a
stable problem ``type`` URI (``https://hcekit.dev/problems/<slug>``), a short ``title`` and a
precise ``detail``. Services raise them (they know nothing of Flask); the application turns
any of them into a problem document. Messages never contain a PAN, a CVV or a key.

::

    TSPError
    ├── BadRequest (400)
    │   ├── ValidationFailed            request-validation
    │   ├── MalformedBody               malformed-body
    │   ├── IdempotencyKeyMissing       idempotency-key-missing
    │   └── CSRFFailed (403)            csrf-failed
    ├── Unauthorized (401)              unauthorized
    │   └── InvalidCredentials          invalid-credentials
    ├── Forbidden (403)                 forbidden
    │   └── CrossSiteRequest            cross-site-request
    ├── NotFound (404)                  not-found
    ├── Conflict (409)                  conflict
    │   ├── IdempotencyInFlight         idempotency-request-in-flight
    │   ├── InvalidTransition           invalid-state-transition
    │   ├── AlreadyExists               already-exists
    │   └── DeviceLost                  device-lost
    ├── Unprocessable (422)             unprocessable
    │   ├── IdempotencyKeyReused        idempotency-key-reused
    │   ├── CardInvalid                 card-invalid
    │   ├── ProvisioningDeclined        provisioning-declined
    │   ├── DeviceKeyInvalid            device-key-invalid
    │   ├── VerificationFailed          verification-code-invalid
    │   └── VerificationExhausted       verification-attempts-exhausted
    ├── UnsupportedMediaType (415)      unsupported-media-type
    ├── BodyTooLarge (413)              body-too-large
    ├── TooManyRequests (429)           rate-limited
    │   ├── KeyLimitReached             key-replenishment-limit
    │   └── HashingBusy                 password-hashing-busy
    └── ServiceUnavailable (503)        service-unavailable
        ├── DependencyUnavailable       dependency-unavailable
        └── NetworkUnavailable          network-unavailable

A ``400`` means the request does not match /openapi.json; a request the document allows is never
answered ``400`` but, when refused for what it means, ``401``/``403``/``404``/``409``/``422``/``429``.
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://hcekit.dev/problems/"
"""The prefix of every problem ``type`` URI."""

PROBLEM_MEDIA_TYPE = "application/problem+json"
"""RFC 9457 §3."""


class TSPError(Exception):
    """The root of the service's errors; renders as an RFC 9457 problem."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions

    @property
    def type_uri(self) -> str:
        """The stable problem type URI."""
        return PROBLEM_BASE + self.slug

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """The problem document (RFC 9457 §3.1 members plus extension members).

        >>> NotFound("no card 7").to_problem()["type"]
        'https://hcekit.dev/problems/not-found'
        """
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body


class BadRequest(TSPError):
    """The request is malformed."""

    status, slug, title = 400, "bad-request", "Bad request"


class ValidationFailed(BadRequest):
    """The request body or parameters do not match the schema."""

    slug, title = "request-validation", "Request validation failed"


class MalformedBody(BadRequest):
    """The body is not one JSON object within the bounds (UTF-8, RFC 8259, depth, numbers)."""

    slug, title = "malformed-body", "Malformed request body"


class IdempotencyKeyMissing(BadRequest):
    """The route requires an ``Idempotency-Key`` header (draft-ietf-httpapi-idempotency-key-header §2)."""

    slug, title = "idempotency-key-missing", "Idempotency-Key required"


class CSRFFailed(BadRequest):
    """A cookie-authenticated unsafe request lacks a valid CSRF token."""

    status, slug, title = 403, "csrf-failed", "CSRF token missing or invalid"


class Unauthorized(TSPError):
    """No valid session or API key."""

    status, slug, title = 401, "unauthorized", "Authentication required"


class InvalidCredentials(Unauthorized):
    """Login failed (the detail never says which of email or password was wrong)."""

    slug, title = "invalid-credentials", "Invalid credentials"


class Forbidden(TSPError):
    """Authenticated but not allowed."""

    status, slug, title = 403, "forbidden", "Forbidden"


class CrossSiteRequest(Forbidden):
    """A state-changing request sent by a page of another site (Fetch Metadata, RFC 6454 Origin)."""

    slug, title = "cross-site-request", "Cross-site request refused"


class NotFound(TSPError):
    """No such resource, or not the caller's (the two are indistinguishable on purpose)."""

    status, slug, title = 404, "not-found", "Not found"


class Conflict(TSPError):
    """The request conflicts with the resource's state."""

    status, slug, title = 409, "conflict", "Conflict"


class IdempotencyInFlight(Conflict):
    """A request with the same key is still being processed (IETF idempotency draft §2.6)."""

    slug, title = "idempotency-request-in-flight", "A request with this Idempotency-Key is in progress"


class InvalidTransition(Conflict):
    """The token lifecycle does not allow this change from the current state."""

    slug, title = "invalid-state-transition", "Invalid token state transition"


class AlreadyExists(Conflict):
    """The resource already exists."""

    slug, title = "already-exists", "Already exists"


class DeviceLost(Conflict):
    """The device is marked lost; nothing may be provisioned to or resumed on it."""

    slug, title = "device-lost", "Device is marked lost"


class Unprocessable(TSPError):
    """Well-formed but semantically refused."""

    status, slug, title = 422, "unprocessable", "Unprocessable request"


class IdempotencyKeyReused(Unprocessable):
    """The key was used before with a different request body (IETF idempotency draft §2.6)."""

    slug, title = "idempotency-key-reused", "Idempotency-Key reused with a different request"


class CardInvalid(Unprocessable):
    """The card number, expiry or CVV is invalid."""

    slug, title = "card-invalid", "Card details invalid"


class ProvisioningDeclined(Unprocessable):
    """The risk decision or the network declined the card."""

    slug, title = "provisioning-declined", "Provisioning declined"


class DeviceKeyInvalid(Unprocessable):
    """The device's public key is not a P-256 point (PEM, or base64 of the uncompressed point)."""

    slug, title = "device-key-invalid", "Device public key invalid"


class VerificationFailed(Unprocessable):
    """The one-time code is wrong or expired."""

    slug, title = "verification-code-invalid", "Verification code invalid"


class VerificationExhausted(Unprocessable):
    """Too many wrong one-time codes; the token was deactivated."""

    slug, title = "verification-attempts-exhausted", "Verification attempts exhausted"


class UnsupportedMediaType(TSPError):
    """A state-changing API request whose body is not ``application/json`` (RFC 9110 §15.5.16)."""

    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class BodyTooLarge(TSPError):
    """The body is larger than the service reads (RFC 9110 §15.5.14)."""

    status, slug, title = 413, "body-too-large", "Request body too large"


class TooManyRequests(TSPError):
    """A rate limit was reached."""

    status, slug, title = 429, "rate-limited", "Too many requests"


class KeyLimitReached(TooManyRequests):
    """Limited-use key replenishment is bounded per token and day."""

    slug, title = "key-replenishment-limit", "Key replenishment limit reached"


class HashingBusy(TooManyRequests):
    """Every password-hashing slot stayed busy for the whole wait; retry shortly (``Retry-After``)."""

    slug, title = "password-hashing-busy", "Password hashing busy"


class ServiceUnavailable(TSPError):
    """A dependency is unavailable."""

    status, slug, title = 503, "service-unavailable", "Service unavailable"


class DependencyUnavailable(ServiceUnavailable):
    """The database or the shared store does not answer; nothing was done, retry after a while.

    Carries ``dependency`` (``database`` or ``store``); the answer has ``Retry-After``.
    """

    slug, title = "dependency-unavailable", "A dependency of the service is unavailable"


class NetworkUnavailable(ServiceUnavailable):
    """The card network's token service failed or its circuit breaker is open."""

    slug, title = "network-unavailable", "Card network unavailable"


def http_problem(
    status: int, detail: str, *, slug: str | None = None, title: str | None = None
) -> dict[str, Any]:
    """A problem document for an HTTP error raised outside the services (404 route, 405 method …).

    >>> http_problem(405, "POST is not allowed here")["type"]
    'https://hcekit.dev/problems/http-405'
    """
    return {
        "type": PROBLEM_BASE + (slug or f"http-{status}"),
        "title": title or f"HTTP {status}",
        "status": status,
        "detail": detail,
    }
