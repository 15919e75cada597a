"""The card networks' authorization switches, simulated in process or over HTTP.

A switch carries an authorization request from the token service to the funding card's issuer
and the decision back (ISO 8583 0100/0110). Each simulated network has a latency distribution,
an error rate and an outage switch, so that slow, failing and dead networks can be exercised:

* :class:`SwitchSimulator` runs in the service's process (the embedded default);
* :mod:`tsp_backend.simulators.netsim` serves the same simulators over HTTP
  (``hcekit network-sim``), and :class:`HttpSwitch` is the service's client of it, so time-outs
  are real socket time-outs and circuit breakers trip on real failures.

Latency is log-normal, given by its median and 99th percentile (``p50,p99`` in milliseconds):
``mu = ln p50`` and ``sigma = ln(p99 / p50) / 2.326``, 2.326 being the standard normal's 99th
percentile. Half the latency passes on the way to the issuer and half on the way back, so a
caller can die after the issuer has decided and before the answer arrives — the window that
the token service's durable intent exists for. An outage answers at once (HTTP 503); an error
answers 503 after the latency.

Errors of a switch::

    SwitchError            the network gave no decision
    ├── SwitchDown         refused at once (outage, 5xx, connection refused): not processed
    │   └── CircuitOpen    the service's breaker is open: not even sent
    └── SwitchTimeout      no answer in time: perhaps processed — the transaction is in doubt
"""

from __future__ import annotations

import json as _json
import math
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from tsp_backend.services.issuers import IssuerDecision, IssuerRequest, IssuerSimulator

_Z99 = 2.3263478740408408
"""The 99th percentile of the standard normal distribution."""


class SwitchError(Exception):
    """The network gave no decision (module docstring)."""


class SwitchDown(SwitchError):
    """The network refused at once: the request was certainly not processed."""


class CircuitOpen(SwitchDown):
    """The network's circuit breaker is open: the call failed fast, nothing was sent."""


class SwitchTimeout(SwitchError):
    """No answer in time: the issuer may have processed the request (in doubt)."""


@dataclass(frozen=True)
class Latency:
    """A log-normal latency given by its median and 99th percentile, in milliseconds.

    >>> Latency.parse("20,80").p99_ms
    80.0
    >>> Latency.parse("0").sample(random.Random(1))
    0.0
    """

    p50_ms: float = 0.0
    p99_ms: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Latency:
        """``"p50,p99"`` or ``"p50"`` (then p99 = p50) in milliseconds."""
        parts = [float(p) for p in text.split(",") if p.strip()]
        if not parts or len(parts) > 2 or any(p < 0 for p in parts):
            raise ValueError("latency is 'p50,p99' in non-negative milliseconds")
        p50 = parts[0]
        p99 = parts[1] if len(parts) == 2 else p50
        if p99 < p50:
            raise ValueError("latency p99 must not be below p50")
        return cls(p50, p99)

    def sample(self, rng: random.Random) -> float:
        """One latency in seconds."""
        if self.p50_ms <= 0:
            return 0.0
        if self.p99_ms <= self.p50_ms:
            return self.p50_ms / 1000.0
        sigma = math.log(self.p99_ms / self.p50_ms) / _Z99
        return rng.lognormvariate(math.log(self.p50_ms), sigma) / 1000.0

    def __str__(self) -> str:
        return f"{self.p50_ms:g},{self.p99_ms:g}"


class Switch(Protocol):
    """One network's authorization path, as the service calls it."""

    def authorize(self, request: IssuerRequest, timeout_s: float) -> IssuerDecision:
        """The issuer's decision; :class:`SwitchError` when the network gives none."""

    def status(self, reference: str, timeout_s: float) -> IssuerDecision | None:
        """The recorded decision of ``reference`` (``None``: never seen)."""

    def reverse(self, reference: str, timeout_s: float) -> IssuerDecision | None:
        """Reverse or void ``reference``; the decision it had."""


