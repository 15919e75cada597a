"""Login CSRF from another origin, in a real headless Chromium (Debian's ``chromium``).

The service listens on ``127.0.0.1:<port>``; a second loopback server on
``localhost:<other port>`` — another site — serves a page that submits a form to the service's
login routes, as an attacker's page would. The service must refuse it and open no session.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.integration.browser import PASSWORD, chromium, loopback_service
from tsp_backend.models import AuditEvent

pytestmark = pytest.mark.integration

ATTACKER_EMAIL = "attacker@example.com"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """The token service on a loopback port, with the attacker's account already registered."""
    with loopback_service(tmp_path) as tsp:
        account = {"email": ATTACKER_EMAIL, "password": PASSWORD}
        created = tsp.app.test_client().post("/api/auth/register", json=account)
        assert created.status_code == 201
        yield tsp.url, tsp.app


def _attacker_page(target: str) -> bytes:
    return f"""<!doctype html><html><body>
<form id="f" method="post" action="{target}">
<input name="email" value="{ATTACKER_EMAIL}"><input name="password" value="{PASSWORD}">
</form><script>document.getElementById("f").submit()</script></body></html>""".encode()


@pytest.fixture
def attacker(service: tuple[str, Any]) -> Iterator[str]:
    """Another site: ``http://localhost:<port>/<path>`` auto-submits a form to the service's ``<path>``."""
    base = service[0]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = _attacker_page(base + self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="attacker", daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def browser_context() -> Iterator[Any]:
    """A Chromium context (skips when Debian's chromium or Playwright is missing)."""
    with chromium() as context:
        yield context


@pytest.mark.parametrize("path", ["/api/auth/login", "/wallet/login"])
def test_cross_origin_login_form_is_refused_in_chromium(
    service: tuple[str, Any], attacker: str, browser_context: Any, path: str
) -> None:
    """A page on another origin that submits a login form gets 403 and no session cookie."""
    base, app = service
    page = browser_context.new_page()
    with page.expect_response(lambda r: r.url == base + path and r.request.method == "POST") as answer:
        page.goto(attacker + path)
    response = answer.value
    assert response.status == 403, response.text()
    assert response.request.headers.get("origin") == attacker
    assert "hcekit_session" not in {c["name"] for c in browser_context.cookies(base)}
    with app.extensions["hcekit"].sessions_factory() as session:
        logins = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "user.login", AuditEvent.outcome == "success")
        )
    assert logins == 0
