"""What the wallet's pages share: the ``web`` blueprint, its template filters, rendering, the
signed-in user of a page and the error pages. The pages themselves are grouped by what they are
about: :mod:`~tsp_backend.web.account_pages` (register, log in, log out),
:mod:`~tsp_backend.web.card_pages` (cards, the card form, one-time codes) and
:mod:`~tsp_backend.web.history_pages` (transactions, devices).

The pages are server-rendered HTML forms over the same services as the JSON API.

Every page that can work without JavaScript does (plain forms, POST-redirect-GET, HTTP 303 after
each change). The modules in ``static/`` add what needs a browser: the passkey and the payment
sheet (:mod:`tsp_backend.web.pay`), the card form's check digit and expiry checks, live updates
(:mod:`tsp_backend.web.live`), offline use, confirmations and toasts. Signed-in pages use the
API's session cookie, and every form carries the session's CSRF token, checked by
:func:`tsp_backend.api.http.authenticate` exactly as for a cookie-authenticated API call.
Messages are the pages' own plain words (never the service's internals or response codes), and
nothing here logs a request; the card form's rules are in :mod:`~tsp_backend.web.card_pages`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import HTTPException

from apdu.currency import format_minor
from tsp_backend.api.http import RETRY_AFTER_S, SESSION_COOKIE, audit_refusal, current_user, db, services
from tsp_backend.errors import CSRFFailed, TSPError, Unauthorized
from tsp_backend.models import Device, User
from tsp_backend.outages import end_failed_request, roll_back_request, unavailable
from tsp_backend.web.security import anonymous_csrf_token

bp = Blueprint(
    "web",
    __name__,
    url_prefix="/wallet",
    template_folder="templates",
    static_folder="static",
)

NETWORK_NAMES = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "discover": "Discover",
}
"""Display names of the networks."""


def _csrf_token() -> str:
    auth = g.get("auth")
    if auth is not None:
        return str(auth.csrf)
    page_csrf = g.get("page_csrf")
    return str(page_csrf) if page_csrf else anonymous_csrf_token()


@bp.app_template_filter("network_name")
def network_name(network: str) -> str:
    """``visa`` → ``Visa``."""
    return NETWORK_NAMES.get(network, network.title())


@bp.app_template_filter("money")
def money(amount: int, currency: str) -> str:
    """Minor units as a decimal amount with its ISO 4217 code (:func:`apdu.currency.format_minor`).

    >>> money(1250, "EUR"), money(-5, "USD"), money(500, "JPY"), money(1234, "BHD")
    ('12.50 EUR', '-0.05 USD', '500 JPY', '1.234 BHD')
    """
    return format_minor(amount, currency)


STATE_NAMES = {
    "ACTIVE": "Active",
    "SUSPENDED": "Suspended",
    "INACTIVE": "Waiting for code",
    "DEACTIVATED": "Removed",
}
"""Card states in the pages' words."""

TXN_STATES = {
    "approved": "Approved",
    "declined": "Declined",
    "in_doubt": "Checking with your bank",
    "reversed": "Cancelled",
    "pending": "Pending",
}
"""Transaction states in the pages' words."""

CHANNEL_NAMES = {"contactless": "Contactless", "in_app": "In app", "ecommerce": "Online", "web": "Web"}
"""Transaction channels in the pages' words."""

THIS_DEVICE = "this_device"
"""The key, in the signed ``hcekit_web`` cookie, of the browser device this browser is."""


@bp.app_template_filter("state_name")
def state_name(status: str) -> str:
    """``SUSPENDED`` → ``Suspended``; ``INACTIVE`` → ``Waiting for code``."""
    return STATE_NAMES.get(status, status.title())


@bp.app_template_filter("txn_state")
def txn_state(status: str) -> str:
    """``in_doubt`` → ``Checking with your bank``."""
    return TXN_STATES.get(status, status.replace("_", " ").capitalize())


@bp.app_template_filter("channel_name")
def channel_name(channel: str) -> str:
    """``contactless`` → ``Contactless``."""
    return CHANNEL_NAMES.get(channel, channel.replace("_", " ").capitalize())


@bp.app_template_filter("reason_name")
def reason_name(reason: str) -> str:
    """``CUSTOMER_REQUEST`` → ``Customer request``."""
    return reason.replace("_", " ").capitalize()


@bp.app_template_filter("when")
def when(moment: dt.datetime) -> str:
    """A time with its zone, in UTC.

    >>> when(dt.datetime(2026, 12, 1, 9, 5, tzinfo=dt.timezone.utc))
    '1 Dec 2026, 09:05 UTC'
    """
    utc = moment.astimezone(dt.timezone.utc) if moment.tzinfo else moment
    return f"{utc.day} {utc:%b %Y, %H:%M} UTC"


