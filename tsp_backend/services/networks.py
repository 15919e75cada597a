"""The card networks' token services, simulated in process, each behind a circuit breaker.

A token requestor asks the network's token service for a token (EMVCo Payment Tokenisation
Specification Technical Framework v2.3 §3: token, token reference, token expiry). Each
simulator issues Luhn-valid token PANs from its token BIN range, after a configurable latency
and with a configurable error rate, so time-outs and breaker trips can be exercised.

Every network has one :class:`pybreaker.CircuitBreaker`, shared by its token service and its
authorization switch: after ``fail_max`` consecutive failures it opens and calls fail fast
(:class:`~tsp_backend.errors.NetworkUnavailable` for tokenisation,
:class:`~tsp_backend.services.netsim.CircuitOpen` for authorization) until ``reset_timeout`` has
passed. Only failures of the network count — time-outs, outages, 5xx; an issuer's decline is an
answer and never trips a breaker. With Redis the breaker state is shared by every process
(:class:`SharedBreakerStorage`, pybreaker's ``CircuitRedisStorage`` read through a short cache:
a success costs no Redis command, and a trip in any process reaches every other within
:data:`BREAKER_REFRESH_S`).

Authorization goes through :mod:`tsp_backend.services.netsim`: in process by default, or over
HTTP to ``hcekit network-sim`` when ``HCEKIT_NETWORK_URL`` (every network) or
``HCEKIT_NETWORK_URL_<NETWORK>`` (one network, e.g. ``HCEKIT_NETWORK_URL_VISA``) is set;
``HCEKIT_NETWORK_TIMEOUT_MS`` (default 800) bounds each call.

Token BIN ranges and card profiles of the simulators
----------------------------------------------------

==========  =========  ======  ===============  ==================  ==========  ======  =====
network     token BIN  length  AID              label               kernel      id      CVN
==========  =========  ======  ===============  ==================  ==========  ======  =====
visa        489537     16      A0000000031010   VISA CREDIT         visa        03      visa18
mastercard  535522     16      A0000000041010   MASTERCARD          mastercard  02      mc16
amex        374245     15      A00000002501     AMERICAN EXPRESS    mastercard  04      mc16
discover    601156     16      A0000001523010   DISCOVER            visa        06      visa10
==========  =========  ======  ===============  ==================  ==========  ======  =====

American Express and Discover cards are emulated on the two kernels the card applet offers
(M/Chip-style and qVSDC-style paths) with their own AIDs and labels.
"""

from __future__ import annotations

import os
import random
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pybreaker
from redis.exceptions import RedisError

from apdu.kernels import Kernel, kernel_named
from apdu.pan import luhn_check_digit
from tsp_backend.errors import NetworkUnavailable
from tsp_backend.services.issuers import IssuerDecision, IssuerRequest, IssuerSimulator
from tsp_backend.services.netsim import CircuitOpen, HttpSwitch, Latency, Switch, SwitchSimulator

T = TypeVar("T")


