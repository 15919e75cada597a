"""The wallet's pages: server-rendered HTML forms over the same services as the JSON API.

Every page that can work without JavaScript does (plain forms, POST-redirect-GET, HTTP 303 after
each change). The modules in ``static/`` add what needs a browser: the passkey and the payment
sheet (:mod:`tsp_backend.web.pay`), the card form's check digit and expiry checks, live updates
(:mod:`tsp_backend.web.live`), offline use, confirmations and toasts. Signed-in pages use the
API's session cookie, and every form carries the session's CSRF token, checked by
:func:`tsp_backend.api.common.authenticate` exactly as for a cookie-authenticated API call.

The card form sends PAN, expiry and CVV straight to the provisioning service under an
``Idempotency-Key`` generated when the form is drawn (a hidden field), so a double submit makes
one card. A card added here is activated without a profile: a phone fetches it with its own
keys when it syncs; a browser device never receives one (it pays through the sheet).
The numbers are never echoed: a refused form comes back with the device and the expiry only,
messages are the pages' own plain words (never the service's internals or response codes),
cards are named by network and the card's own last four digits, and nothing here logs a request.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
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
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from apdu.currency import format_minor
from tsp_backend.api.common import (
    SESSION_COOKIE,
    audit_card_change,
    audit_refusal,
    clear_session_cookie,
    current_user,
    db,
    log_in,
    mark_device_lost,
    origin,
    provision_card,
    services,
    set_session_cookie,
    settle_refused,
)
from tsp_backend.errors import (
    CSRFFailed,
    DeviceKeyInvalid,
    IdempotencyInFlight,
    InvalidCredentials,
    NotFound,
    TSPError,
    Unauthorized,
    ValidationFailed,
    VerificationExhausted,
)
from tsp_backend.models import Card, Device, Transaction, User
from tsp_backend.services import audit
from tsp_backend.services.devices import list_devices, owned_device, register_device
from tsp_backend.services.idempotency import Claim, Replay
from tsp_backend.services.lifecycle import CUSTOMER_REASONS, TokenEvent
from tsp_backend.services.provisioning import card_json
from tsp_backend.web.security import anonymous_csrf_ok, anonymous_csrf_token, safe_next

bp = Blueprint(
    "web",
    __name__,
    url_prefix="/wallet",
    template_folder="templates",
    static_folder="static",
)

TRANSACTIONS_PER_PAGE = 50
"""Rows on one page of the transaction history (the page kept for offline use shows the last 50)."""

IN_FLIGHT_WAIT_S = 10.0
"""How long a repeated card form waits for the first submission to finish."""

NETWORK_NAMES = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "discover": "Discover",
}
"""Display names of the networks."""

_ADD_CARD_ROUTE = "POST /wallet/cards/add"

CARDS_PER_PAGE = 24
"""Cards on one page of the card list (``?after=<last id>`` shows the next)."""


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
    return {
        "csrf_token": _csrf_token,
        "anon_csrf_token": anonymous_csrf_token,
        "dev_mode": cfg.dev_mode,
        "signed_in": user,
    }


def _render(template: str, http_status: int = 200, **context: Any) -> Response:
    page = render_template(f"wallet/{template}", **context)
    return Response(page, status=http_status, mimetype="text/html")


def _see_other(endpoint: str, **values: Any) -> Response:
    return redirect(url_for(endpoint, **values), 303)  # type: ignore[return-value]


def _signed_in() -> User | None:
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
    session_db = g.get("db")
    if session_db is not None:
        session_db.rollback()
    if isinstance(error, Unauthorized):
        flash("Please log in to continue.", "info")
        next_page = request.path if request.method == "GET" else None
        return _see_other("web.login_form", next=next_page)
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
    session_db = g.get("db")
    if session_db is not None:
        session_db.rollback()
    current_app.logger.error("unhandled %s on %s %s", type(error).__name__, request.method, request.path)
    return error_page(500, "Something went wrong", "The error has been logged. Please try again later.")


def error_page(status: int, title: str, detail: str) -> Response:
    """A friendly HTML error page (the JSON API answers problem documents instead)."""
    return _render("error.html", status, status=status, title=title, detail=detail)


# --- visitors: register, log in, log out -------------------------------------------------------


@bp.get("/")
def index() -> Response:
    """The card list for a signed-in user, the login page otherwise."""
    if _signed_in() is None:
        return _see_other("web.login_form")
    return _see_other("web.cards")


@bp.get("/register")
def register_form() -> Response:
    """The registration form (a visitor's page: its header is the visitor's)."""
    return _render("register.html", signed_in=None)


@bp.post("/register")
def register() -> Response:
    """Create an account and sign the new user in; next, this browser becomes a device."""
    if not anonymous_csrf_ok(request.form.get("csrf_token")):
        raise CSRFFailed("the registration form lacks a valid CSRF token")
    email = request.form.get("email", "")[:254]
    password = request.form.get("password", "")[:1024]
    if password != request.form.get("password2", ""):
        return _render("register.html", 422, error="The two passwords differ.", email=email, signed_in=None)
    svc = services()
    session_db = db()
    try:
        user = svc.users.register(
            session_db, email, password, is_admin=email.strip().lower() in svc.config.admin_emails
        )
    except TSPError as error:
        session_db.rollback()
        return _render(
            "register.html", error.status, error=_sentence(error.detail), email=email, signed_in=None
        )
    audit.record(
        session_db,
        actor=f"user:{user.id}",
        action="user.register",
        target=f"user:{user.id}",
        outcome="success",
        origin=origin(),
    )
    session_db.commit()
    _, token, _ = log_in(email, password, request.cookies.get(SESSION_COOKIE), via="web")
    _fresh_web_session()
    flash("Your account is ready. Now make this browser a device for your cards.", "success")
    response = _see_other("web.setup")
    set_session_cookie(response, token)
    return response


@bp.get("/login")
def login_form() -> Response:
    """The login form (a signed-in user goes straight to the cards)."""
    if _signed_in() is not None:
        return _see_other("web.cards")
    return _render("login.html", next=request.args.get("next", ""))


@bp.post("/login")
def login() -> Response:
    """Check the credentials, open a fresh session (revoking any old one) and set its cookie."""
    if not anonymous_csrf_ok(request.form.get("csrf_token")):
        raise CSRFFailed("the login form lacks a valid CSRF token")
    email = request.form.get("email", "")[:254]
    next_page = request.form.get("next", "")
    try:
        _, token, _ = log_in(
            email, request.form.get("password", "")[:1024], request.cookies.get(SESSION_COOKIE), via="web"
        )
    except InvalidCredentials:
        return _render("login.html", 401, error="Email or password is wrong.", email=email, next=next_page)
    _fresh_web_session()
    response = redirect(safe_next(next_page, url_for("web.cards")), 303)
    set_session_cookie(response, token)
    return response  # type: ignore[return-value]


@bp.post("/logout")
def logout() -> Response:
    """Revoke the session, clear its cookie and go back to the login page."""
    user = current_user()
    services().sessions.revoke(g.auth_token)
    audit.record(
        db(), actor=f"user:{user.id}", action="user.logout", outcome="success", origin=origin(), via="web"
    )
    db().commit()
    _fresh_web_session()
    flash("You are logged out.", "info")
    response = _see_other("web.login_form")
    clear_session_cookie(response)
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


def _fresh_web_session() -> None:
    """Start the signed cookie afresh, remembering only which device this browser is."""
    this = session.get(THIS_DEVICE)
    session.clear()
    if isinstance(this, int):
        session[THIS_DEVICE] = this


# --- cards -------------------------------------------------------------------------------------


def place(device: Device) -> str:
    """Where a card lives, in words: this browser, another browser, or a phone."""
    if device.id == session.get(THIS_DEVICE):
        return "On this browser"
    kind = "browser" if device.kind == "browser" else "phone"
    return f"On {kind} “{device.name}”"


def _places(session_db: Session, user_id: int) -> dict[int, str]:
    return {d.id: place(d) for d in list_devices(session_db, user_id)}


RECENT_ON_CARDS = 5
"""Transactions shown under the cards."""


@bp.get("/cards")
def cards() -> Response:
    """Every card of every device in one stack, each saying where it lives; the latest transactions."""
    user = current_user()
    after = request.args.get("after", type=int)
    items, more = services().cards.list_cards(
        db(), user.id, after=after if after is not None and 0 <= after < 2**31 else None, limit=CARDS_PER_PAGE
    )
    recent, _ = _transaction_items(user, limit=RECENT_ON_CARDS)
    return _render(
        "cards.html",
        cards=items,
        places=_places(db(), user.id),
        items=recent,
        after=_newest(recent),
        more=more,
    )


FIELD_MESSAGES = {
    "pan": "This card number isn't valid. Check the digits.",
    "expiry": "Check the expiry date: it must be MM/YY and not in the past.",
    "cvv": "Check the security code on your card.",
    "deviceId": "Choose where to add the card.",
}
"""What to say about a refused field of the card form (never the service's own words)."""

REFUSALS = {
    "provisioning-declined": "Your bank didn't approve adding this card. Try another card.",
    "network-unavailable": "The card network isn't answering. Please try again in a minute.",
    "already-exists": "This card is already in your wallet on that device.",
    "device-lost": "That device was reported lost. Choose another device.",
    "rate-limited": "Too many attempts. Wait a minute, then try again.",
}
"""What to say when the service refuses a card (by problem type)."""


def _add_form(
    status: int = 200,
    error: str | None = None,
    fields: dict[str, str] | None = None,
    *,
    expiry: str = "",
    device_id: int | None = None,
) -> Response:
    """The card form; after a refusal it keeps the device and expiry (never the number or CVV)."""
    user = current_user()
    devices = [d for d in list_devices(db(), user.id) if d.status == "ACTIVE"]
    chosen = device_id or request.args.get("device", type=int) or session.get(THIS_DEVICE)
    return _render(
        "add_card.html",
        status,
        devices=devices,
        chosen_device=chosen,
        idempotency_key=str(uuid.uuid4()),
        error=error,
        field_errors=fields or {},
        expiry=expiry,
    )


@bp.get("/cards/add")
def add_card_form() -> Response:
    """The card form, with a fresh Idempotency-Key in a hidden field."""
    return _add_form()


def claim_or_wait(scope: str, key: str, fingerprint: str, route: str = _ADD_CARD_ROUTE) -> Claim | Replay:
    """Claim the key; while a first submission is still running, wait for its outcome."""
    idempotency = services().idempotency
    deadline = time.monotonic() + IN_FLIGHT_WAIT_S
    while True:
        try:
            return idempotency.begin(scope, route, key, fingerprint)
        except IdempotencyInFlight:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _after_provisioning(
    status: int, payload: dict[str, Any], *, expiry: str = "", device_id: int | None = None
) -> Response:
    if status >= 400:
        field = str(payload.get("field") or "")
        slug = str(payload.get("type", "")).rsplit("/", 1)[-1]
        if field in FIELD_MESSAGES:
            message = "Please check the highlighted field."
            fields = {field: FIELD_MESSAGES[field]}
        else:
            message = REFUSALS.get(slug, "This card couldn't be added. Check the details and try again.")
            fields = None
        return _add_form(status, error=message, fields=fields, expiry=expiry, device_id=device_id)
    card_id = int(payload["cardId"])
    if status == 202:
        flash("Your bank asks for a one-time code before this card can be used.", "info")
        return _see_other("web.verify_form", card_id=card_id)
    flash(f"{network_name(str(payload['network']))} card ending {payload['last4']} added.", "success")
    return _see_other("web.card_detail", card_id=card_id)


@bp.post("/cards/add")
def add_card() -> Response:
    """Provision the card once per Idempotency-Key, then go to the card (green) or the code (yellow)."""
    user = current_user()
    svc = services()
    form = request.form
    key = form.get("idempotency_key", "")
    try:
        svc.idempotency.check_key(key)
        device_id = int(form.get("device_id", ""))
    except (ValidationFailed, ValueError):
        return _add_form(400, error="The form was incomplete; please fill it in again.")
    pan = "".join(ch for ch in form.get("pan", "")[:32] if ch not in " -")
    expiry = form.get("expiry", "")[:7].strip()
    cvv = form.get("cvv", "")[:4].strip()
    fingerprint = svc.idempotency.fingerprint(
        {"pan": pan, "expiry": expiry, "cvv": cvv, "deviceId": device_id}
    )
    outcome = claim_or_wait(f"user:{user.id}", key, fingerprint)
    kept = {"expiry": expiry, "device_id": device_id}
    if isinstance(outcome, Replay):
        return _after_provisioning(outcome.status, json.loads(outcome.body), **kept)  # type: ignore[arg-type]
    session_db = db()
    try:
        result = provision_card(user, device_id, pan, expiry, cvv, deliver=False, via="web")
    except TSPError as error:
        return _after_provisioning(error.status, settle_refused(outcome, error), **kept)  # type: ignore[arg-type]
    except BaseException:
        session_db.rollback()
        svc.idempotency.release(outcome)
        raise
    card = result.card
    status = 201 if result.card.status == "ACTIVE" else 202
    payload = {"cardId": card.id, "network": card.network, "last4": card.funding_last4}
    svc.idempotency.complete(session_db, outcome, status, json.dumps(payload))
    session_db.commit()
    return _after_provisioning(status, payload)


def _owned(card_id: int) -> tuple[User, Card]:
    user = current_user()
    return user, services().provisioner.owned_card(db(), user.id, card_id)


@bp.get("/cards/<int:card_id>")
def card_detail(card_id: int) -> Response:
    """One card with its actions: suspend, reactivate, remove, make default."""
    user, card = _owned(card_id)
    if card.status == "DEACTIVATED":
        raise NotFound("this card was removed from the wallet")
    device = owned_device(db(), user.id, card.device_id)
    return _render(
        "card.html",
        card=card_json(card),
        device=device,
        place=place(device),
        device_lost=device.status != "ACTIVE" or card.status_reason == "DEVICE_LOST",
        suspend_reasons=sorted(CUSTOMER_REASONS[TokenEvent.SUSPEND]),
        reactivate_reasons=sorted(CUSTOMER_REASONS[TokenEvent.REACTIVATE]),
    )


def _change(card_id: int, verb: str, done: str) -> Response:
    user = current_user()
    reason = request.form.get("reason", "CUSTOMER_REQUEST")[:32]
    session_db = db()
    try:
        card = services().cards.change(session_db, user.id, card_id, verb, reason)
    except NotFound:
        raise
    except TSPError as error:
        session_db.rollback()
        flash(CHANGE_REFUSALS.get(error.slug, "That change isn't possible for this card right now."), "error")
        return _see_other("web.card_detail", card_id=card_id)
    audit_card_change(user.id, verb, card.id, reason=reason, status=card.status, via="web")
    session_db.commit()
    flash(f"{network_name(card.network)} card ending {card.funding_last4} {done}.", "success")
    if verb == "delete":
        return _see_other("web.cards")
    return _see_other("web.card_detail", card_id=card.id)


CHANGE_REFUSALS = {
    "device-lost": "This card's device was reported lost, so the card can't be reactivated.",
    "invalid-state-transition": "That change isn't possible for this card right now.",
}
"""What to say when a card change is refused (by problem type)."""


@bp.post("/cards/<int:card_id>/suspend")
def suspend(card_id: int) -> Response:
    """ACTIVE → SUSPENDED."""
    return _change(card_id, "suspend", "suspended")


@bp.post("/cards/<int:card_id>/reactivate")
def reactivate(card_id: int) -> Response:
    """SUSPENDED → ACTIVE."""
    return _change(card_id, "reactivate", "reactivated")


@bp.post("/cards/<int:card_id>/remove")
def remove(card_id: int) -> Response:
    """Deactivate the token for good."""
    return _change(card_id, "delete", "removed")


@bp.post("/cards/<int:card_id>/default")
def make_default(card_id: int) -> Response:
    """Make the card its device's default."""
    return _change(card_id, "default", "is now the default")


# --- one-time codes ----------------------------------------------------------------------------


@bp.get("/cards/<int:card_id>/verify")
def verify_form(card_id: int) -> Response:
    """The one-time-code form of a card waiting for verification."""
    _, card = _owned(card_id)
    if card.status != "INACTIVE" or card.verify_code_hash is None:
        return _see_other("web.card_detail", card_id=card_id)
    return _verify_page(card)


def _verify_page(card: Card, status: int = 200, error: str | None = None) -> Response:
    remaining = services().config.otp_attempts - card.verify_attempts
    return _render("verify.html", status, card=card_json(card), remaining=remaining, error=error)


@bp.post("/cards/<int:card_id>/verify")
def verify_card(card_id: int) -> Response:
    """Check the code: activate the card, or count the miss (the card is removed after the last)."""
    user = current_user()
    svc = services()
    session_db = db()
    code = request.form.get("code", "")[:12]
    result = svc.provisioner.verify(session_db, user, card_id, code, deliver=False)
    audit.record(
        session_db,
        actor=f"user:{user.id}",
        action="card.verify",
        target=f"card:{card_id}",
        outcome="success" if result.error is None else result.error.slug,
        origin=origin(),
        via="web",
    )
    session_db.commit()
    card = result.card
    if isinstance(result.error, VerificationExhausted):
        flash("Too many wrong codes: the card was removed. You can add it again.", "error")
        return _see_other("web.cards")
    if result.error is not None:
        return _verify_page(card, result.error.status, _sentence(result.error.detail))
    flash(f"Verified: {network_name(card.network)} card ending {card.funding_last4} is ready.", "success")
    return _see_other("web.card_detail", card_id=card.id)


@bp.post("/cards/<int:card_id>/resend")
def resend_code(card_id: int) -> Response:
    """Send a new one-time code by SMS or e-mail."""
    user = current_user()
    method = request.form.get("method", "otp_sms")
    if method not in ("otp_sms", "otp_email"):
        method = "otp_sms"
    sent = services().provisioner.resend(db(), user, card_id, method)
    db().commit()
    flash(f"A new code was sent to {sent['to']}.", "info")
    return _see_other("web.verify_form", card_id=card_id)


@bp.get("/outbox")
def outbox() -> Response:
    """The simulated SMS and e-mail outbox (development mode only)."""
    if not services().config.dev_mode:
        raise NotFound("the outbox exists only in development mode")
    user = current_user()
    messages = [json.loads(m) for m in services().store.lrange(f"outbox:{user.id}")]
    return _render("outbox.html", messages=messages)


# --- transactions ------------------------------------------------------------------------------


def _txn_status(txn: Transaction) -> str:
    status = getattr(txn, "status", None)
    return str(status) if status else ("approved" if txn.approved else "declined")


def _transaction_items(
    user: User, *, limit: int, card_id: int | None = None, before: int | None = None, after: int | None = None
) -> tuple[list[dict[str, Any]], int | None]:
    """The user's transactions, newest first, as the list shows them; and the id before the next page."""
    query = (
        select(Transaction, Card)
        .join(Card, Card.id == Transaction.card_id)
        .where(Transaction.user_id == user.id)
        .order_by(Transaction.id.desc())
        .limit(limit + 1)
    )
    if card_id is not None:
        query = query.where(Transaction.card_id == card_id)
    if before is not None:
        query = query.where(Transaction.id < before)
    if after is not None:
        query = query.where(Transaction.id > after)
    rows = [(row[0], row[1]) for row in db().execute(query)]
    page = rows[:limit]
    items = [
        {
            "txn": txn,
            "status": _txn_status(txn),
            "network": owner.network,
            "last4": owner.funding_last4,
            "tokenLast4": owner.token_pan[-4:],
            "cardId": owner.id,
        }
        for txn, owner in page
    ]
    return items, (page[-1][0].id if len(rows) > limit else None)


def _newest(items: list[dict[str, Any]]) -> int:
    return max((int(item["txn"].id) for item in items), default=0)


@bp.get("/transactions")
def transactions() -> Response:
    """The user's transactions, newest first (``?card=<id>`` for one card, ``?before=<id>`` pages)."""
    user = current_user()
    card_filter = request.args.get("card", type=int)
    before = request.args.get("before", type=int)
    card = None
    if card_filter is not None:
        card = services().provisioner.owned_card(db(), user.id, card_filter)
    items, more = _transaction_items(
        user, limit=TRANSACTIONS_PER_PAGE, card_id=card.id if card else None, before=before
    )
    return _render(
        "transactions.html",
        items=items,
        card=card_json(card) if card else None,
        more=more,
        after=_newest(items) if before is None else None,
    )


# --- devices -----------------------------------------------------------------------------------


@bp.get("/devices")
def devices() -> Response:
    """The user's devices, a form to register one, and "mark as lost"."""
    user = current_user()
    return _render("devices.html", devices=list_devices(db(), user.id), this_device=session.get(THIS_DEVICE))


@bp.post("/devices")
def add_device() -> Response:
    """Register a device by its P-256 public key (PEM, or base64 of the uncompressed point)."""
    user = current_user()
    name = request.form.get("name", "device")[:100]
    public_key = request.form.get("public_key", "")[:4096]
    session_db = db()
    try:
        device = register_device(session_db, user.id, name, public_key)
    except (ValidationFailed, DeviceKeyInvalid):
        session_db.rollback()
        return _render(
            "devices.html",
            422,
            devices=list_devices(session_db, user.id),
            this_device=session.get(THIS_DEVICE),
            error="This isn't a phone wallet's public key. Copy it again from the phone wallet.",
            name=name,
        )
    audit.record(
        session_db,
        actor=f"user:{user.id}",
        action="device.register",
        target=f"device:{device.id}",
        outcome="success",
        origin=origin(),
        via="web",
    )
    session_db.commit()
    flash(f"Device “{device.name}” registered.", "success")
    return _see_other("web.devices")


@bp.post("/devices/<int:device_id>/lost")
def device_lost(device_id: int) -> Response:
    """Mark a device lost: its cards are suspended and its sessions revoked."""
    device, changed = mark_device_lost(current_user().id, device_id, via="web")
    db().commit()
    flash(f"“{device.name}” is marked lost; {len(changed)} card(s) on it were suspended.", "success")
    return _see_other("web.devices")


def _sentence(text: str) -> str:
    """``the code is wrong`` → ``The code is wrong.``

    >>> _sentence("the code is wrong")
    'The code is wrong.'
    """
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
