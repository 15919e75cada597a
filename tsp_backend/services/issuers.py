"""The issuers behind the card networks, simulated: accounts, limits and decisions.

After the token service has checked a cryptogram it asks the funding card's issuer for a
decision (ISO 8583 0100 authorization request / 0110 response). The simulated issuer keeps,
per account (the funding PAN, known only by a keyed hash), the amount already authorised and
the number of recent requests, and decides in this order:

=====  ==========================================  ===========================================
code   meaning (ISO 8583 field 39)                 rule
=====  ==========================================  ===========================================
05     do not honour                               the account is marked "do not honour"
61     exceeds withdrawal amount limit             amount > the per-transaction limit
65     exceeds withdrawal frequency limit          more than ``velocity_limit`` requests in
                                                   ``velocity_window_s`` seconds
51     not sufficient funds                        authorised so far + amount > balance
00     approved                                    otherwise (the amount is held)
=====  ==========================================  ===========================================

Every decision is recorded under the request's ``reference`` — the token reference and the
ATC, unique per cryptogram — and a second request with the same reference gets the recorded
decision back: a retry after a time-out is never charged twice. :meth:`IssuerSimulator.reverse`
releases an approved hold (ISO 8583 0400 reversal) or, for a reference the issuer never saw,
records a void so that a late copy of the request is refused.

Test accounts (funding PANs; every other PAN gets :data:`DEFAULT_ACCOUNT`)
--------------------------------------------------------------------------

================  ==========  ===================================================
PAN               network     behaviour
================  ==========  ===================================================
4000000000009995  visa        balance 0: every purchase is 51
4000000000000127  visa        do not honour: 05
4000000000000614  visa        per-transaction limit 1,000 minor units: 61 above
4000000000000655  visa        velocity limit 2 per hour: the third request is 65
5454545454545454  mastercard  balance 10,000 minor units
================  ==========  ===================================================

State lives in a :class:`Ledger`: in process (:class:`MemoryLedger`) or in Redis
(:class:`RedisLedger`, one Lua script per decision, so several service processes and the
HTTP simulator agree).

The ledger names an account by HMAC-SHA256 of its PAN under a secret key
(:func:`account_key`), never by a plain hash: a PAN has too little entropy (BIN and last four
digits are often known, leaving about 10^6 candidates once the Luhn digit is checked), so an
unkeyed digest found in Redis gives the PAN back in seconds. Processes that share one Redis
ledger must share the key (the service derives it from its secret key); a simulator without
one draws a random key, which suits a ledger that lives only in its own process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

APPROVED = "00"
DO_NOT_HONOUR = "05"
INSUFFICIENT_FUNDS = "51"
EXCEEDS_AMOUNT = "61"
EXCEEDS_FREQUENCY = "65"
VOIDED = "VD"
"""The recorded state of a reference that was reversed before the issuer saw it."""


@dataclass(frozen=True)
class IssuerAccount:
    """An account's rules: balance and limits in minor units, velocity per window."""

    balance: int = 1_000_000_00
    per_transaction_limit: int = 5_000_00
    velocity_limit: int = 1000
    velocity_window_s: int = 3600
    do_not_honour: bool = False


DEFAULT_ACCOUNT = IssuerAccount()
"""The rules of any account not in :data:`TEST_ACCOUNTS`."""

TEST_ACCOUNTS: dict[str, IssuerAccount] = {
    "4000000000009995": IssuerAccount(balance=0),
    "4000000000000127": IssuerAccount(do_not_honour=True),
    "4000000000000614": IssuerAccount(per_transaction_limit=1000),
    "4000000000000655": IssuerAccount(velocity_limit=2),
    "5454545454545454": IssuerAccount(balance=10_000),
}
"""The documented test accounts (module table)."""


@dataclass(frozen=True)
class IssuerRequest:
    """What the issuer sees: the funding PAN (never logged), amount, currency and a reference."""

    reference: str
    pan: str
    amount: int
    currency: str
    merchant_id: str = ""
    mcc: str = ""

    def __repr__(self) -> str:
        return (
            f"IssuerRequest(reference={self.reference!r}, amount={self.amount}, currency={self.currency!r})"
        )


@dataclass(frozen=True)
class IssuerDecision:
    """The issuer's answer: response code, authorization code (approvals only), reason."""

    code: str
    auth_code: str | None = None
    reason: str = ""

    @property
    def approved(self) -> bool:
        """Whether the code is 00."""
        return self.code == APPROVED

    def to_json(self) -> dict[str, Any]:
        """The wire form of the HTTP simulator."""
        return {"code": self.code, "authCode": self.auth_code, "reason": self.reason}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> IssuerDecision:
        """The inverse of :meth:`to_json`."""
        return cls(str(doc["code"]), doc.get("authCode"), str(doc.get("reason") or ""))


