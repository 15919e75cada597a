"""Cross-site and media-type checks in front of every state-changing request.

Why a check of its own, before any view runs: a session cookie is ambient authority, and an HTML
form on any site can POST ``application/x-www-form-urlencoded`` to this service with the victim's
cookies — or, for ``/api/auth/login`` and ``/api/auth/register``, without any cookie at all,
signing the victim's browser into an attacker's account (login CSRF). The CSRF token of
:func:`tsp_backend.api.http.authenticate` protects signed-in requests only; this module closes
the rest at the door, for every unsafe method (POST, PUT, PATCH, DELETE):

1. **Cross-site requests are refused** (403 ``cross-site-request``), under ``/api/`` and
   ``/wallet/`` alike: ``Sec-Fetch-Site: cross-site`` or ``same-site`` (W3C Fetch Metadata
   Request Headers §2.1; a sibling sub-domain is another party), or an ``Origin`` header
   (RFC 6454 §7, sent by browsers on every unsafe request) whose host is not the request's own
   ``Host`` — ``Origin: null`` included. Only the host and port are compared, so the check holds
   behind a TLS-terminating proxy that forwards ``Host``.
2. **The JSON API takes JSON only** (415 ``unsupported-media-type``): under ``/api/`` an unsafe
   request with a ``Content-Type`` other than ``application/json``, or with a body and no
   ``Content-Type``, is refused. A browser can send a form or ``text/plain`` cross-site without
   asking; it cannot send ``application/json`` without a CORS preflight, which this service
   never grants. Requests with neither a body nor a ``Content-Type`` (``DELETE``,
   ``POST …/logout``) pass.

Terminals and API clients (``Authorization: Bearer hk_…`` / ``hs_…``, httpx, the command line)
send neither ``Origin`` nor ``Sec-Fetch-Site``, so rule 1 never touches them; it is not skipped
for them either, because a bearer request that does carry a foreign ``Origin`` comes from a
script in someone else's page, which no terminal is. A bearer token is not ambient (a browser
never attaches it by itself), so there is nothing further to check for CSRF.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, request

from tsp_backend.errors import CrossSiteRequest, UnsupportedMediaType

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""Methods that change state (RFC 9110 §9.2.1: everything not safe)."""

GUARDED_PREFIXES = ("/api/", "/wallet/")
"""Paths whose unsafe requests must come from this service's own pages or from non-browsers."""

JSON_ONLY_PREFIX = "/api/"
"""Paths whose unsafe requests take ``application/json`` bodies only."""

REFUSED_FETCH_SITES = frozenset({"cross-site", "same-site"})
"""``Sec-Fetch-Site`` values of a request started by another site's page."""


def origin_host(origin: str) -> str | None:
    """The ``host[:port]`` of an ``Origin`` header, lower-cased; ``None`` for ``null`` or garbage.

    >>> origin_host("https://Wallet.Example:8443")
    'wallet.example:8443'
    >>> origin_host("null") is None, origin_host("file://") is None
    (True, True)
    """
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return parts.netloc.lower()


def check_cross_site() -> None:
    """Raise :class:`CrossSiteRequest` if another site's page sent this request (module docstring)."""
    site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
    if site in REFUSED_FETCH_SITES:
        raise CrossSiteRequest(
            f"{request.method} {request.path} was sent by another site (Sec-Fetch-Site: {site})"
        )
    origin = request.headers.get("Origin")
    if origin is not None and origin_host(origin) != request.host.lower():
        raise CrossSiteRequest(f"{request.method} {request.path} was sent from another origin")


def check_json_body() -> None:
    """Raise :class:`UnsupportedMediaType` unless the body is JSON or absent (module docstring)."""
    content_type = request.headers.get("Content-Type")
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    has_body = bool(request.content_length) or chunked
    if content_type is None and not has_body:
        return
    if request.mimetype != "application/json":
        raise UnsupportedMediaType(
            f"{request.method} {request.path} takes an application/json body",
            accepted=["application/json"],
        )


def guard() -> None:
    """The ``before_request`` hook: both checks for unsafe requests on guarded paths."""
    if request.method not in UNSAFE_METHODS or not request.path.startswith(GUARDED_PREFIXES):
        return
    check_cross_site()
    if request.path.startswith(JSON_ONLY_PREFIX):
        check_json_body()


def init_app(app: Flask) -> None:
    """Run :func:`guard` before every request of ``app``."""
    app.before_request(guard)
