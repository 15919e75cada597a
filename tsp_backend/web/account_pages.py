"""The visitor's pages: register, log in, log out (over :class:`~tsp_backend.services.accounts.Accounts`,
the same audited steps as ``/api/auth/*``, with ``via="web"`` on their rows)."""

from __future__ import annotations

from flask import Response, flash, g, redirect, request, url_for

from tsp_backend.api.http import (
    SESSION_COOKIE,
    clear_session_cookie,
    current_user,
    db,
    request_origin,
    services,
    set_session_cookie,
)
from tsp_backend.errors import CSRFFailed, InvalidCredentials, TSPError
from tsp_backend.web.pages import bp, fresh_web_session, render, see_other, sentence, signed_in_user
from tsp_backend.web.security import anonymous_csrf_ok, safe_next


@bp.get("/")
def index() -> Response:
    """The card list for a signed-in user, the login page otherwise."""
    if signed_in_user() is None:
        return see_other("web.login_form")
    return see_other("web.cards")


@bp.get("/register")
def register_form() -> Response:
    """The registration form (a visitor's page: its header is the visitor's)."""
    return render("register.html", signed_in=None)


@bp.post("/register")
def register() -> Response:
    """Create an account and sign the new user in; next, this browser becomes a device."""
    if not anonymous_csrf_ok(request.form.get("csrf_token")):
        raise CSRFFailed("the registration form lacks a valid CSRF token")
    email = request.form.get("email", "")[:254]
    password = request.form.get("password", "")[:1024]
    if password != request.form.get("password2", ""):
        return render("register.html", 422, error="The two passwords differ.", email=email, signed_in=None)
    accounts = services().accounts
    session_db = db()
    try:
        accounts.register(session_db, email, password, request_origin())
    except TSPError as error:
        session_db.rollback()
        return render(
            "register.html", error.status, error=sentence(error.detail), email=email, signed_in=None
        )
    session_db.commit()
    _, token, _ = accounts.log_in(
        session_db, email, password, request.cookies.get(SESSION_COOKIE), request_origin(), via="web"
    )
    fresh_web_session()
    flash("Your account is ready. Now make this browser a device for your cards.", "success")
    response = see_other("web.setup")
    set_session_cookie(response, token)
    return response


@bp.get("/login")
def login_form() -> Response:
    """The login form (a signed-in user goes straight to the cards)."""
    if signed_in_user() is not None:
        return see_other("web.cards")
    return render("login.html", next=request.args.get("next", ""))


@bp.post("/login")
def login() -> Response:
    """Check the credentials, open a fresh session (revoking any old one) and set its cookie."""
    if not anonymous_csrf_ok(request.form.get("csrf_token")):
        raise CSRFFailed("the login form lacks a valid CSRF token")
    email = request.form.get("email", "")[:254]
    next_page = request.form.get("next", "")
    try:
        _, token, _ = services().accounts.log_in(
            db(),
            email,
            request.form.get("password", "")[:1024],
            request.cookies.get(SESSION_COOKIE),
            request_origin(),
            via="web",
        )
    except InvalidCredentials:
        return render("login.html", 401, error="Email or password is wrong.", email=email, next=next_page)
    fresh_web_session()
    response = redirect(safe_next(next_page, url_for("web.cards")), 303)
    set_session_cookie(response, token)
    return response  # type: ignore[return-value]


@bp.post("/logout")
def logout() -> Response:
    """Revoke the session, clear its cookie and go back to the login page."""
    user = current_user()
    services().accounts.log_out(db(), g.auth_token, user.id, request_origin(), via="web")
    fresh_web_session()
    flash("You are logged out.", "info")
    response = see_other("web.login_form")
    clear_session_cookie(response)
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response