class Gate:
    """A network's circuit breaker, with pybreaker's rules but not its lock around the call.

    ``pybreaker.CircuitBreaker.call`` keeps one lock for the whole call, so one slow network
    call would hold up every other thread of the process (pybreaker#55). :meth:`call` reads the
    breaker's state (from Redis when it is shared, so a breaker opened by any process is seen at
    once); while it is closed the call runs outside the lock, and its outcome is then recorded
    through ``breaker.call`` with a function that only returns or raises it: pybreaker's own
    rules decide, under its lock, for microseconds. An open or half-open breaker takes the usual
    path — fail fast, or the single trial call of half-open. An answer that arrives after the
    breaker opened meanwhile stands.
    """

    def __init__(self, breaker: pybreaker.CircuitBreaker) -> None:
        self.breaker = breaker

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``func`` through the breaker (class docstring)."""
        if self.breaker.current_state != pybreaker.STATE_CLOSED:
            return self.breaker.call(func, *args, **kwargs)
        failure: Exception | None = None
        answer: Any = None
        try:
            answer = func(*args, **kwargs)
        except Exception as exc:
            failure = exc

        def outcome() -> Any:
            if failure is not None:
                raise failure
            return answer

        try:
            recorded: T = self.breaker.call(outcome)
        except pybreaker.CircuitBreakerError:
            if failure is not None:
                raise failure from None
            return answer  # type: ignore[no-any-return]
        return recorded


BREAKER_REFRESH_S = 0.5
"""How long a process trusts the breaker state it last read from Redis."""


class SharedBreakerStorage(pybreaker.CircuitRedisStorage):
    """A breaker's state in Redis, read at most every :data:`BREAKER_REFRESH_S` per process.

    pybreaker's Redis storage asks Redis for the state on every call and writes the failure
    counter back to zero on every success: three commands per authorization for a breaker that
    almost never changes. Here the state and the failure counter are read together (one
    ``MGET``) when the cached copy is older than the refresh interval; a success resets the
    shared counter only when it is known to be non-zero; every change this process makes
    (a failure, a trip, a reset) is written at once and updates the cache. Another process's
    trip is therefore seen within the refresh interval, and this process's own at once.
    """

    def __init__(
        self,
        state: str,
        redis_object: Any,
        namespace: str,
        *,
        refresh_s: float = BREAKER_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(state, redis_object, namespace=namespace)
        self.refresh_s = refresh_s
        self._clock = clock
        self._cached: str | None = None
        self._failures = 0
        self._read_at = float("-inf")

    def _refresh(self) -> None:
        if self._cached is not None and self._clock() - self._read_at < self.refresh_s:
            return
        try:
            state, failures = self._redis.mget(self._namespace("state"), self._namespace("fail_counter"))
        except RedisError:
            self.logger.exception("RedisError: falling back to default circuit state")
            self._cached, self._failures = self._fallback_circuit_state, 0
        else:
            if state is None:
                self._initialize_redis_state(self._fallback_circuit_state)
            text = state.decode() if isinstance(state, bytes) else state
            self._cached = text if text is not None else self._fallback_circuit_state
            self._failures = int(failures or 0)
        self._read_at = self._clock()

    @property
    def state(self) -> str:
        """The breaker's state, as Redis said it at most :attr:`refresh_s` ago."""
        self._refresh()
        assert self._cached is not None
        return self._cached

    @state.setter
    def state(self, state: str) -> None:
        try:
            self._redis.set(self._namespace("state"), str(state))
        except RedisError:
            self.logger.exception("RedisError")
        self._cached, self._read_at = str(state), self._clock()

    def increment_counter(self) -> None:
        """One more failure, in Redis at once."""
        super().increment_counter()
        self._failures += 1

    def reset_counter(self) -> None:
        """Failures back to zero: written only when some are known (a success costs nothing)."""
        self._refresh()
        if self._failures:
            super().reset_counter()
            self._failures = 0

    @property
    def counter(self) -> int:
        """The failure counter (read from Redis: pybreaker asks only after a failure)."""
        value = int(super().counter)
        self._failures = value
        return value


@dataclass(frozen=True)
class NetworkProfile:
    """A network's token BIN range and the card-profile constants of its tokens.

    Its contactless kernel is the one :mod:`apdu.kernels` names after the network: the
    Kernel Identifier (9F2A) of its tokens and the path the card runs on follow from it.
    """

    name: str
    token_bin: str
    length: int
    aid: str
    label: str
    cvn: str
    ref_prefix: str
    cvm_limit: int = 5000
    """Minor units above which the card asks for a consumer device CVM (the profile's
    ``cvm_limit``, EMV Contactless Book C-3 and C-2 "CVM Required Limit"), and above which
    authorization refuses a cryptogram made without one (response code 1A)."""

    @property
    def kernel(self) -> str:
        """The transaction path of the network's kernel (``"visa"`` or ``"mastercard"``)."""
        return self._kernel().path

    @property
    def kernel_id(self) -> str:
        """The network's Kernel Identifier (9F2A) as two hex digits, ``"03"`` for Visa."""
        return f"{self._kernel().id:02X}"

    def _kernel(self) -> Kernel:
        found = kernel_named(self.name)
        if found is None:
            raise LookupError(f"no contactless kernel is named {self.name!r}")
        return found


