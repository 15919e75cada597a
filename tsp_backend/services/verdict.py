"""The authorization's decision: a verified cryptogram and the token's policy -> a verdict.

Pure: no database, no cache, no clock of its own. :class:`~tsp_backend.services.authorization.
AuthorizationService` reads the token (:class:`TokenSnapshot`) and parses the block
(:class:`Tap`), then :func:`decide` says whether the issuer is to be asked or which refusal is
written (:class:`Verdict`); what is written, and when, is
:mod:`tsp_backend.services.payment_rows`'s.

Why the checks run in this order
--------------------------------
An authorization is a chain of refusals, cheapest and least revealing first, and nothing is
written that a forger could spend or read. The EMV block is decoded and its required tags
checked; the token is looked up by the token PAN the card sent (Track 2 equivalent data 57,
else 5A) — never a funding PAN. Before anything about that token is said or written, its
cryptogram must verify: the ARQC is recomputed with the token's limited-use key (LUK) and
compared in constant time. A token PAN nobody issued and a cryptogram that does not verify get
the same answer (59, :data:`NO_MATCH`), and the row they leave names no card — so a terminal
that sends ``5A`` with someone else's token PAN learns nothing and writes nothing into that
person's history. An in-app payment names its card: the cryptogram must be that card's, or the
refusal (14) is written against the requester's own card. Only then come the token's state,
expiry, domain controls, the key batch, the amount and currency *inside the cryptogram data*
against the request's (a terminal cannot authorise one amount with a cryptogram made for
another) and the consumer device CVM against the card profile's CVM limit
(:attr:`~tsp_backend.services.networks.NetworkProfile.cvm_limit`). None of these writes anything.

Response codes (ISO 8583 field 39): :class:`ResponseCode`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum

from cryptogram.cvn import CVN
from cryptogram.cvn import profile as cvn_profile
from cryptogram.errors import CryptogramError
from cryptogram.luk import derive_luk
from tsp_backend.services import keys as card_keys
from tsp_backend.services import magstripe
from tsp_backend.services.lifecycle import TokenState
from tsp_backend.services.networks import NETWORKS


class ResponseCode(str, Enum):
    """The response codes this service answers (ISO 8583 field 39): the code, and when.

    ====  =====================================  ==============================================
    code  meaning                                when
    ====  =====================================  ==============================================
    00    approved                               the issuer approved
    05    do not honour                          issuer refusal; the card sent no ARQC
    14    invalid card number                    the cryptogram is not from the card the in-app
                                                 payment names; the token has no funding card
    1A    additional customer authentication     amount above the CVM limit without a consumer
          required                               device CVM (Visa CTQ byte 2 bit 8; Mastercard
                                                 CVR byte 1 bits 3 and 1, or DF4B byte 2 bit 5)
    30    format error                           the EMV block does not decode or lacks a tag
    51    not sufficient funds                   issuer
    54    expired card                           the token or its limited-use key has expired
    57    transaction not permitted              token not ACTIVE; channel, merchant or MCC
                                                 outside the token's domain controls
    59    suspected fraud                        no token has this token PAN, or the cryptogram
                                                 does not verify; ATC replayed or out of the
                                                 window; amount or currency differ from the
                                                 cryptogram's; LUK index not issued to the token
    61    exceeds amount limit                   issuer per-transaction limit
    65    exceeds frequency limit                issuer velocity; the LUK has made ``max_uses``
                                                 cryptograms already
    91    issuer or switch inoperative           breaker open, network down, or no answer in
                                                 time (then the transaction is ``in_doubt``)
    ====  =====================================  ==============================================
    """

    APPROVED = "00"
    DO_NOT_HONOUR = "05"
    INVALID_CARD = "14"
    CARDHOLDER_VERIFICATION = "1A"
    FORMAT_ERROR = "30"
    INSUFFICIENT_FUNDS = "51"
    EXPIRED = "54"
    NOT_PERMITTED = "57"
    SUSPECTED_FRAUD = "59"
    AMOUNT_LIMIT = "61"
    FREQUENCY_LIMIT = "65"
    ISSUER_INOPERATIVE = "91"


NO_MATCH = "the cryptogram does not verify"
"""The one reason given for a token PAN nobody issued and for a cryptogram that does not verify."""


@dataclass(frozen=True)
class Decline:
    """A refusal: its response code and the reason the answer gives."""

    code: ResponseCode
    reason: str


@dataclass(frozen=True)
class AuthorizationRequest:
    """One authorization: the EMV block and the payment's amount, merchant and channel."""

    emv: bytes = field(repr=False)
    amount: int
    currency: str
    channel: str = "contactless"
    merchant_id: str | None = None
    merchant_name: str | None = None
    mcc: str | None = None
    terminal_id: str | None = None
    card_id: int | None = None
    """In-app: the card the user chose (the cryptogram must be that token's)."""
    api_key_id: int | None = None


