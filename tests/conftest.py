"""Settings shared by the whole test suite.

Hypothesis runs derandomized by default, so a test run is deterministic and a failure
reproduces on the next run; its per-example deadline is off, since a loaded 2-core CI machine
makes wall-clock limits flaky (speed lives in benchmarks/, never in tests). Set
``HYPOTHESIS_PROFILE=explore`` to search with fresh random examples and more of them.
"""

from __future__ import annotations

import os

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