REASONS: dict[str, str] = {
    APPROVED: "approved by the issuer",
    DO_NOT_HONOUR: "the issuer declined (do not honour)",
    INSUFFICIENT_FUNDS: "insufficient funds",
    EXCEEDS_AMOUNT: "the amount exceeds the issuer's per-transaction limit",
    EXCEEDS_FREQUENCY: "too many transactions in a short time (issuer velocity limit)",
    VOIDED: "the transaction was reversed before the issuer saw it",
}
"""A reason phrase per issuer response code."""


def account_key(pan: str, secret: bytes) -> str:
    """The ledger's name of an account: HMAC-SHA256 of the PAN under ``secret`` (RFC 2104), 128 bits.

    The ledger never holds a PAN, nor anything from which one can be found without ``secret``.
    """
    return hmac.new(secret, pan.encode(), hashlib.sha256).hexdigest()[:32]


def new_auth_code() -> str:
    """A 6-character authorization identification response (ISO 8583 field 38)."""
    return secrets.token_hex(3).upper()


class Ledger(Protocol):
    """Atomic issuer state: decide once per reference, look up, reverse."""

    def decide(self, reference: str, account: str, amount: int, rules: IssuerAccount, auth_code: str) -> str:
        """Record and return ``"<code>:<auth code>"`` (the recorded one if the reference is known)."""

    def lookup(self, reference: str) -> str | None:
        """The recorded ``"<code>:<auth code>"`` of a reference, or ``None``."""

    def reverse(self, reference: str) -> str | None:
        """Release an approved hold or void an unknown reference; the state before, or ``None``."""


class MemoryLedger:
    """A :class:`Ledger` in process (one lock; velocity windows by the monotonic clock)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._decisions: dict[str, tuple[str, str, int]] = {}
        self._spent: dict[str, int] = {}
        self._velocity: dict[str, tuple[float, int]] = {}

    def decide(self, reference: str, account: str, amount: int, rules: IssuerAccount, auth_code: str) -> str:
        """See :meth:`Ledger.decide`."""
        with self._lock:
            known = self._decisions.get(reference)
            if known is not None:
                return known[0]
            if rules.do_not_honour:
                code = DO_NOT_HONOUR
            elif amount > rules.per_transaction_limit:
                code = EXCEEDS_AMOUNT
            else:
                now = self._clock()
                started, count = self._velocity.get(account, (now, 0))
                if now - started >= rules.velocity_window_s:
                    started, count = now, 0
                self._velocity[account] = (started, count + 1)
                spent = self._spent.get(account, 0)
                if count + 1 > rules.velocity_limit:
                    code = EXCEEDS_FREQUENCY
                elif spent + amount > rules.balance:
                    code = INSUFFICIENT_FUNDS
                else:
                    code = APPROVED
                    self._spent[account] = spent + amount
            result = f"{code}:{auth_code if code == APPROVED else ''}"
            self._decisions[reference] = (result, account, amount)
            return result

    def lookup(self, reference: str) -> str | None:
        """See :meth:`Ledger.lookup`."""
        with self._lock:
            known = self._decisions.get(reference)
            return known[0] if known else None

    def reverse(self, reference: str) -> str | None:
        """See :meth:`Ledger.reverse`."""
        with self._lock:
            known = self._decisions.get(reference)
            self._decisions[reference] = (f"{VOIDED}:", "", 0)
            if known is None or known[0].startswith(VOIDED):
                return None
            result, account, amount = known
            if result.startswith(APPROVED + ":"):
                self._spent[account] = self._spent.get(account, 0) - amount
            return result


_DECIDE_LUA = """
local prior = redis.call('GET', KEYS[1])
if prior then return prior end
local amount = tonumber(ARGV[1])
local code = '00'
if ARGV[7] == '1' then code = '05'
elseif amount > tonumber(ARGV[3]) then code = '61'
else
  local n = redis.call('INCR', KEYS[3])
  if n == 1 then redis.call('EXPIRE', KEYS[3], ARGV[5]) end
  if n > tonumber(ARGV[4]) then code = '65'
  else
    local spent = tonumber(redis.call('GET', KEYS[2]) or '0')
    if spent + amount > tonumber(ARGV[2]) then code = '51'
    else redis.call('INCRBY', KEYS[2], amount) end
  end
