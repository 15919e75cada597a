"""The wallet's web pages: ``/wallet/…``, server-rendered, over the service's Flask-free services.

:func:`init_app` registers the ``web`` blueprint and the browser-side defences: the page
headers of :mod:`tsp_backend.web.security`, Flask's signed ``hcekit_web`` cookie (httpOnly,
SameSite=Lax, Secure when configured) for flash messages and the pre-login CSRF token, and
friendly HTML pages for 404/405 under ``/wallet`` (everything else keeps its problem documents).

Pages
-----
=========================================  ====================================================
``/wallet/register``, ``/wallet/login``    account and session (POST ``/wallet/logout``)
``/wallet/cards``                          the card list; ``/wallet/cards/add`` the card form
``/wallet/cards/<id>``                     one card: suspend, reactivate, remove, make default
``/wallet/cards/<id>/verify``              the one-time code of a card that needs one
``/wallet/devices``                        devices: this browser, phones, mark one as lost
``/wallet/transactions``                   the transaction history, newest first
``/wallet/outbox``                         the simulated SMS/e-mail outbox (development mode)
``/wallet/setup``                          this browser becomes a device (a passkey)
``/wallet/pay``                            the payment sheet; ``/shop/`` a demo merchant
``/wallet/events``                         the user's new transactions (Server-Sent Events)
``/wallet/sw.js``, ``/wallet/manifest…``   the service worker and the web app manifest
=========================================  ====================================================
"""

from __future__ import annotations

from flask import Flask, Response, redirect, request
from werkzeug.exceptions import HTTPException

from tsp_backend.web import account_pages as _account_pages  # noqa: F401  (registers their routes)
from tsp_backend.web import card_pages as _card_pages  # noqa: F401
from tsp_backend.web import history_pages as _history_pages  # noqa: F401
from tsp_backend.web import live as _live  # noqa: F401  (registers /wallet/events, sw.js)
from tsp_backend.web.pages import PLAIN_ERRORS, bp, error_page
from tsp_backend.web.pay import api, shop
from tsp_backend.web.security import apply_page_headers

__all__ = ["bp", "init_app"]


def init_app(app: Flask) -> None:
    """Register the wallet pages and their cookie, header and error-page settings on ``app``."""
    cfg = app.extensions["hcekit"].config
    app.config.update(
        SESSION_COOKIE_NAME="hcekit_web",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cfg.secure_cookies,
    )
    app.register_blueprint(bp)
    app.register_blueprint(api)
    app.register_blueprint(shop)
    app.after_request(apply_page_headers)

    if not any(rule.rule == "/" for rule in app.url_map.iter_rules()):
        app.add_url_rule("/", "wallet_home", lambda: redirect("/wallet/", 303))

    def page_or_problem(error: HTTPException) -> Response:
        if request.path in ("/wallet", "/shop") or request.path.startswith(("/wallet/", "/shop/")):
            status = error.code or 500
            return error_page(status, *PLAIN_ERRORS.get(status, (error.name or "Error", "")))
        handler = app.error_handler_spec[None][None].get(HTTPException)
        if handler is None:
            return Response(error.description or "", status=error.code or 500)
        return app.make_response(handler(error))  # type: ignore[arg-type]

    app.register_error_handler(404, page_or_problem)
    app.register_error_handler(405, page_or_problem)
