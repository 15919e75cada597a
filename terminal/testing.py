"""Test doubles for terminals, shipped as library code (docs/architecture.md, Conventions 14).

- :class:`ScriptedTransport` plays a card from a script of (expected command, response) steps,
  in order, so a test can reproduce a real card's behaviour byte for byte (61XX, 6CXX, several
  applications, a decline) and check that the terminal sent what it should.
- :class:`CardTerminalPair` joins any card function (``process(bytes) -> bytes``, such as the
  hce applet's) to a terminal in memory, as h11's ``ConnectionPair`` joins a client and a
  server: ``pair.tap(1250)`` runs one whole transaction and returns its
  :class:`~terminal.tap.TapResult`.

>>> card = ScriptedTransport([("00A404000E325041592E5359532E4444463031", "6A82")])
>>> pair = CardTerminalPair(card.as_card())
>>> pair.tap(100).outcome.outcome.value
'try_another_interface'
>>> card.done
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from apdu.trace import TraceRecorder
from terminal.config import TerminalConfig, Transaction
from terminal.errors import TransportError
from terminal.tap import Authorizer, TapResult, run_tap
from terminal.transports.base import Transport
from terminal.transports.local import CardFunction, LocalTransport


class ScriptMismatch(TransportError):
    """The terminal sent a command the script did not expect, or more commands than scripted."""


@dataclass(frozen=True, slots=True)
class Step:
    """One scripted exchange: ``expect`` is a hex prefix of the command (``None``: any command)."""

    expect: bytes | None
    response: bytes


def _hex(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else bytes.fromhex(text.replace(" ", ""))


class ScriptedTransport(Transport):
    """A card that answers from a script, checking each command against its expected prefix.

    ``steps`` are ``(expected, response)`` pairs, as hex strings or bytes; ``expected`` may be
    ``None`` to accept any command. :attr:`sent` keeps what the terminal sent.
    """

    def __init__(
        self, steps: Sequence[tuple[str | bytes | None, str | bytes]], *, name: str = "scripted"
    ) -> None:
        self.name = name
        self.steps = [Step(None if e is None else _hex(e), _hex(r)) for e, r in steps]
        self.sent: list[bytes] = []
        self.last_card_ms = 0.0

    def transmit(self, command: bytes) -> bytes:
        """The next scripted response, after checking the command."""
        command = bytes(command)
        index = len(self.sent)
        self.sent.append(command)
        if index >= len(self.steps):
            raise ScriptMismatch(f"command {index + 1} ({command.hex().upper()}) is beyond the script")
        step = self.steps[index]
        if step.expect is not None and not command.startswith(step.expect):
            raise ScriptMismatch(
                f"command {index + 1} was {command.hex().upper()}, the script expected "
                f"{step.expect.hex().upper()}…"
            )
        return step.response

    @property
    def done(self) -> bool:
        """Whether every scripted step was used."""
        return len(self.sent) == len(self.steps)

    def as_card(self) -> CardFunction:
        """This script as a card function, for :class:`CardTerminalPair` or a :class:`LocalTransport`."""
        return self.transmit


class CardTerminalPair:
    """A card function and a terminal joined in memory.

    The unpredictable number is fixed (``unpredictable``, 4 bytes) so taps are repeatable;
    :attr:`recorder` keeps the last tap's trace.
    """

    def __init__(
        self,
        card: CardFunction,
        *,
        config: TerminalConfig | None = None,
        unpredictable: bytes = bytes.fromhex("0A0B0C0D"),
        date: str = "250101",
    ) -> None:
        self.transport = LocalTransport(card)
        self.config = config or TerminalConfig()
        self.unpredictable = unpredictable
        self.date = date
        self.recorder = TraceRecorder()

    def tap(self, amount: int, currency: str = "EUR", *, host: Authorizer | None = None) -> TapResult:
        """Run one tap of ``amount`` minor units; with ``host`` an online request is authorized."""
        self.recorder = TraceRecorder()
        un = self.unpredictable
        return run_tap(
            self.transport,
            Transaction(amount=amount, currency=currency, date=self.date),
            config=self.config,
            host=host,
            tracers=(self.recorder,),
            unpredictable=lambda n: (un * (n // len(un) + 1))[:n],
        )