end
local auth = ''
if code == '00' then auth = ARGV[6] end
local result = code .. ':' .. auth
redis.call('SET', KEYS[1], result, 'EX', ARGV[8])
redis.call('SET', KEYS[1] .. ':hold', KEYS[2] .. '|' .. ARGV[1], 'EX', ARGV[8])
return result
"""

_REVERSE_LUA = """
local prior = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], 'VD:', 'EX', ARGV[1])
if not prior then return false end
if string.sub(prior, 1, 3) == '00:' then
  local hold = redis.call('GET', KEYS[1] .. ':hold')
  if hold then
    local sep = string.find(hold, '|', 1, true)
    redis.call('DECRBY', string.sub(hold, 1, sep - 1), tonumber(string.sub(hold, sep + 1)))
  end
end
return prior
"""


class RedisLedger:
    """A :class:`Ledger` in Redis: each decision and reversal is one atomic Lua script."""

    def __init__(self, client: Any, prefix: str = "hcekit:issuer:", ttl_s: int = 7 * 24 * 3600) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_s = ttl_s
        self._decide = client.register_script(_DECIDE_LUA)
        self._reverse = client.register_script(_REVERSE_LUA)

    def decide(self, reference: str, account: str, amount: int, rules: IssuerAccount, auth_code: str) -> str:
        """See :meth:`Ledger.decide`."""
        keys = [
            self.prefix + "ref:" + reference,
            self.prefix + "spent:" + account,
            self.prefix + "vel:" + account,
        ]
        args = [
            amount,
            rules.balance,
            rules.per_transaction_limit,
            rules.velocity_limit,
            rules.velocity_window_s,
            auth_code,
            "1" if rules.do_not_honour else "0",
            self.ttl_s,
        ]
        return _text(self._decide(keys=keys, args=args)) or ""

    def lookup(self, reference: str) -> str | None:
        """See :meth:`Ledger.lookup`."""
        return _text(self.client.get(self.prefix + "ref:" + reference))

    def reverse(self, reference: str) -> str | None:
        """See :meth:`Ledger.reverse`."""
        prior = _text(self._reverse(keys=[self.prefix + "ref:" + reference], args=[self.ttl_s]))
        return None if prior is None or prior.startswith(VOIDED) else prior


def _text(value: Any) -> str | None:
    if value is None or value is False:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _decision(recorded: str) -> IssuerDecision:
    code, _, auth = recorded.partition(":")
    return IssuerDecision(code, auth or None, REASONS.get(code, "declined by the issuer"))


class IssuerSimulator:
    """The issuers of every simulated network: rules per account, state in a :class:`Ledger`."""

    def __init__(
        self,
        ledger: Ledger | None = None,
        accounts: dict[str, IssuerAccount] | None = None,
        *,
        account_secret: bytes | None = None,
    ) -> None:
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self.accounts = dict(TEST_ACCOUNTS if accounts is None else accounts)
        self._account_secret = account_secret if account_secret is not None else secrets.token_bytes(32)

    @classmethod
    def for_redis(cls, redis_client: Any | None, account_secret: bytes | None = None) -> IssuerSimulator:
        """A simulator on Redis when a client is given, else in process (module docstring on the key)."""
        ledger: Ledger = RedisLedger(redis_client) if redis_client is not None else MemoryLedger()
        return cls(ledger, account_secret=account_secret)

    def account(self, pan: str) -> str:
        """The ledger's name of the account of ``pan`` (:func:`account_key` under this simulator's key)."""
        return account_key(pan, self._account_secret)

    def rules(self, pan: str) -> IssuerAccount:
        """The account's rules (the module table, else :data:`DEFAULT_ACCOUNT`)."""
        return self.accounts.get(pan, DEFAULT_ACCOUNT)

    def decide(self, request: IssuerRequest) -> IssuerDecision:
        """Decide once per reference (module table); a repeated reference gets the first decision."""
        recorded = self.ledger.decide(
            request.reference,
            self.account(request.pan),
            request.amount,
            self.rules(request.pan),
            new_auth_code(),
        )
        return _decision(recorded)

    def status(self, reference: str) -> IssuerDecision | None:
        """The decision recorded for ``reference``, or ``None`` if the issuer never saw it."""
        recorded = self.ledger.lookup(reference)
        return None if recorded is None else _decision(recorded)

    def reverse(self, reference: str) -> IssuerDecision | None:
        """Reverse ``reference`` (release the hold, or void it); the decision it had, if any."""
        prior = self.ledger.reverse(reference)
        return None if prior is None else _decision(prior)