NETWORKS: dict[str, NetworkProfile] = {
    "visa": NetworkProfile("visa", "489537", 16, "A0000000031010", "VISA CREDIT", "visa18", "DNITHE"),
    "mastercard": NetworkProfile(
        "mastercard", "535522", 16, "A0000000041010", "MASTERCARD", "mc16", "DAPLMC"
    ),
    "amex": NetworkProfile("amex", "374245", 15, "A00000002501", "AMERICAN EXPRESS", "mc16", "AXTKNR"),
    "discover": NetworkProfile("discover", "601156", 16, "A0000001523010", "DISCOVER", "visa10", "DSTKNR"),
}
"""The simulated networks (see the module table)."""


class NetworkError(Exception):
    """The token service failed (simulated outage or time-out)."""


@dataclass(frozen=True)
class IssuedToken:
    """What the network returns for a tokenisation request."""

    token_pan: str
    token_ref: str
    token_expiry: str
    """YYMM."""


class TokenServiceSimulator:
    """An in-process network token service."""

    def __init__(
        self,
        profile: NetworkProfile,
        *,
        latency_s: float = 0.0,
        error_rate: float = 0.0,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.profile = profile
        self.latency_s = latency_s
        self.error_rate = error_rate
        self._rng = rng or random.Random()  # noqa: S311 - simulated outages, not secrets
        self._sleep = sleep
        self._lock = threading.Lock()

    def _roll(self) -> float:
        with self._lock:
            return self._rng.random()

    def token_pan(self) -> str:
        """A fresh Luhn-valid token PAN from the token BIN range."""
        body_len = self.profile.length - len(self.profile.token_bin) - 1
        body = "".join(str(secrets.randbelow(10)) for _ in range(body_len))
        partial = self.profile.token_bin + body
        return partial + luhn_check_digit(partial)

    def request_token(self, *, fingerprint: str, funding_expiry: str, now: float) -> IssuedToken:
        """Tokenise a funding card known by its vault fingerprint (the PAN never leaves the vault)."""
        if self.latency_s:
            self._sleep(self.latency_s)
        if self.error_rate and self._roll() < self.error_rate:
            raise NetworkError(f"{self.profile.name} token service unavailable")
        year = time.gmtime(now).tm_year + 3
        month = time.gmtime(now).tm_mon
        token_expiry = f"{year % 100:02d}{month:02d}"
        token_ref = self.profile.ref_prefix + secrets.token_hex(16).upper()
        return IssuedToken(self.token_pan(), token_ref, token_expiry)


DEFAULT_AUTH_TIMEOUT_S = 0.8
"""How long the service waits for an authorization decision (the tap's budget is 500 ms)."""


def network_urls_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{network: base URL}`` of ``hcekit network-sim`` servers from the environment (module docstring)."""
    env = os.environ if environ is None else environ
    urls: dict[str, str] = {}
    for name in NETWORKS:
        url = env.get(f"HCEKIT_NETWORK_URL_{name.upper()}") or env.get("HCEKIT_NETWORK_URL")
        if url:
            urls[name] = url
    return urls


def auth_timeout_from_env(environ: Mapping[str, str] | None = None) -> float:
    """``HCEKIT_NETWORK_TIMEOUT_MS`` in seconds (default :data:`DEFAULT_AUTH_TIMEOUT_S`)."""
    env = os.environ if environ is None else environ
    text = env.get("HCEKIT_NETWORK_TIMEOUT_MS")
    return float(text) / 1000.0 if text else DEFAULT_AUTH_TIMEOUT_S


class NetworkClients:
    """The token services and authorization switches of every network, each behind its breaker.

    ``network_urls`` sends a network's authorizations over HTTP to ``hcekit network-sim``
    (default: from the environment, see the module docstring); the other networks use in-process
    :class:`~tsp_backend.services.netsim.SwitchSimulator` objects in front of ``issuer``
    (default: an :class:`~tsp_backend.services.issuers.IssuerSimulator` in Redis when
    ``redis_client`` is given, else in process, naming accounts under ``issuer_account_secret``).
    """

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        error_rate: float = 0.0,
        fail_max: int = 5,
        reset_timeout: int = 30,
        redis_client: Any = None,
        network_urls: Mapping[str, str] | None = None,
        auth_timeout_s: float | None = None,
        issuer: IssuerSimulator | None = None,
        issuer_account_secret: bytes | None = None,
    ) -> None:
        self.simulators = {
            name: TokenServiceSimulator(profile, latency_s=latency_s, error_rate=error_rate)
            for name, profile in NETWORKS.items()
        }
        self.issuer = (
            issuer if issuer is not None else IssuerSimulator.for_redis(redis_client, issuer_account_secret)
        )
        urls = network_urls_from_env() if network_urls is None else dict(network_urls)
        self.auth_timeout_s = auth_timeout_from_env() if auth_timeout_s is None else auth_timeout_s
        self.switch_simulators: dict[str, SwitchSimulator] = {}
        self.switches: dict[str, Switch] = {}
        for name in NETWORKS:
            if name in urls:
                self.switches[name] = HttpSwitch(urls[name], name)
            else:
                sim = SwitchSimulator(
                    name,
                    self.issuer,
                    latency=Latency(latency_s * 1000, latency_s * 1000),
                    error_rate=error_rate,
                )
                self.switch_simulators[name] = sim
                self.switches[name] = sim
        self.breakers: dict[str, pybreaker.CircuitBreaker] = {}
        self.gates: dict[str, Gate] = {}
        for name in NETWORKS:
            storage: pybreaker.CircuitBreakerStorage
            if redis_client is not None:
                storage = SharedBreakerStorage(
                    pybreaker.STATE_CLOSED, redis_client, namespace=f"hcekit:breaker:{name}"
                )
            else:
                storage = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
            self.breakers[name] = breaker = pybreaker.CircuitBreaker(
                fail_max=fail_max,
                reset_timeout=reset_timeout,
                state_storage=storage,
                name=name,
                throw_new_error_on_trip=False,
            )
            self.gates[name] = Gate(breaker)

    def request_token(
        self, network: str, *, fingerprint: str, funding_expiry: str, now: float
    ) -> IssuedToken:
        """Ask ``network`` for a token; breaker-open and failures become ``NetworkUnavailable``."""
        simulator = self.simulators[network]
        try:
            return self.gates[network].call(
                simulator.request_token,
                fingerprint=fingerprint,
                funding_expiry=funding_expiry,
                now=now,
            )
        except pybreaker.CircuitBreakerError as exc:
            raise NetworkUnavailable(
                f"the {network} token service circuit is open; retry later", network=network
            ) from exc
        except NetworkError as exc:
            raise NetworkUnavailable(
                f"the {network} token service failed; retry later", network=network
            ) from exc

    def authorize(self, network: str, request: IssuerRequest) -> IssuerDecision:
        """The issuer's decision through ``network``'s breaker and switch.

        Raises :class:`~tsp_backend.services.netsim.CircuitOpen` at once when the breaker is
        open, :class:`~tsp_backend.services.netsim.SwitchDown` when the network refused and
        :class:`~tsp_backend.services.netsim.SwitchTimeout` when it did not answer in time.
        """
        try:
            decision: IssuerDecision = self.gates[network].call(
                self.switches[network].authorize, request, self.auth_timeout_s
            )
        except pybreaker.CircuitBreakerError as exc:
            raise CircuitOpen(f"the {network} circuit is open; failing fast") from exc
        return decision

    def status(self, network: str, reference: str) -> IssuerDecision | None:
        """What the issuer recorded for ``reference`` (no breaker: reconciliation probes)."""
        return self.switches[network].status(reference, self.auth_timeout_s)

    def reverse(self, network: str, reference: str) -> IssuerDecision | None:
        """Reverse (or void) ``reference`` at the issuer; the decision it had."""
        return self.switches[network].reverse(reference, self.auth_timeout_s)

    def breaker_states(self) -> dict[str, str]:
        """``{network: "closed" | "open" | "half-open"}``."""
        return {name: str(breaker.current_state) for name, breaker in self.breakers.items()}
