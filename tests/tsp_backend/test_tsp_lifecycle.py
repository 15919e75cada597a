"""The token lifecycle: the transition table, and a hypothesis state machine over the real API."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.tsp_backend.tsp_helpers import FAST, make_wallet
from tsp_backend.app import create_app
from tsp_backend.config import Config
from tsp_backend.errors import InvalidTransition, ValidationFailed
from tsp_backend.services.lifecycle import REASONS, TRANSITIONS, TokenEvent, TokenState, next_state


@pytest.mark.parametrize(
    ("state", "event", "reason", "expected"),
    [
        ("INACTIVE", "activate", "APPROVED", "ACTIVE"),
        ("INACTIVE", "deactivate", "ID_AND_V_FAILED", "DEACTIVATED"),
        ("ACTIVE", "suspend", "DEVICE_LOST", "SUSPENDED"),
        ("ACTIVE", "deactivate", "CUSTOMER_REQUEST", "DEACTIVATED"),
        ("SUSPENDED", "reactivate", "FRAUD_CLEARED", "ACTIVE"),
        ("SUSPENDED", "deactivate", "SUSPECTED_FRAUD", "DEACTIVATED"),
    ],
)
def test_allowed_transitions(state: str, event: str, reason: str, expected: str) -> None:
    """Each row of the lifecycle table (lifecycle.py docstring) is allowed."""
    assert next_state(state, event, reason) is TokenState(expected)


def test_every_other_pair_is_refused() -> None:
    """Every (state, event) pair not in the table raises InvalidTransition."""
    for state, event in itertools.product(TokenState, TokenEvent):
        reason = sorted(REASONS[event])[0]
        if (state, event) in TRANSITIONS:
            continue
        with pytest.raises(InvalidTransition):
            next_state(state, event, reason)


def test_deactivated_is_terminal() -> None:
    """No event leaves DEACTIVATED."""
    assert not [key for key in TRANSITIONS if key[0] is TokenState.DEACTIVATED]


def test_unknown_reason_is_refused() -> None:
    """A reason code not listed for the event is a validation error."""
    with pytest.raises(ValidationFailed):
        next_state("ACTIVE", "suspend", "BORED")


_ACTIONS = {"suspend": ("POST", "/suspend"), "reactivate": ("POST", "/reactivate"), "delete": ("DELETE", "")}


class TokenLifecycleMachine(RuleBasedStateMachine):
    """Random suspend/reactivate/delete/lost/new-card sequences against the API and a model."""

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[int, str] = {}
        self.pans = iter(
            [
                "4111111111111111",
                "5555555555554444",
                "378282246310005",
                "6011111111111117",
                "2223000048400011",
                "4242424242424242",
            ]
        )
        self.lost = False

    @initialize()
    def start(self) -> None:
        """A fresh app on a temporary SQLite file, one user and device."""
        import tempfile

        self.tmp = tempfile.TemporaryDirectory()
        self.app = create_app(Config.embedded(self.tmp.name, **FAST))
        self.wallet = make_wallet(self.app.test_client())

    @rule()
    def provision(self) -> None:
        """Add a card (ACTIVE, or refused with device-lost once the device is lost)."""
        pan = next(self.pans, None)
        if pan is None:
            return
        response = self.wallet.provision(pan)
        if self.lost:
            assert response.status_code == 409
        else:
            assert response.status_code == 201
            self.model[response.get_json()["card"]["id"]] = "ACTIVE"

    @rule(
        data=st.data(),
        action=st.sampled_from(sorted(_ACTIONS)),
        reason=st.sampled_from(["CUSTOMER_REQUEST", "SUSPECTED_FRAUD", "FRAUD_CLEARED"]),
    )
    def change(self, data: st.DataObject, action: str, reason: str) -> None:
        """Apply an action; the API agrees with the transition table."""
        if not self.model:
            return
        card_id = data.draw(st.sampled_from(sorted(self.model)))
        method, suffix = _ACTIONS[action]
        response = self.wallet.client.open(
            f"/api/cards/{card_id}{suffix}",
            method=method,
            json={"reason": reason},
            headers=self.wallet.headers,
        )
        event = TokenEvent.DEACTIVATE if action == "delete" else TokenEvent(action)
        state = TokenState(self.model[card_id])
        customer = (
            action == "delete"
            or reason
            in {
                "suspend": {"CUSTOMER_REQUEST", "SUSPECTED_FRAUD"},
                "reactivate": {"CUSTOMER_REQUEST", "FRAUD_CLEARED"},
            }[action]
        )
        if not customer:
            assert response.status_code == 400
        elif (state, event) not in TRANSITIONS or (event is TokenEvent.REACTIVATE and self.lost):
            assert response.status_code == 409
        else:
            assert response.status_code == 200, response.get_json()
            self.model[card_id] = TRANSITIONS[(state, event)].value

    @rule()
    def device_lost(self) -> None:
        """Mark the device lost: ACTIVE tokens become SUSPENDED."""
        response = self.wallet.post(f"/api/devices/{self.wallet.device_id}/lost")
        assert response.status_code == 200
        self.lost = True
        self.model = {k: ("SUSPENDED" if v == "ACTIVE" else v) for k, v in self.model.items()}

    @invariant()
    def listing_matches_model(self) -> None:
        """GET /api/cards shows exactly the model's live tokens with their states."""
        if not hasattr(self, "wallet"):
            return
        listed = {c["id"]: c["status"] for c in self.wallet.get("/api/cards").get_json()["items"]}
        assert listed == {k: v for k, v in self.model.items() if v != "DEACTIVATED"}

    def teardown(self) -> None:
        """Close the database and remove the files."""
        if hasattr(self, "app"):
            self.app.extensions["hcekit"].engine.dispose()
            self.tmp.cleanup()


TokenLifecycleMachine.TestCase.settings = settings(
    max_examples=15, stateful_step_count=12, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_token_lifecycle_machine = TokenLifecycleMachine.TestCase
