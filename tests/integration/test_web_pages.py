"""Every wallet page in Chromium at 360, 390 and 1366 px: no sideways scrolling, no serious or
critical axe-core violation, and a screenshot of each at 390 and 1366 px.

axe-core is vendored in ``tests/data/axe-core`` (version and checksum in its ``VERSION`` file)
and injected into each page; the browser context bypasses the pages' CSP for that injection
only (the other browser tests keep it). Screenshots go to ``$HCEKIT_SCREENSHOTS`` when set,
else to the test's temporary directory.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.browser import (
    GREEN_PAN,
    YELLOW_PAN,
    add_card,
    base_url,
    chromium,
    create_passkey,
    register,
    service,
    submit_card,
    virtual_authenticator,
)

pytestmark = pytest.mark.integration

__all__ = ["base_url", "service"]

AXE = Path(__file__).resolve().parents[1] / "data" / "axe-core"
WIDTHS = (360, 390, 1366)
SHOT_WIDTHS = (390, 1366)


def _axe_source() -> str:
    text = (AXE / "axe.min.js").read_bytes()
    pinned = (AXE / "VERSION").read_text()
    assert hashlib.sha256(text).hexdigest() in pinned, "axe.min.js differs from the pinned version"
    return text.decode()


@pytest.fixture
def survey_page(base_url: str) -> Iterator[Any]:
    """A Chromium page whose context lets the test inject axe-core."""
    with chromium(base_url=base_url, viewport={"width": 1366, "height": 900}, bypass_csp=True) as context:
        yield context.new_page()


def _check(page: Any, name: str, shots: Path, axe: str) -> list[str]:
    """Overflow and axe at every width; screenshots at 390 and 1366. The problems found."""
    problems: list[str] = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(50)
        sizes = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        if sizes[0] > sizes[1]:
            wide = page.evaluate(
                """(limit) => [...document.querySelectorAll('body *')]
                    .filter((e) => e.getBoundingClientRect().right > limit + 0.5)
                    .slice(0, 5).map((e) => e.tagName + '.' + e.className + '#' + e.id)""",
                sizes[1],
            )
            problems.append(f"{name} at {width}px: scrollWidth {sizes[0]} > {sizes[1]} ({wide})")
        if width in SHOT_WIDTHS:
            page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(content=axe)
    assert page.evaluate("() => axe.version") == "4.10.3"
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".filter((v) => v.impact === 'serious' || v.impact === 'critical')"
        ".map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).join(', '))"
    )
    problems += [f"{name}: axe {violation}" for violation in result]
    return problems


def test_every_page_fits_and_passes_axe(survey_page: Any, tmp_path: Path) -> None:
    """Visitor, signed-in, sheet, shop and error pages: no overflow at 360/390/1366, axe clean."""
    page = survey_page
    shots = Path(os.environ.get("HCEKIT_SCREENSHOTS", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    axe = _axe_source()
    problems: list[str] = []

    for name, path in (("login", "/wallet/login"), ("register", "/wallet/register"), ("shop", "/shop/")):
        page.goto(path)
        problems += _check(page, name, shots, axe)

    virtual_authenticator(page)
    register(page, "survey-wide-address@example.com")
    problems += _check(page, "setup", shots, axe)
    create_passkey(page)
    problems += _check(page, "add-card", shots, axe)
    card_url = add_card(page, GREEN_PAN, "12/30", "123")
    problems += _check(page, "card", shots, axe)

    submit_card(page, YELLOW_PAN, "11/29", "456")
    assert page.url.endswith("/verify")
    problems += _check(page, "verify", shots, axe)
    page.goto("/wallet/outbox")
    problems += _check(page, "outbox", shots, axe)

    page.goto("/shop/")
    page.click("#pay-with-hcekit")
    page.wait_for_url(re.compile(r"/wallet/pay\?"))
    problems += _check(page, "sheet", shots, axe)
    page.click("#pay")
    page.wait_for_url(re.compile(r"/shop/\?paid=1$"))
    problems += _check(page, "shop-paid", shots, axe)

    for name, path in (
        ("cards", "/wallet/cards"),
        ("transactions", "/wallet/transactions"),
        ("devices", "/wallet/devices"),
        ("not-found", "/wallet/cards/999999"),
    ):
        page.goto(path)
        problems += _check(page, name, shots, axe)
    assert "Log out" in page.inner_text("header"), "a signed-in 404 keeps the signed-in header"
    assert "999999" not in page.inner_text("main")
    page.goto("/wallet/no-such-page")
    assert "Log out" in page.inner_text("header") and "Not found" in page.inner_text("main")
    page.goto(card_url)
    assert problems == [], "\n".join(problems)
