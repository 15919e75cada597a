"""The card in pcscd: the vpicc side of vsmartcard's virtual reader protocol.

vsmartcard's ``vpcd`` is a pcscd reader driver (Debian package ``vsmartcard-vpcd``) that listens
on TCP port 35963 (``CHANNELID 0x8C7B`` in ``/etc/reader.conf.d/vpcd``) for a virtual card.
When a card connects, pcscd sees an inserted card, and every PC/SC application -- pyscard,
``pcsc_scan``, ``opensc-tool`` -- talks to it. The protocol (vsmartcard documentation,
"Creating a virtual smart card") is a stream of frames, each a 2-byte big-endian length and a
payload::

    from vpcd (the reader)                 answer of the card (vpicc)
    00 01  00     power off                 none
    00 01  01     power on                  none
    00 01  02     reset                     none
    00 01  04     get ATR                   LL LL ATR
    LL LL  APDU   a command APDU            LL LL R-APDU

The ATR is that of a contactless ISO/IEC 14443-4 card as PC/SC readers build it (PC/SC Part 3
§3.1.3.2.3): ``3B 80 80 01 01`` -- no historical bytes, T=1, TCK.

:class:`VpcdCard` connects, answers until the connection closes, and (``reconnect=True``)
connects again, until :meth:`VpcdCard.stop`. Socket errors become
:class:`~hce.errors.TransportError`.

With ``listen=True`` the direction of the connection is reversed, as ``vicc --reversed`` does:
the card listens on ``host:port`` and the reader side connects to it. This is how vsmartcard's
Android Smart Card Emulator relays a real terminal's APDUs from the phone's HCE service to a
remote virtual card (hardware.md, "A phone in front of a real terminal").
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Sequence

from apdu.sw import SW
from apdu.trace import Tracer
from hce.errors import TransportError
from hce.transports import VPCD_PORT, Card, TracedCard

__all__ = ["CONTACTLESS_ATR", "VpcdCard", "frame"]

CONTACTLESS_ATR = bytes.fromhex("3B80800101")
"""The ATR of a contactless card without historical bytes (PC/SC Part 3 §3.1.3.2.3)."""

POWER_OFF, POWER_ON, RESET, GET_ATR = 0x00, 0x01, 0x02, 0x04


def frame(payload: bytes) -> bytes:
    """A vpcd frame: 2-byte big-endian length, then the payload.

    >>> frame(bytes.fromhex("9000")).hex()
    '00029000'
    """
    if len(payload) > 0xFFFF:
        raise TransportError(f"a vpcd frame carries at most 65535 bytes, got {len(payload)}")
    return len(payload).to_bytes(2, "big") + payload


class VpcdCard:
    """A virtual card that connects to vpcd and answers with ``card``.

    ``on_exchange(c_apdu, r_apdu, ms)`` is called after every APDU (for printing); ``tracers``
    receive trace records (:mod:`apdu.trace`).
    """

    def __init__(
        self,
        card: Card,
        host: str = "localhost",
        port: int = VPCD_PORT,
        *,
        atr: bytes = CONTACTLESS_ATR,
        tracers: Sequence[Tracer] = (),
        on_exchange: Callable[[bytes, bytes, float], None] | None = None,
        connect_timeout: float = 5.0,
        listen: bool = False,
    ) -> None:
        self.card = TracedCard(card, tracers)
        self.host, self.port, self.atr = host, port, atr
        self.on_exchange = on_exchange
        self.connect_timeout = connect_timeout
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._listener: socket.socket | None = None
        self.listen = listen
        self.connected = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    def connect(self) -> None:
        """Open the connection to vpcd (raises :class:`TransportError` when nobody listens).

        In ``listen`` mode: wait for the reader side to connect (until :meth:`stop`).
        """
        if self.listen:
            self._accept()
            return
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except OSError as exc:
            raise TransportError(
                f"cannot reach vpcd at {self.host}:{self.port} (is pcscd running with vsmartcard-vpcd?): "
                f"{exc.strerror or exc}"
            ) from exc
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self.connected.set()

    def _accept(self) -> None:
        try:
            if self._listener is None:
                self._listener = socket.create_server((self.host, self.port))
                self._listener.settimeout(0.2)
            while not self._stop.is_set():
                try:
                    sock, _ = self._listener.accept()
                except TimeoutError:
                    continue
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._sock = sock
                self.connected.set()
                return
        except OSError as exc:
            raise TransportError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from exc
        raise TransportError("stopped while waiting for the reader to connect")

    @property
    def address(self) -> tuple[str, int] | None:
        """In ``listen`` mode, the address listened on (the port may have been 0)."""
        if self._listener is None:
            return None
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def stop(self) -> None:
        """Ask :meth:`serve` to return; closes the connection (safe from another thread)."""
        self._stop.set()
        self.close()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def close(self) -> None:
        """Close the connection: pcscd sees the card removed."""
        sock, self._sock = self._sock, None
        self.connected.clear()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def __enter__(self) -> VpcdCard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ serving

    def serve(self, *, reconnect: bool = True, retry_interval: float = 1.0) -> None:
        """Answer vpcd until :meth:`stop`; with ``reconnect`` a closed connection is reopened."""
        while not self._stop.is_set():
            if self._sock is None:
                try:
                    self.connect()
                except TransportError:
                    if not reconnect:
                        raise
                    self._stop.wait(retry_interval)
                    continue
            try:
                self.serve_connection()
            except TransportError:
                if not reconnect:
                    raise
                self._stop.wait(retry_interval)   # reset by vpcd (pcscd restarting): connect again
                continue
            if not reconnect:
                return

    def serve_connection(self) -> None:
        """Answer frames on the open connection until it closes."""
        if self._sock is None:
            self.connect()
        try:
            while not self._stop.is_set():
                payload = self._read_frame()
                if payload is None:
                    break
                reply = self.handle(payload)
                if reply is not None:
                    self._send(frame(reply))
        except OSError as exc:
            if not self._stop.is_set():
                raise TransportError(f"vpcd connection failed: {exc.strerror or exc}") from exc
        finally:
            self.close()

    def handle(self, payload: bytes) -> bytes | None:
        """The answer to one frame's payload (``None``: control messages get none).

        A 1-byte payload that is not one of vpcd's control messages is a malformed APDU from some
        PC/SC client: it is answered 6700 (wrong length), since vpcd waits for an answer to every
        APDU and a silent card would hold the reader for every client until pcscd restarts.
        """
        if len(payload) == 1:
            control = payload[0]
            if control == GET_ATR:
                return self.atr
            if control in (POWER_OFF, POWER_ON, RESET):
                self.card.reset()
                return None
            return SW.WRONG_LENGTH.to_bytes(2, "big")
        began = time.perf_counter()
        response = self.card.process(payload)
        if self.on_exchange is not None:
            self.on_exchange(payload, response, (time.perf_counter() - began) * 1000)
        return response

    def _read_exact(self, n: int) -> bytes | None:
        sock = self._sock
        if sock is None:
            return None
        chunks = bytearray()
        while len(chunks) < n:
            chunk = sock.recv(n - len(chunks))
            if not chunk:
                return None
            chunks += chunk
        return bytes(chunks)

    def _read_frame(self) -> bytes | None:
        header = self._read_exact(2)
        if header is None:
            return None
        length = int.from_bytes(header, "big")
        if length == 0:
            return b""
        return self._read_exact(length)

    def _send(self, data: bytes) -> None:
        if self._sock is not None:
            self._sock.sendall(data)
