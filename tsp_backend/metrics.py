"""The operators' view: ``GET /metrics`` in the Prometheus text exposition format.

Names are stable; dashboards and alerts may rely on them.

=====================================  =========  ==========================  =========================
name                                   type       labels                      what
=====================================  =========  ==========================  =========================
``hcekit_authorization_seconds``       histogram  ``phase``: check, intent,   time spent in each phase
                                                  issuer, settle              of an authorization
``hcekit_authorizations_total``        counter    ``code`` (ISO 8583 field    decisions answered
                                                  39), ``network``            (replays not counted)
``hcekit_idempotency_replays_total``   counter    —                           stored answers replayed
``hcekit_idempotency_conflicts_total`` counter    ``reason``: in-flight (409  Idempotency-Key conflicts
                                                  ``idempotency-request-
                                                  in-flight``), reused (422
                                                  ``idempotency-key-reused``)
``hcekit_breaker_state``               gauge      ``network``                 0 closed, 1 half-open,
                                                                              2 open (read at scrape)
``hcekit_transactions_in_doubt``       gauge      —                           transactions ``pending``
                                                                              or ``in_doubt`` (one
                                                                              COUNT at scrape)
=====================================  =========  ==========================  =========================

The phases are those of :meth:`~tsp_backend.services.authorization.AuthorizationService.authorize`:
*check* (decode, look up, verify the cryptogram: reads only), *intent* (the durable intent:
claim, ATC, ``pending`` row, up to the call to the issuer), *issuer* (the network and the issuer,
through the breaker), *settle* (the decision written and the answer stored). A refusal at the
check or a replayed answer observes only the phases it ran. ``network`` is ``unknown`` when no
token was found (a cryptogram that does not verify names no card).

Processes
---------
Without gunicorn the metrics live in the process. Under gunicorn (``hcekit serve --workers N``)
every worker writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's
multiprocess mode; the variable must be set before :mod:`prometheus_client` is imported, which
``hcekit serve`` does with a private temporary directory unless it is already set) and a scrape,
answered by any worker, sums them. The two gauges are not samples but reads made at scrape
time: the breaker state is shared through Redis, the in-doubt count comes from the database.

Exposure
--------
The endpoint needs no session — a Prometheus server scrapes it — and carries no user data: no
PAN, token, user or merchant, only counts and durations. It tells how busy the service is and
which network is failing, so it should be reachable only from the operator's network (bind the
service behind a proxy that does not route ``/metrics``, or block it there). ``HCEKIT_METRICS=0``
turns the endpoint off (404).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from tsp_backend.models import Transaction

if TYPE_CHECKING:
    from flask import Flask

    from tsp_backend.api.http import Services

__all__ = [
    "AUTHORIZATIONS",
    "AUTHORIZATION_SECONDS",
    "BREAKER_STATES",
    "IDEMPOTENCY_CONFLICTS",
    "IDEMPOTENCY_REPLAYS",
    "IN_DOUBT_STATUSES",
    "init_app",
    "lap",
    "phases",
    "render",
]

PHASES = ("check", "intent", "issuer", "settle")
"""The phases of an authorization, in order (module docstring)."""

BREAKER_STATES: dict[str, int] = {"closed": 0, "half-open": 1, "open": 2}
"""pybreaker state name -> the value of ``hcekit_breaker_state``."""

IN_DOUBT_STATUSES = ("pending", "in_doubt")
"""Transaction statuses counted by ``hcekit_transactions_in_doubt``."""

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Histogram bounds in seconds: a check takes about a millisecond, an issuer up to the time-out."""

AUTHORIZATION_SECONDS = Histogram(
    "hcekit_authorization_seconds",
    "Time spent in each phase of an authorization.",
    ["phase"],
    buckets=BUCKETS,
    registry=None,
)
AUTHORIZATIONS = Counter(
    "hcekit_authorizations",
    "Authorization decisions answered, by ISO 8583 response code and network.",
    ["code", "network"],
    registry=None,
)
IDEMPOTENCY_REPLAYS = Counter(
    "hcekit_idempotency_replays",
    "Stored answers replayed for a repeated Idempotency-Key.",
    registry=None,
)
IDEMPOTENCY_CONFLICTS = Counter(
    "hcekit_idempotency_conflicts",
    "Idempotency-Key conflicts: a request still in flight (409) or a key reused (422).",
    ["reason"],
    registry=None,
)
_SAMPLED = (AUTHORIZATION_SECONDS, AUTHORIZATIONS, IDEMPOTENCY_REPLAYS, IDEMPOTENCY_CONFLICTS)