class SwitchSimulator:
    """One network's switch in process: latency, errors and outage in front of the issuer."""

    def __init__(
        self,
        name: str,
        issuer: IssuerSimulator,
        *,
        latency: Latency | None = None,
        error_rate: float = 0.0,
        down: bool = False,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.issuer = issuer
        self.latency = latency or Latency()
        self.error_rate = error_rate
        self.down = down
        self._rng = rng or random.Random()  # noqa: S311 - simulated delays, not secrets
        self._lock = threading.Lock()
        self._sleep = sleep

    def _draw(self) -> tuple[float, float]:
        with self._lock:
            return self.latency.sample(self._rng), self._rng.random()

    def authorize(self, request: IssuerRequest, timeout_s: float) -> IssuerDecision:
        """Wait the sampled latency, then fail or ask the issuer (module docstring)."""
        if self.down:
            raise SwitchDown(f"the {self.name} network is down")
        delay, roll = self._draw()
        if roll < self.error_rate:
            self._sleep(min(delay, timeout_s))
            raise SwitchDown(f"the {self.name} network failed")
        if delay > timeout_s:
            self._sleep(min(delay / 2, timeout_s))
            self.issuer.decide(request)
            self._sleep(max(timeout_s - delay / 2, 0.0))
            raise SwitchTimeout(f"the {self.name} network did not answer in {timeout_s * 1000:.0f} ms")
        if delay:
            self._sleep(delay / 2)
        decision = self.issuer.decide(request)
        if delay:
            self._sleep(delay / 2)
        return decision

    def status(self, reference: str, timeout_s: float) -> IssuerDecision | None:
        """See :meth:`Switch.status`."""
        if self.down:
            raise SwitchDown(f"the {self.name} network is down")
        return self.issuer.status(reference)

    def reverse(self, reference: str, timeout_s: float) -> IssuerDecision | None:
        """See :meth:`Switch.reverse`."""
        if self.down:
            raise SwitchDown(f"the {self.name} network is down")
        return self.issuer.reverse(reference)

    def settings(self) -> dict[str, Any]:
        """The simulator's knobs as JSON."""
        return {"down": self.down, "errorRate": self.error_rate, "latencyMs": str(self.latency)}


class HttpSwitch:
    """The service's client of one network on an ``hcekit network-sim`` server.

    urllib3 (a keep-alive pool, no retries): a call costs the worker about half the CPU of an
    httpx client (``benchmarks/bench_authorize.py --networks http``). A connection that cannot
    be opened is :class:`SwitchDown` (nothing was sent); any failure after the request may have
    left — a read time-out, a connection dropped mid-answer — is :class:`SwitchTimeout`.
    """

    def __init__(self, base_url: str, name: str, *, pool: Any = None) -> None:
        import urllib3

        self.base_url = base_url.rstrip("/")
        self.name = name
        self._urllib3 = urllib3
        self._pool = pool or urllib3.connection_from_url(self.base_url, maxsize=32)
        self._prefix = urllib3.util.parse_url(self.base_url).path or ""

    def _call(self, method: str, path: str, timeout_s: float, json: Any = None) -> Any:
        urllib3 = self._urllib3
        errors = urllib3.exceptions
        try:
            response = self._pool.urlopen(
                method,
                f"{self._prefix}/{self.name}{path}",
                body=None if json is None else _json.dumps(json).encode(),
                headers=_JSON_HEADERS if json is not None else None,
                timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
                retries=False,
                redirect=False,
            )
        except errors.ConnectTimeoutError as exc:  # NewConnectionError (refused) among them
            raise SwitchDown(f"cannot reach the {self.name} network") from exc
        except errors.HTTPError as exc:
            raise SwitchTimeout(
                f"the {self.name} network did not answer in {timeout_s * 1000:.0f} ms"
            ) from exc
        if response.status == 404:
            return None
        if response.status != 200:
            raise SwitchDown(f"the {self.name} network answered HTTP {response.status}")
        return _json.loads(response.data)

    def authorize(self, request: IssuerRequest, timeout_s: float) -> IssuerDecision:
        """See :meth:`Switch.authorize`."""
        body = {
            "reference": request.reference,
            "pan": request.pan,
            "amount": request.amount,
            "currency": request.currency,
            "merchantId": request.merchant_id,
            "mcc": request.mcc,
        }
        doc = self._call("POST", "/authorize", timeout_s, body)
        if doc is None:
            raise SwitchDown(f"the {self.name} network is not served at {self.base_url}")
        return IssuerDecision.from_json(doc)

    def status(self, reference: str, timeout_s: float) -> IssuerDecision | None:
        """See :meth:`Switch.status`."""
        doc = self._call("GET", f"/transactions/{reference}", timeout_s)
        return None if doc is None else IssuerDecision.from_json(doc)

    def reverse(self, reference: str, timeout_s: float) -> IssuerDecision | None:
        """See :meth:`Switch.reverse`."""
        doc = self._call("POST", f"/transactions/{reference}/reverse", timeout_s)
        prior = None if doc is None else doc.get("prior")
        return None if prior is None else IssuerDecision.from_json(prior)

    def close(self) -> None:
        """Close the connection pool."""
        self._pool.close()


_JSON_HEADERS = {"Content-Type": "application/json"}


def make_simulators(
    networks: Iterable[str],
    issuer: IssuerSimulator,
    *,
    latency: Latency | None = None,
    error_rate: float = 0.0,
    down: frozenset[str] = frozenset(),
) -> dict[str, SwitchSimulator]:
    """One :class:`SwitchSimulator` per network name, sharing one issuer."""
    return {
        name: SwitchSimulator(name, issuer, latency=latency, error_rate=error_rate, down=name in down)
        for name in networks
    }
