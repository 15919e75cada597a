"""The authorization's decision on its own: no database, no cache, no service (services/verdict.py).

Cryptograms come from a real hce card personalised with keys derived from an issuer master key;
the decision recomputes them from that key alone.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from tests.tsp_backend.tsp_pay_helpers import applet, in_app_emv
from tsp_backend.services import keys as card_keys
from tsp_backend.services.authorization import parse_tap
from tsp_backend.services.networks import NETWORKS
from tsp_backend.services.verdict import (
    NO_MATCH,
    AuthorizationRequest,
    Decline,
    ResponseCode,
    Tap,
    TokenSnapshot,
    decide,
)

MASTER_KEYS = {"489537": bytes(range(16))}
TOKEN_PAN = "4895370012003478"
EUR = 978


def _profile(**overrides: Any) -> dict[str, Any]:
    luks = card_keys.luk_batch(
        MASTER_KEYS, TOKEN_PAN, "00", first_index=1, count=3, max_uses=10, not_after=int(time.time()) + 3600
    )
    return {
        "version": 1, "kernel": "visa", "token_ref": "DNITHE0001", "pan": TOKEN_PAN, "psn": "00",
        "expiry": "3912", "aid": "A0000000031010", "label": "VISA CREDIT", "priority": 1,
        "kernel_id": "03", "cvn": "visa18", "dki": 1, "issuer_country": "0840", "currency": "0840",
        "cvm_limit": 5000, "atc": 0, "luks": luks, **overrides,
    }


def _token(**overrides: Any) -> TokenSnapshot:
    fields: dict[str, Any] = {
        "card_id": 7, "user_id": 3, "status": "ACTIVE", "network": "visa", "token_ref": "DNITHE0001",
        "token_expiry": "3912", "psn": "00", "vault_id": 11, "channels": None, "merchants": None,
        "blocked_mccs": (), "batches": ((1, 3, 10, int(time.time()) + 3600),),
    }
    return TokenSnapshot(**{**fields, **overrides})


def _tap(amount: int, **card: Any) -> Tap:
    tap = parse_tap(bytes.fromhex(in_app_emv(applet(_profile(), **card), amount)))
    assert isinstance(tap, Tap), tap
    return tap


def _decide(tap: Tap, token: TokenSnapshot | None, amount: int, **request: Any) -> Any:
    return decide(
        tap, token, AuthorizationRequest(emv=b"", amount=amount, currency="EUR", **request),
        currency=EUR, master_keys=MASTER_KEYS, now=time.time(),
    )


def test_genuine_cryptogram_goes_to_the_issuer() -> None:
    verdict = _decide(_tap(1250), _token(), 1250)
    assert verdict.decline is None
    assert verdict.token is not None and verdict.token.card_id == 7
    assert (verdict.atc, verdict.luk_index, verdict.max_uses) == (1, 1, 10)
    assert verdict.arpc_of is not None and len(verdict.arpc_of("00")) > 0


def test_forged_cryptogram_and_unknown_token_say_the_same_and_name_no_card() -> None:
    tap = _tap(1250)
    forged = dataclasses.replace(tap, tlvs={**tap.tlvs, 0x9F26: bytes(8)})
    for verdict in (_decide(forged, _token(), 1250), _decide(tap, None, 1250)):
        assert verdict.decline == Decline(ResponseCode.SUSPECTED_FRAUD, NO_MATCH)
        assert verdict.token is None


def test_in_app_payment_of_another_card_is_14() -> None:
    verdict = _decide(_tap(1250), _token(), 1250, card_id=8)
    assert verdict.decline is not None and verdict.decline.code is ResponseCode.INVALID_CARD


@pytest.mark.parametrize(
    ("token", "request_fields", "code", "reason"),
    [
        ({"status": "SUSPENDED"}, {}, "57", "the token is SUSPENDED"),
        ({"token_expiry": "2001"}, {}, "54", "the token has expired"),
        ({"channels": ("web",)}, {}, "57", "the token may not pay in the contactless channel"),
        ({"blocked_mccs": ("5814",)}, {"mcc": "5814"}, "57",
         "the token may not pay merchants of category 5814"),
        ({"batches": ((1, 3, 10, 0),)}, {}, "54", "the limited-use key has expired"),
        ({"batches": ((4, 3, 10, 2**40),)}, {}, "59", "the limited-use key was never issued to this token"),
    ],
)
def test_policy_refusals_come_after_the_cryptogram(
    token: dict[str, Any], request_fields: dict[str, Any], code: str, reason: str
) -> None:
    verdict = _decide(_tap(1250), _token(**token), 1250, **request_fields)
    assert verdict.decline == Decline(ResponseCode(code), reason)
    assert verdict.token is not None  # the refusal is written against the verified token


def test_amount_must_be_the_cryptograms() -> None:
    verdict = _decide(_tap(1250), _token(), 1251)
    assert verdict.decline == Decline(
        ResponseCode.SUSPECTED_FRAUD, "the amount differs from the amount in the cryptogram"
    )


def test_cvm_limit_is_the_networks_card_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    tap = _tap(6000, cvm_limit=1_000_000)
    verdict = _decide(tap, _token(), 6000)
    assert verdict.decline is not None and verdict.decline.code is ResponseCode.CARDHOLDER_VERIFICATION
    monkeypatch.setitem(NETWORKS, "visa", dataclasses.replace(NETWORKS["visa"], cvm_limit=6000))
    assert _decide(tap, _token(), 6000).decline is None


def test_a_block_that_does_not_parse_is_30() -> None:
    assert parse_tap(b"\x9f\x26") == Decline(ResponseCode.FORMAT_ERROR, "the EMV data is not valid BER-TLV")


def test_a_pan_that_disagrees_with_its_track_2_is_30() -> None:
    """5A names one account and 57 another: the block is refused before any token is looked up."""
    block = bytes.fromhex(in_app_emv(applet(_profile()), 1250))
    tap = parse_tap(block)
    assert not isinstance(tap, Decline)
    other = tap.pan[:-1] + ("0" if tap.pan[-1] != "0" else "1")
    with_5a = block + bytes([0x5A, len(other) // 2]) + bytes.fromhex(other)
    assert parse_tap(with_5a) == Decline(
        ResponseCode.FORMAT_ERROR, "the PAN (5A) and the PAN of Track 2 (57) differ")
    same = block + bytes([0x5A, len(tap.pan) // 2]) + bytes.fromhex(tap.pan)
    assert not isinstance(parse_tap(same), Decline)


def test_response_codes_are_iso_8583_field_39() -> None:
    assert [code.value for code in ResponseCode] == [
        "00", "05", "14", "1A", "30", "51", "54", "57", "59", "61", "65", "91",
    ]