def page_user() -> User | None:
    """The signed-in user of a page, for its header (any page, even an error's).

    Read-only: it never sets ``g.user``, so a later :func:`current_user` still runs the CSRF
    check of an unsafe request.
    """
    if "user" in g:
        found: User = g.user
        return found
    token = request.cookies.get(SESSION_COOKIE)
    data = services().sessions.get(token) if token else None
    if data is None:
        return None
    user = db().get(User, data.user_id)
    if user is not None:
        g.page_csrf = data.csrf
    return user


@bp.app_context_processor
def _page_context() -> dict[str, Any]:
    cfg = services().config
    try:
        user = page_user()
    except TSPError:
        user = None
    except Exception as exc:   # the store or the database is gone: the page is drawn signed out
        if unavailable(exc) is None:
            raise
        user = None
    return {
        "csrf_token": _csrf_token,
        "anon_csrf_token": anonymous_csrf_token,
        "dev_mode": cfg.dev_mode,
        "signed_in": user,
    }


def render(template: str, http_status: int = 200, **context: Any) -> Response:
    page = render_template(f"wallet/{template}", **context)
    return Response(page, status=http_status, mimetype="text/html")


def see_other(endpoint: str, **values: Any) -> Response:
    return redirect(url_for(endpoint, **values), 303)  # type: ignore[return-value]


def signed_in_user() -> User | None:
    """The signed-in user for a page that also serves visitors (no CSRF check: GET only)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or services().sessions.get(token) is None:
        return None
    try:
        return current_user()
    except Unauthorized:
        return None


# --- errors ------------------------------------------------------------------------------------


@bp.errorhandler(TSPError)
def _service_error(error: TSPError) -> Response:
    roll_back_request()
    if isinstance(error, Unauthorized):
        flash("Please log in to continue.", "info")
        next_page = request.path if request.method == "GET" else None
        return see_other("web.login_form", next=next_page)
    if error.status in (403, 404):
        audit_refusal(error.status, error.slug, refused="page")
    if isinstance(error, CSRFFailed):
        return error_page(403, "This form has expired", "Reload the page and send the form again.")
    return error_page(error.status, *PLAIN_ERRORS.get(error.status, PLAIN_ERRORS[0]))


PLAIN_ERRORS = {
    404: ("Not found", "There's nothing here: the card or page may have been removed, or the link is wrong."),
    403: ("Not allowed", "This isn't available to your account."),
    409: ("Not possible right now", "That change isn't possible at the moment. Go back and try again."),
    422: ("Not possible", "That request couldn't be completed. Go back and check what you entered."),
    0: ("Something went wrong", "Please try again in a moment."),
}
"""The pages' words for an error (the service's own detail never reaches a page)."""


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    if status == 429:
        response = error_page(429, "Too many attempts", "Wait a minute, then try again.")
    else:
        response = error_page(status, *PLAIN_ERRORS.get(status, (error.name or "Error", "")))
    for name, value in error.get_headers():
        if name.lower() == "retry-after":
            response.headers[name] = value
    return response


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    mapped = end_failed_request(error)
    if mapped is not None:
        current_app.logger.warning("%s unavailable on %s %s: %s", mapped.extensions["dependency"],
                                   request.method, request.path, type(error).__name__)
        response = error_page(
            503, "Service unavailable",
            "The wallet can't reach its data just now. Nothing was changed; try again in a moment.",
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response
    current_app.logger.error("unhandled %s on %s %s", type(error).__name__, request.method, request.path)
    return error_page(500, "Something went wrong", "The error has been logged. Please try again later.")


def error_page(status: int, title: str, detail: str) -> Response:
    """A friendly HTML error page (the JSON API answers problem documents instead)."""
    return render("error.html", status, status=status, title=title, detail=detail)


def place(device: Device) -> str:
    """Where a card lives, in words: this browser, another browser, or a phone."""
    if device.id == session.get(THIS_DEVICE):
        return "On this browser"
    kind = "browser" if device.kind == "browser" else "phone"
    return f"On {kind} “{device.name}”"


def fresh_web_session() -> None:
    """Start the signed cookie afresh, remembering only which device this browser is."""
    this = session.get(THIS_DEVICE)
    session.clear()
    if isinstance(this, int):
        session[THIS_DEVICE] = this


def sentence(text: str) -> str:
    """``the code is wrong`` → ``The code is wrong.``

    >>> sentence("the code is wrong")
    'The code is wrong.'
    """
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
