"""The provisioning risk decision: green, yellow or red.

The decision follows the network token services' "tokenization decision" (EMVCo Payment
Tokenisation Specification Technical Framework v2.3 §5.2, ID&V): APPROVED provisions at once,
REQUIRE_ADDITIONAL_AUTHENTICATION needs a one-time code first, DECLINED refuses.

Documented test PANs (all Luhn-valid; any other valid PAN is green)
------------------------------------------------------------------------

=================  ==========  ======  =====================================
PAN                network     colour  decision
=================  ==========  ======  =====================================
4111111111111111   visa        green   APPROVED
4242424242424242   visa        green   APPROVED
5555555555554444   mastercard  green   APPROVED
2223000048400011   mastercard  green   APPROVED (2-series BIN)
378282246310005    amex        green   APPROVED
6011111111111117   discover    green   APPROVED
4012888888881881   visa        yellow  REQUIRE_ADDITIONAL_AUTHENTICATION
5105105105105100   mastercard  yellow  REQUIRE_ADDITIONAL_AUTHENTICATION
371449635398431    amex        yellow  REQUIRE_ADDITIONAL_AUTHENTICATION
6011000990139424   discover    yellow  REQUIRE_ADDITIONAL_AUTHENTICATION
4000000000000002   visa        red     DECLINED
5200828282828210   mastercard  red     DECLINED
340000000000009    amex        red     DECLINED
6011000000000004   discover    red     DECLINED
=================  ==========  ======  =====================================

Besides the table, a device with more than :data:`MAX_ACTIVE_TOKENS_PER_DEVICE` live tokens
makes every further card yellow.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Decision(str, enum.Enum):
    """The three outcomes (EMVCo tokenisation framework naming)."""

    APPROVED = "APPROVED"
    REQUIRE_ADDITIONAL_AUTHENTICATION = "REQUIRE_ADDITIONAL_AUTHENTICATION"
    DECLINED = "DECLINED"

    @property
    def colour(self) -> str:
        """green, yellow or red."""
        return {"APPROVED": "green", "REQUIRE_ADDITIONAL_AUTHENTICATION": "yellow", "DECLINED": "red"}[
            self.value
        ]


YELLOW_PANS = frozenset({"4012888888881881", "5105105105105100", "371449635398431", "6011000990139424"})
"""Test PANs that need a one-time code."""

RED_PANS = frozenset({"4000000000000002", "5200828282828210", "340000000000009", "6011000000000004"})
"""Test PANs that are declined."""

MAX_ACTIVE_TOKENS_PER_DEVICE = 10
"""More live tokens than this on one device turns the decision yellow."""

VERIFICATION_METHODS = ("otp_sms", "otp_email")
"""Methods offered for a yellow decision (codes go to the simulated outbox)."""


@dataclass(frozen=True)
class RiskAssessment:
    """A decision with a reason code that is safe to show and log."""

    decision: Decision
    reason: str


def assess(pan: str, *, live_tokens_on_device: int = 0) -> RiskAssessment:
    """Decide for a validated PAN.

    >>> assess("4111111111111111").decision.colour
    'green'
    >>> assess("4012888888881881").decision.value
    'REQUIRE_ADDITIONAL_AUTHENTICATION'
    >>> assess("4000000000000002").reason
    'issuer_declined'
    """
    if pan in RED_PANS:
        return RiskAssessment(Decision.DECLINED, "issuer_declined")
    if pan in YELLOW_PANS:
        return RiskAssessment(Decision.REQUIRE_ADDITIONAL_AUTHENTICATION, "issuer_requires_idv")
    if live_tokens_on_device >= MAX_ACTIVE_TOKENS_PER_DEVICE:
        return RiskAssessment(Decision.REQUIRE_ADDITIONAL_AUTHENTICATION, "device_token_velocity")
    return RiskAssessment(Decision.APPROVED, "low_risk")
