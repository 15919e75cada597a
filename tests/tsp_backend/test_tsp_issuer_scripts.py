"""Scripts the token service makes after an authorization are applied by the provisioned card."""

from __future__ import annotations

import pytest

from cryptogram.cvn import profile as cvn_profile
from terminal.outcome import Outcome
from tests.tsp_backend.tsp_helpers import Wallet
from tests.tsp_backend.tsp_pay_helpers import FlaskHost, applet, provision_profile, tap
from tsp_backend.config import Config
from tsp_backend.services.issuer_scripts import script_for


@pytest.mark.parametrize(("pan", "kernel"), [
    ("4111111111111111", "visa"), ("5555555555554444", "mastercard"),
])
def test_service_scripts_are_applied_by_the_card(config: Config, wallet: Wallet, host: FlaskHost, pan: str,
                                                 kernel: str) -> None:
    """After an approved tap: the service's CVM-limit script is applied, its block script blocks."""
    _, profile = provision_profile(wallet, pan)
    card = applet(profile)
    out = tap(card, 1250, host).outcome
    assert out.outcome is Outcome.APPROVED
    index = cvn_profile(profile["cvn"]).parse_iad(out.data[0x9F10]).luk_index
    assert index is not None
    common = {"token_pan": profile["pan"], "psn": profile["psn"], "network_kernel": kernel,
              "luk_index": index, "atc": out.data[0x9F36], "arqc": out.data[0x9F26]}
    keys = config.issuer_master_keys
    assert card.process(script_for(keys, action="cvm_limit", amount=25000, **common)) == b"\x90\x00"
    assert card.cvm_limit == 25000
    assert card.process(script_for(keys, action="block", **common)) == b"\x90\x00"
    assert card.blocked
