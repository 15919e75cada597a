"""The browser-facing defences of the wallet pages: headers, the pre-login CSRF token, redirects.

Signed-in forms carry the session's own CSRF token (the one :mod:`tsp_backend.api.http`
checks for every cookie-authenticated unsafe request). Before there is a session — the login
and registration forms — a random token is kept in Flask's signed ``hcekit_web`` cookie and
echoed in a hidden field (the synchroniser-token pattern of the OWASP CSRF Prevention Cheat
Sheet), so a third-party page can neither log a victim in to an attacker's account nor create
accounts in their name.

Every HTML response carries a Content-Security-Policy that allows scripts and styles only from
the service's own origin (no inline script at all), refuses framing (``frame-ancestors 'none'``
and ``X-Frame-Options: DENY``, RFC 7034) and ``Cache-Control: no-store`` (RFC 9111 §5.2.2.5)
so a card list never lands in a shared or back-button cache.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from flask import Response, session

ANON_CSRF_KEY = "csrf"
"""The key of the pre-login CSRF token in Flask's signed cookie."""

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
"""The pages' Content-Security-Policy (CSP Level 3): own-origin scripts and styles, no framing."""

PAGE_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}
"""Headers set on every HTML page."""


def apply_page_headers(response: Response) -> Response:
    """Set :data:`PAGE_HEADERS` on an HTML response (others get only the framing refusal)."""
    if response.mimetype == "text/html":
        for name, value in PAGE_HEADERS.items():
            response.headers[name] = value
    else:
        response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def anonymous_csrf_token() -> str:
    """The pre-login CSRF token, created on first use and kept in the signed cookie."""
    token = session.get(ANON_CSRF_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[ANON_CSRF_KEY] = token
    return token


def anonymous_csrf_ok(sent: str | None) -> bool:
    """Whether a form's pre-login token matches the cookie's (constant time)."""
    expected = session.get(ANON_CSRF_KEY)
    if not sent or not isinstance(expected, str) or not expected:
        return False
    return hmac.compare_digest(sent.encode(), expected.encode())


def safe_next(target: str | None, default: str) -> str:
    """A post-login destination that stays on this site's wallet pages (no open redirect).

    >>> safe_next("/wallet/cards/3", "/wallet/cards")
    '/wallet/cards/3'
    >>> safe_next("https://evil.example/wallet", "/wallet/cards")
    '/wallet/cards'
    >>> safe_next("//evil.example/wallet", "/wallet/cards")
    '/wallet/cards'
    >>> safe_next("/wallet/../api/cards", "/wallet/cards")
    '/wallet/cards'
    """
    if not target or "\\" in target or ".." in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/wallet/"):
        return default
    return target
