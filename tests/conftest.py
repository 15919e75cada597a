"""Settings shared by the whole test suite.

Hypothesis runs derandomized by default, so a test run is deterministic and a failure
reproduces on the next run; its per-example deadline is off, since a loaded 2-core CI machine
makes wall-clock limits flaky (speed lives in benchmarks/, never in tests). Set
``HYPOTHESIS_PROFILE=explore`` to search with fresh random examples and more of them.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "explore",
    deadline=None,
    max_examples=2000,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """With ``HCEKIT_REQUIRE_REAL_PARTS=1`` (set by scripts/test.sh), a skipped test fails.

    Tests skip only when a real part is missing (pcscd, vpcd, Chromium, a driver, matplotlib);
    the test script installs every one of them, so there a skip would hide a broken install.
    """
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("HCEKIT_REQUIRE_REAL_PARTS") == "1":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"a real part this test needs is missing: {reason}"