CONFLICT_SLUGS: dict[str, str] = {
    "idempotency-request-in-flight": "in-flight",
    "idempotency-key-reused": "reused",
}
"""Problem slug -> the ``reason`` label of ``hcekit_idempotency_conflicts_total``."""

_last_mark: ContextVar[tuple[float, str] | None] = ContextVar("hcekit_phase_mark", default=None)

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger(__name__)


def lap(phase: str) -> None:
    """Observe the time since the previous mark of this authorization as ``phase``; mark now.

    Outside :func:`phases` (no mark), nothing is observed.
    """
    mark = _last_mark.get()
    now = time.perf_counter()
    if mark is not None:
        AUTHORIZATION_SECONDS.labels(phase).observe(now - mark[0])
        _last_mark.set((now, phase))


def phases(method: F) -> F:
    """Time ``method`` (an ``authorize``) by phases and count its answer.

    The first mark is the call; :func:`lap` marks the ends of *check*, *intent* and *issuer*;
    once the issuer has been asked, the return ends *settle*. The answer (an object with
    ``replayed`` and ``result``) counts a replay or a decision by code and network.
    """

    @wraps(method)
    def timed(*args: Any, **kwargs: Any) -> Any:
        token = _last_mark.set((time.perf_counter(), ""))
        try:
            answer = method(*args, **kwargs)
            mark = _last_mark.get()
            if mark is not None and mark[1] == "issuer":
                lap("settle")
        finally:
            _last_mark.reset(token)
        count(answer)
        return answer

    return timed  # type: ignore[return-value]


def count(answer: Any) -> None:
    """Count an authorization's answer: a replay, or a decision by response code and network."""
    if getattr(answer, "replayed", False):
        IDEMPOTENCY_REPLAYS.inc()
        return
    result = getattr(answer, "result", None)
    if result is not None:
        AUTHORIZATIONS.labels(result.response_code or "none", result.network or "unknown").inc()


def conflict(slug: str) -> None:
    """Count a problem answer if it is an Idempotency-Key conflict (see :data:`CONFLICT_SLUGS`)."""
    reason = CONFLICT_SLUGS.get(slug)
    if reason is not None:
        IDEMPOTENCY_CONFLICTS.labels(reason).inc()


class LiveCollector(Collector):
    """The gauges read at scrape time: breaker states (Redis) and the in-doubt count (one COUNT)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        """One sample per network, then the count of transactions in doubt (left out, with a
        warning, when the database does not answer: the other metrics matter most then)."""
        breakers = GaugeMetricFamily(
            "hcekit_breaker_state",
            "Circuit breaker per network: 0 closed, 1 half-open, 2 open.",
            labels=["network"],
        )
        for network, state in sorted(self.services.networks.breaker_states().items()):
            breakers.add_metric([network], BREAKER_STATES.get(state, 2))
        yield breakers
        query = select(func.count()).select_from(Transaction).where(Transaction.status.in_(IN_DOUBT_STATUSES))
        try:
            with self.services.sessions_factory() as session:
                in_doubt = session.scalar(query) or 0
        except SQLAlchemyError as exc:
            log.warning("/metrics without hcekit_transactions_in_doubt: %s", type(exc).__name__)
            return
        yield GaugeMetricFamily(
            "hcekit_transactions_in_doubt",
            "Transactions pending or in doubt (not yet settled with the issuer).",
            value=in_doubt,
        )


def multiprocess_dir() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR`` when set (multiprocess mode), else ``None``."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render(services: Services) -> bytes:
    """The text exposition of every metric of this process (or of every worker, in multiprocess mode)."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir() is not None:
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        for metric in _SAMPLED:
            registry.register(metric)
    registry.register(LiveCollector(services))
    return generate_latest(registry)


def enabled() -> bool:
    """Whether ``/metrics`` is served (``HCEKIT_METRICS`` unset or not ``0``)."""
    return os.environ.get("HCEKIT_METRICS", "1").strip().lower() not in ("0", "false", "no", "off")


def init_app(app: Flask, services: Services) -> None:
    """Add ``GET /metrics`` unless ``HCEKIT_METRICS=0``."""
    from flask import Response

    if not enabled():
        return

    def metrics() -> Response:
        return Response(render(services), mimetype=None, content_type=CONTENT_TYPE_LATEST)

    app.add_url_rule("/metrics", "metrics", metrics, methods=["GET"])
