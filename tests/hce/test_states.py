"""The transition tables: what each kernel accepts in each state."""

from __future__ import annotations

import pytest

from hce.states import TABLES, Command, State, next_state


@pytest.mark.parametrize(
    ("kernel", "state", "command", "after"),
    [
        ("visa",       State.APP_SELECTED, Command.GET_PROCESSING_OPTIONS, State.COMPLETED),
        ("visa",       State.COMPLETED,    Command.GENERATE_AC,            None),
        ("visa",       State.IDLE,         Command.READ_RECORD,            None),
        ("mastercard", State.APP_SELECTED, Command.GET_PROCESSING_OPTIONS, State.INITIATED),
        ("mastercard", State.INITIATED,    Command.GENERATE_AC,            State.COMPLETED),
        ("mastercard", State.COMPLETED,    Command.GENERATE_AC,            None),
        ("mastercard", State.PPSE_SELECTED, Command.GET_DATA,              None),
    ],
)
def test_next_state(kernel: str, state: State, command: Command, after: State | None) -> None:
    """The table answers the next state, or None for a command out of order (6985)."""
    assert next_state(kernel, state, command) == after


def test_no_command_reaches_a_state_before_selection() -> None:
    """Nothing but SELECT leaves IDLE or PPSE_SELECTED (SELECT is outside the tables)."""
    for table in TABLES.values():
        assert not {s for (s, _) in table} & {State.IDLE, State.PPSE_SELECTED}
