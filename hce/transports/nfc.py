"""The card on nfcpy: a Type 4A (ISO-DEP) target listening on a ContactlessFrontend.

nfcpy's :meth:`nfc.clf.ContactlessFrontend.listen` activates a local target through
ISO/IEC 14443-3 anticollision with the SENS_RES/SDD_RES/SEL_RES given; SEL_RES ``20``
says "ISO/IEC 14443-4 compliant" (NFC Forum Digital §4.8.2), so the reader sends RATS next,
which nfcpy hands over as ``target.tt4_cmd``. From there :class:`~hce.transports.isodep.IsoDepTarget`
runs the block protocol and :meth:`ContactlessFrontend.exchange` moves each frame.

Paths: ``udp:HOST:PORT`` is nfcpy's UDP driver (a reader and a card in two processes, or two
threads, on loopback: what the tests use); ``usb[:VID:PID|:BUS:DEV]`` a USB reader that can act
as a target (card emulation): PN533-based readers such as the SCL3711 and RC-S380; an
ACR122U's PN532 can too, but its firmware's automatic RATS handling makes it unreliable.

When the card needs longer than half the frame waiting time, it asks for a waiting time
extension (S(WTX), ISO/IEC 14443-4 §7.3) and keeps asking until the applet has answered.
nfcpy and its drivers are imported only when a target starts; their errors become
:class:`~hce.errors.TransportError`.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from apdu.trace import Tracer
from hce.errors import TransportError
from hce.transports import Card, TracedCard
from hce.transports.isodep import Apdu, Deselected, Ignore, IsoDepTarget, Send, WtxAccepted

__all__ = ["NfcCard"]

SENS_RES = bytes.fromhex("0400")
"""SENS_RES (ATQA): single-size UID, bit-frame anticollision (ISO/IEC 14443-3 §6.4.2)."""

SEL_RES = bytes.fromhex("20")
"""SEL_RES (SAK): UID complete, ISO/IEC 14443-4 compliant (ISO/IEC 14443-3 §6.4.3.4)."""


def _random_uid() -> bytes:
    """A random 4-byte NFCID1 starting 08, as phones emulating cards use (ISO/IEC 14443-3 §6.4.4)."""
    return b"\x08" + os.urandom(3)


class NfcCard:
    """A card that listens on an nfcpy device and answers with ``card``.

    ``on_exchange(c_apdu, r_apdu, ms)`` is called after every APDU; ``tracers`` receive trace
    records. ``command_timeout`` is how long the card waits for the reader's next frame before
    it considers the field gone.
    """

    def __init__(
        self,
        card: Card,
        path: str = "udp:localhost:54321",
        *,
        tracers: Sequence[Tracer] = (),
        on_exchange: Callable[[bytes, bytes, float], None] | None = None,
        fwi: int = 8,
        command_timeout: float = 2.0,
    ) -> None:
        self.card = TracedCard(card, tracers)
        self.path = path
        self.on_exchange = on_exchange
        self.fwi = fwi
        self.command_timeout = command_timeout
        self._stop = threading.Event()
        self._clf: Any = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="hce-card")
        self.activations = 0
        self.listening = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> None:
        """Open the nfcpy device (lazy import of nfcpy)."""
        try:
            import nfc
        except ImportError as exc:
            raise TransportError("nfcpy is not installed: pip install 'hcekit[nfc]'") from exc
        try:
            self._clf = nfc.ContactlessFrontend(self.path)
        except (OSError, nfc.clf.Error) as exc:
            raise TransportError(f"cannot open nfc device {self.path!r}: {exc}") from exc
        if self._clf is None or getattr(self._clf, "device", None) is None:
            raise TransportError(f"no nfc device at {self.path!r}")

    def stop(self) -> None:
        """Ask :meth:`serve` to return after the current listen period."""
        self._stop.set()

    def close(self) -> None:
        """Close the nfcpy device."""
        clf, self._clf = self._clf, None
        if clf is not None:
            try:
                clf.close()
            except Exception as exc:  # nfcpy drivers raise many kinds at close
                raise TransportError(f"closing nfc device failed: {exc}") from exc
        self._pool.shutdown(wait=False)

    def __enter__(self) -> NfcCard:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.close()

    # ------------------------------------------------------------------ serving

    def serve(self, *, listen_period: float = 0.5, max_activations: int | None = None) -> None:
        """Listen and answer taps until :meth:`stop` (or ``max_activations`` taps)."""
        if self._clf is None:
            self.open()
        while not self._stop.is_set():
            if max_activations is not None and self.activations >= max_activations:
                return
            self.serve_once(listen_period)

    def serve_once(self, timeout: float) -> bool:
        """Listen ``timeout`` seconds for one activation and serve it; whether one happened."""
        import nfc.clf

        if self._clf is None:
            self.open()
        target = nfc.clf.LocalTarget("106A")
        target.sens_res = bytearray(SENS_RES)
        target.sdd_res = bytearray(_random_uid())
        target.sel_res = bytearray(SEL_RES)
        self.listening.set()
        try:
            activated = self._clf.listen(target, timeout)
        except nfc.clf.Error as exc:
            raise TransportError(f"listen failed on {self.path!r}: {exc}") from exc
        if activated is None:
            return False
        rats = getattr(activated, "tt4_cmd", None)
        if not rats or rats[0] != 0xE0:
            return False
        self.activations += 1
        self.card.reset()
        try:
            self._session(IsoDepTarget(fwi=self.fwi), bytes(rats))
        except nfc.clf.Error:
            pass
        finally:
            self.card.reset()
        return True

    def _exchange(self, frame: bytes | None, timeout: float) -> bytes | None:
        data = self._clf.exchange(None if frame is None else bytearray(frame), timeout)
        return None if data is None else bytes(data)

    def _session(self, dep: IsoDepTarget, rats: bytes) -> None:
        frame = self._exchange(dep.rats(rats), self.command_timeout)
        while frame is not None and not self._stop.is_set():
            event = dep.receive(frame)
            if isinstance(event, Send):
                frame = self._exchange(event.frame, self.command_timeout)
            elif isinstance(event, Apdu):
                frame = self._answer(dep, event.apdu)
            elif isinstance(event, Deselected):
                self._exchange(event.frame, 0)
                return
            elif isinstance(event, (Ignore, WtxAccepted)):
                frame = self._exchange(None, self.command_timeout)

    def _answer(self, dep: IsoDepTarget, apdu: bytes) -> bytes | None:
        began = time.perf_counter()
        future = self._pool.submit(self.card.process, apdu)
        patience = dep.fwt / 2
        while True:
            try:
                response = future.result(timeout=patience)
                break
            except concurrent.futures.TimeoutError:
                echo = self._exchange(dep.wtx(1), self.command_timeout)
                if echo is None or not isinstance(dep.receive(echo), WtxAccepted):
                    return None
        if self.on_exchange is not None:
            self.on_exchange(apdu, response, (time.perf_counter() - began) * 1000)
        return self._exchange(dep.respond(response), self.command_timeout)
