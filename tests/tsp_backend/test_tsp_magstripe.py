"""The token service authorizes Mastercard mag-stripe mode taps by verifying the CVC3 in Track 2."""

from __future__ import annotations

from tests.tsp_backend.tsp_helpers import Wallet
from tests.tsp_backend.tsp_pay_helpers import FlaskHost, applet, provision_profile, tap


def test_magstripe_tap_is_approved(wallet: Wallet, host: FlaskHost) -> None:
    """A provisioned Mastercard token in mag-stripe mode taps; the service verifies CVC3 and approves."""
    _, profile = provision_profile(wallet, "5555555555554444")
    card = applet(profile, magstripe=True)
    result = tap(card, 1250, host)
    assert result.outcome.cryptogram == "CVC3"
    answer = result.outcome.host
    assert answer is not None and answer.approved, answer


def test_magstripe_with_a_changed_cvc3_is_declined(wallet: Wallet, host: FlaskHost) -> None:
    """A Track 2 whose CVC3 digits were changed on the way is declined 59 (suspected fraud)."""
    _, profile = provision_profile(wallet, "5555555555554444")
    card = applet(profile, magstripe=True)
    original = card.process

    def relay(command: bytes) -> bytes:
        response = original(command)
        if command[1] == 0x2A:
            at = response.index(b"\x9f\x61\x02") + 3
            return response[:at] + bytes([response[at] ^ 0x01]) + response[at + 1:]
        return response

    card.process = relay  # type: ignore[method-assign]
    answer = tap(card, 1250, host).outcome.host
    assert answer is not None and not answer.approved and answer.response_code == "59", answer


def test_magstripe_replayed_track_is_declined(wallet: Wallet, host: FlaskHost) -> None:
    """The same Track 2 sent twice (a copied mag-stripe) is refused the second time: its ATC was used."""
    _, profile = provision_profile(wallet, "5555555555554444")
    result = tap(applet(profile, magstripe=True), 1250, host)
    assert result.outcome.host is not None and result.outcome.host.approved
    again = host.authorize(result.request or {})
    assert not again.approved
