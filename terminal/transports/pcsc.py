"""The PC/SC transport: any PC/SC contactless reader through pcscd, by pyscard.

ACR122U, ACR1252U, Identiv, SCM and the other PC/SC readers present a contactless card as a
card in a slot; so does vsmartcard's ``vpcd`` for ``hcekit emulate --via vpcd``. pyscard is
imported only when this transport is used (``pip install hcekit[pcsc]``; on Linux it builds
from source and needs ``swig`` and ``libpcsclite-dev``).

The reader is named by ``pcsc`` (the first reader with a card, else the first reader),
``pcsc:INDEX`` or ``pcsc:NAME`` (a case-insensitive part of the reader's name). The protocol
is whatever the reader negotiates (T=1 / T=CL for contactless readers, not only T=0). pyscard's
exceptions become :class:`~terminal.errors.TransportError`; a card removed mid-tap is
:class:`~terminal.errors.CardRemoved`; every exchange has a deadline.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from terminal.errors import CardRemoved, NoCard, ReaderNotFound, TransportError
from terminal.transports._deadline import call_with_timeout
from terminal.transports.base import Transport

#: PC/SC error codes that mean the card left (pcsclite ``SCARD_W_REMOVED_CARD``,
#: ``SCARD_W_RESET_CARD``, ``SCARD_E_NO_SMARTCARD``).
_REMOVED = {0x80100069, 0x80100068, 0x8010000C}


def _import_pyscard() -> Any:
    try:
        import smartcard.System
    except ImportError as exc:
        raise TransportError(
            "the PC/SC reader needs pyscard: pip install 'hcekit[pcsc]'"
            " (it builds from source on Linux: apt install swig libpcsclite-dev)"
        ) from exc
    return smartcard


def _hresult(exc: BaseException) -> int:
    value = getattr(exc, "hresult", -1)
    return int(value) & 0xFFFFFFFF if isinstance(value, int) and value != -1 else -1


def list_readers() -> list[str]:
    """The names of the PC/SC readers pcscd can see (``[]`` when there are none)."""
    smartcard = _import_pyscard()
    from smartcard.Exceptions import SmartcardException
    from smartcard.pcsc.PCSCExceptions import BaseSCardException

    try:
        return [str(r) for r in smartcard.System.readers()]
    except (SmartcardException, BaseSCardException) as exc:
        raise TransportError(f"cannot talk to pcscd (is it running?): {exc}") from exc


def pick_reader(names: list[str], selector: str | None) -> str:
    """The reader a ``pcsc[:NAME|INDEX]`` selector means, among ``names``.

    >>> pick_reader(["ACS ACR122U 00 00", "Virtual PCD 00 00"], "virtual")
    'Virtual PCD 00 00'
    >>> pick_reader(["ACS ACR122U 00 00", "Virtual PCD 00 00"], "1")
    'Virtual PCD 00 00'
    """
    if not names:
        raise ReaderNotFound("no PC/SC reader found (is pcscd running and the reader plugged in?)")
    if not selector:
        return names[0]
    if selector.isdigit():
        index = int(selector)
        if index >= len(names):
            raise ReaderNotFound(f"no PC/SC reader #{index}; there are {len(names)}")
        return names[index]
    matches = [n for n in names if selector.lower() in n.lower()]
    if not matches:
        raise ReaderNotFound(f"no PC/SC reader matches {selector!r}; readers: {', '.join(names)}")
    return matches[0]


class PcscTransport(Transport):
    """A card on a PC/SC reader.

    ``wait`` is how long to wait for a card to be presented (seconds); ``timeout`` bounds every
    exchange. The connection is made in :meth:`connect` (called by :meth:`transmit` if needed).
    """

    def __init__(self, selector: str | None = None, *, wait: float = 10.0, timeout: float = 5.0) -> None:
        self.selector = selector
        self.wait = wait
        self.timeout = timeout
        self.name = f"pcsc:{selector}" if selector else "pcsc"
        self._connection: Any = None

    def connect(self) -> None:
        """Find the reader, wait for a card, and connect with the protocol the reader offers.

        A card just entering the field may be reported unpowered or unresponsive for a few
        milliseconds (PC/SC ``SCARD_W_UNPOWERED_CARD``); connecting is retried until :attr:`wait`.
        """
        smartcard = _import_pyscard()
        from smartcard.Exceptions import SmartcardException
        from smartcard.pcsc.PCSCExceptions import BaseSCardException

        names = list_readers()
        reader_name = pick_reader(names, self.selector)
        deadline = time.monotonic() + self.wait
        last = "no card"
        while True:
            try:
                readers = [r for r in smartcard.System.readers()
                           if self.selector is None or str(r) == reader_name]
            except (SmartcardException, BaseSCardException) as exc:
                raise TransportError(f"cannot talk to pcscd: {exc}") from exc
            for reader in readers:
                connection = reader.createConnection()
                try:
                    call_with_timeout(connection.connect, self.timeout, "PC/SC connect")
                except (SmartcardException, BaseSCardException) as exc:
                    last = str(exc)
                    _release(connection)
                    continue
                self._connection = connection
                self.name = f"pcsc:{reader}"
                return
            if time.monotonic() > deadline:
                raise NoCard(f"no card presented within {self.wait:g} s ({last})")
            time.sleep(0.1)

    def transmit(self, command: bytes) -> bytes:
        """Send an APDU through SCardTransmit; a missing card is :class:`CardRemoved`."""
        if self._connection is None:
            self.connect()
        from smartcard.Exceptions import SmartcardException

        connection = self._connection
        try:
            data, sw1, sw2 = call_with_timeout(
                lambda: connection.transmit(list(command)), self.timeout, "PC/SC transmit"
            )
        except SmartcardException as exc:
            text = str(exc).lower()
            if _hresult(exc) in _REMOVED or "removed" in text or "no smart card" in text:
                raise CardRemoved("the card left the reader's field") from exc
            raise TransportError(f"PC/SC transmit failed: {exc}") from exc
        return bytes(data) + bytes((sw1, sw2))

    def close(self) -> None:
        """Disconnect from the card (the reader stays with pcscd)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            _release(connection)


def _release(connection: Any) -> None:
    """Disconnect and release the PC/SC context now, so no destructor does it after pcscd is gone."""
    with contextlib.suppress(Exception):
        connection.disconnect()
    with contextlib.suppress(Exception):
        connection.release()
