"""The one interface every reader transport has: ``transmit(bytes) -> bytes`` and ``close()``.

Transports are thin byte pipes (docs/architecture.md, Conventions 3; after httpx's
``BaseTransport`` and nfcpy's ``clf.transport``): they carry a whole command APDU to the card
and bring back the whole response APDU (data and SW1 SW2), nothing more. Status words,
61XX/6CXX, timing and tracing belong to :mod:`terminal.transmission`; the protocol belongs to
:mod:`terminal.kernel`.

Every transport bounds every exchange with a timeout and raises
:class:`~terminal.errors.TransportError` (or :class:`~terminal.errors.CardRemoved`) rather than
wait for ever.
"""

from __future__ import annotations

from types import TracebackType


class Transport:
    """Base class of reader transports (ISO/IEC 7816-3 T=1 / ISO/IEC 14443-4 ISO-DEP pipes).

    ``name`` describes the reader; ``last_card_ms`` is the card's own time for the last
    exchange when the transport can tell it (in process, replay), else ``None``.
    """

    name: str = "transport"
    last_card_ms: float | None = None

    def transmit(self, command: bytes) -> bytes:
        """Send one command APDU and return the response APDU (data then SW1 SW2)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the reader or card; closing twice is harmless."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