@dataclass(frozen=True)
class Tap:
    """A decoded field-55 block: its data objects, the token PAN, the amount and currency in it."""

    tlvs: Mapping[int, bytes]
    pan: str
    mag_stripe: bool
    """No ARQC (9F26) but a CVC3 (9F61): Track 2's CVC3 is checked instead."""
    amount: int | None
    """9F02 as a number (``None``: absent or not BCD)."""
    currency: int | None
    """5F2A as a number (``None``: absent or not BCD)."""


@dataclass(frozen=True)
class TokenSnapshot:
    """What authorization needs of a token, cached in the store (no PAN, no key)."""

    card_id: int
    user_id: int
    status: str
    network: str
    token_ref: str
    token_expiry: str
    psn: str
    vault_id: int
    channels: tuple[str, ...] | None
    merchants: tuple[str, ...] | None
    blocked_mccs: tuple[str, ...]
    batches: tuple[tuple[int, int, int, int], ...]
    """(first index, count, max uses, not after) of every key batch issued."""
    issuer_actions: bool = False
    """Whether an issuer action waits for the token's next approval
    (:mod:`~tsp_backend.services.issuer_actions`): only then does an approval bind one."""

    def to_json(self) -> str:
        """The cached form."""
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: bytes | str) -> TokenSnapshot:
        """The inverse of :meth:`to_json`."""
        doc = json.loads(text)
        for name in ("channels", "merchants"):
            if doc[name] is not None:
                doc[name] = tuple(doc[name])
        doc["blocked_mccs"] = tuple(doc["blocked_mccs"])
        doc["batches"] = tuple(tuple(b) for b in doc["batches"])
        return cls(**doc)

    def batch_of(self, index: int) -> tuple[int, int, int, int] | None:
        """The key batch that issued LUK ``index``, or ``None``."""
        for batch in self.batches:
            if batch[0] <= index < batch[0] + batch[1]:
                return batch
        return None


@dataclass(frozen=True)
class Verdict:
    """What :func:`decide` found: a refusal, or a cryptogram to send to the issuer.

    ``token`` is set once the cryptogram verified: from then on rows are written against it.
    """

    decline: Decline | None
    token: TokenSnapshot | None = None
    atc: int | None = None
    luk_index: int | None = None
    max_uses: int = 0
    arpc_of: Callable[[str], bytes] | None = None
    """The ARPC for a response code (ARQC taps; a mag-stripe tap has none)."""


def device_cvm_performed(cvn: CVN, tlvs: Mapping[int, bytes], cvr: bytes) -> bool:
    """Whether the phone verified its holder (:class:`ResponseCode`, code 1A).

    Visa: CTQ (9F6C) byte 2 bit 8 "Consumer Device CVM Performed" (EMV Contactless Book C-3
    Annex A). Mastercard: CVR byte 1 bits 3 and 1 (inside the cryptogram) or POS Cardholder
    Interaction Information (DF4B) byte 2 bit 5 "OD-CVM verification successful" (Book C-2).
    """
    if cvn.network == "visa":
        ctq = tlvs.get(0x9F6C, b"")
        return len(ctq) >= 2 and bool(ctq[1] & 0x80)
    if cvr and cvr[0] & 0x05 == 0x05:
        return True
    pcii = tlvs.get(0xDF4B, b"")
    return len(pcii) >= 2 and bool(pcii[1] & 0x10)


def decide(
    tap: Tap,
    token: TokenSnapshot | None,
    request: AuthorizationRequest,
    *,
    currency: int,
    master_keys: Mapping[str, bytes],
    now: float,
) -> Verdict:
    """The verdict on ``tap`` from ``token`` (the one its PAN names, or ``None``) at ``now``.

    ``currency`` is the request's currency as its ISO 4217 number.
    """
    if request.card_id is not None and (token is None or token.card_id != request.card_id):
        return Verdict(Decline(ResponseCode.INVALID_CARD, "the cryptogram was not made by the chosen card"))
    if token is None:
        return Verdict(Decline(ResponseCode.SUSPECTED_FRAUD, NO_MATCH))
    tmk = card_keys.token_master_key(master_keys, tap.pan, token.psn)
    verified = _verify_cvc3(tap, token, tmk, now) if tap.mag_stripe else _verify_arqc(tap, token, tmk)
    if isinstance(verified, Decline):
        return Verdict(verified)
    luk_index, atc, arpc_of, cvm_done = verified
    batch = token.batch_of(luk_index)
    found = Verdict(None, token, atc, luk_index, batch[2] if batch else 0, arpc_of)
    refusal = _policy(tap, token, request, currency, batch, cvm_done, now)
    return found if refusal is None else replace(found, decline=refusal)


