"""The in-process transport: a card that is a ``process(bytes) -> bytes`` callable.

This is how ``hcekit tap --reader sim`` talks to the hce applet without importing it: the
command line passes ``applet.process`` in. The card's time is measured around the call, so a
tap in process reports the card's time exactly and a transport time of nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from terminal.errors import CardRemoved, TransportError
from terminal.transports.base import Transport

CardFunction = Callable[[bytes], bytes]
"""A card as a function: a command APDU in, a response APDU out (``CardApplet.process``)."""


class LocalTransport(Transport):
    """A transport to a card in the same process.

    After :meth:`remove` (the card leaves the field) every exchange raises
    :class:`~terminal.errors.CardRemoved`. An exception from the card becomes
    :class:`~terminal.errors.TransportError`.
    """

    def __init__(
        self, card: CardFunction, *, name: str = "sim", clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.card = card
        self.name = name
        self.present = True
        self._clock = clock

    def transmit(self, command: bytes) -> bytes:
        """Call the card; its time is :attr:`last_card_ms`."""
        if not self.present:
            raise CardRemoved("the card left the field")
        started = self._clock()
        try:
            response = self.card(bytes(command))
        except Exception as exc:
            raise TransportError(f"the card failed: {type(exc).__name__}") from exc
        self.last_card_ms = (self._clock() - started) * 1000.0
        if not isinstance(response, (bytes, bytearray)) or len(response) < 2:
            raise TransportError("the card answered fewer than two bytes")
        return bytes(response)

    def remove(self) -> None:
        """Take the card out of the field."""
        self.present = False

    def close(self) -> None:
        """Nothing to release; the card stays usable for the next tap."""
