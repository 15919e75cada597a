"""The contactless terminal: a sans-I/O kernel that drives one tap, its transports and host client.

Modules: :mod:`terminal.kernel` (the state machine, no I/O), :mod:`terminal.config` (terminal
data, limits, supported AIDs, money), :mod:`terminal.outcome` (outcomes and the field-55
block), :mod:`terminal.timing` (the 500 ms budget), :mod:`terminal.transmission` (61XX/6CXX,
timing, tracing), :mod:`terminal.tap` (the runner), :mod:`terminal.host` (authorization over
HTTP), :mod:`terminal.transports` (local, PC/SC, nfcpy, replay), :mod:`terminal.testing`
(scripted cards and a card/terminal pair), :mod:`terminal.errors` (the exception tree).
"""

from terminal.config import TerminalConfig, Transaction
from terminal.errors import TerminalError
from terminal.kernel import Kernel
from terminal.outcome import KernelOutcome, Outcome
from terminal.tap import TapResult, run_tap

__all__ = [
    "Kernel",
    "KernelOutcome",
    "Outcome",
    "TapResult",
    "TerminalConfig",
    "TerminalError",
    "Transaction",
    "run_tap",
]