_Verified = tuple[int, int, Callable[[str], bytes] | None, bool]
"""(LUK index, ATC, the ARPC rule, whether the holder verified on the phone)."""


def _verify_arqc(tap: Tap, token: TokenSnapshot, tmk: bytes) -> _Verified | Decline:
    """The ARQC recomputed under the LUK the IAD names (EMV 4.4 Book 2 §8.1)."""
    tlvs = tap.tlvs
    cvn = cvn_profile(NETWORKS[token.network].cvn)
    try:
        iad = cvn.parse_iad(tlvs[0x9F10])
    except CryptogramError:
        return Decline(ResponseCode.SUSPECTED_FRAUD, NO_MATCH)
    luk_index = iad.luk_index
    if iad.cvn != cvn.number or luk_index is None:
        return Decline(ResponseCode.SUSPECTED_FRAUD, NO_MATCH)
    luk = derive_luk(tmk, luk_index)
    arqc = tlvs[0x9F26]
    try:
        genuine = cvn.verify(luk, tlvs, arqc)
    except CryptogramError:
        genuine = False
    if not genuine:
        return Decline(ResponseCode.SUSPECTED_FRAUD, NO_MATCH)

    def arpc_of(code: str) -> bytes:
        return cvn.issuer_authentication_data(luk, tlvs, arqc, arc=code.encode("ascii"))

    atc = int.from_bytes(tlvs[0x9F36], "big")
    return luk_index, atc, arpc_of, device_cvm_performed(cvn, tlvs, iad.cvr)


def _verify_cvc3(tap: Tap, token: TokenSnapshot, tmk: bytes, now: float) -> _Verified | Decline:
    """The mag-stripe mode check: the CVC3 in Track 2 (:mod:`tsp_backend.services.magstripe`).

    As for an ARQC, nothing about the token is said before the CVC3 verifies; there is no ARPC,
    and a mag-stripe tap carries no CVM limit check.
    """
    found = magstripe.find_key(tap.tlvs, tmk=tmk, batches=token.batches, now=now)
    if isinstance(found, str):
        return Decline(ResponseCode.SUSPECTED_FRAUD, NO_MATCH)
    luk_index, atc = found
    return luk_index, atc, None, True


def _policy(
    tap: Tap,
    token: TokenSnapshot,
    request: AuthorizationRequest,
    currency: int,
    batch: tuple[int, int, int, int] | None,
    cvm_done: bool,
    now: float,
) -> Decline | None:
    """After the cryptogram verified: the key batch, the token's state, expiry, domain controls,
    the amount and currency in the cryptogram, the CVM limit — the first refusal, if any."""
    fraud = ResponseCode.SUSPECTED_FRAUD
    if not tap.mag_stripe:
        if batch is None:
            return Decline(fraud, "the limited-use key was never issued to this token")
        if batch[3] < now:
            return Decline(ResponseCode.EXPIRED, "the limited-use key has expired")
    refusal = _token_policy(token, request, now)
    if refusal is not None:
        return refusal
    tlvs, sent = tap.tlvs, "the terminal sent" if tap.mag_stripe else "in the cryptogram"
    if (0x9F02 in tlvs or not tap.mag_stripe) and tap.amount != request.amount:
        return Decline(fraud, f"the amount differs from the amount {sent}")
    if (0x5F2A in tlvs or not tap.mag_stripe) and tap.currency != currency:
        return Decline(fraud, f"the currency differs from the currency {sent}")
    if request.amount > NETWORKS[token.network].cvm_limit and not cvm_done:
        reason = "the amount needs the holder to verify on the phone"
        return Decline(ResponseCode.CARDHOLDER_VERIFICATION, reason)
    return None


def _token_policy(token: TokenSnapshot, request: AuthorizationRequest, now: float) -> Decline | None:
    """The token's state, expiry and domain controls."""
    refused = ResponseCode.NOT_PERMITTED
    if token.status != TokenState.ACTIVE.value:
        return Decline(refused, f"the token is {token.status}")
    if expired(token.token_expiry, now):
        return Decline(ResponseCode.EXPIRED, "the token has expired")
    if token.channels is not None and request.channel not in token.channels:
        return Decline(refused, f"the token may not pay in the {request.channel} channel")
    if token.merchants is not None and (request.merchant_id or "") not in token.merchants:
        return Decline(refused, "the token may not pay this merchant")
    if request.mcc and request.mcc in token.blocked_mccs:
        return Decline(refused, f"the token may not pay merchants of category {request.mcc}")
    return None


def expired(expiry: str, now: float) -> bool:
    """Whether a YYMM expiry is before the month of ``now`` (a card is valid through its month)."""
    if len(expiry) != 4 or not expiry.isdigit():
        return True
    moment = time.gmtime(now)
    return (2000 + int(expiry[:2]), int(expiry[2:])) < (moment.tm_year, moment.tm_mon)
