"""The nfcpy transport: sense a Type 4A target and talk ISO-DEP (ISO/IEC 14443-4) to it.

nfcpy drives PN53x, ACR122U and Sony RC-S380 class devices directly over USB (the kernel's
``pn533`` driver must be kept off the device, see hardware.md), and has a UDP driver that
joins two nfcpy processes on loopback, which is how the integration test pairs this terminal
with ``hcekit emulate --via nfc``. nfcpy is imported only when this transport is used
(``pip install hcekit[nfc]``).

Paths are nfcpy's: ``usb``, ``usb:072f:2200``, ``usb:001:004``, ``udp``, ``udp:HOST:PORT``.
nfcpy's errors become :class:`~terminal.errors.TransportError`; a target that stops answering
mid-tap is :class:`~terminal.errors.CardRemoved`.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from terminal.errors import CardRemoved, NoCard, ReaderNotFound, TransportError
from terminal.transports.base import Transport


def _import_nfcpy() -> Any:
    try:
        import nfc
        import nfc.clf
        import nfc.tag
    except ImportError as exc:
        raise TransportError("the nfcpy reader needs nfcpy: pip install 'hcekit[nfc]'") from exc
    return nfc


def list_devices() -> list[str]:
    """The nfcpy USB devices that can be opened (``"usb:BUS:DEV name"``); UDP devices are not listed."""
    nfc = _import_nfcpy()
    found = []
    try:
        from nfc.clf.device import usb_device_map
        from nfc.clf.transport import USB

        for vid, pid, bus, dev in USB.find("usb") or []:
            driver = usb_device_map.get((vid, pid))
            if driver:
                found.append(f"usb:{bus:03d}:{dev:03d} {vid:04x}:{pid:04x} ({driver})")
    except Exception as exc:  # libusb missing or no permission: report nothing, say why
        raise TransportError(f"cannot list nfcpy USB devices: {type(exc).__name__}: {exc}") from exc
    del nfc
    return found


class NfcTransport(Transport):
    """A Type 4A target (a contactless card or an HCE phone) sensed through nfcpy.

    ``wait`` bounds the sensing (seconds); ``timeout`` bounds every ISO-DEP exchange.
    """

    def __init__(self, path: str = "usb", *, wait: float = 10.0, timeout: float = 1.0) -> None:
        self.path = path
        self.wait = wait
        self.timeout = timeout
        self.name = f"nfc:{path}"
        self._clf: Any = None
        self._tag: Any = None

    def connect(self) -> None:
        """Open the device and sense a Type 4A target until :attr:`wait` runs out."""
        nfc = _import_nfcpy()
        try:
            clf = nfc.ContactlessFrontend()
            opened = clf.open(self.path)
        except (OSError, ValueError) as exc:
            raise ReaderNotFound(f"cannot open nfcpy device {self.path!r}: {exc}") from exc
        if not opened:
            raise ReaderNotFound(f"no nfcpy device at {self.path!r}")
        self._clf = clf
        deadline = time.monotonic() + self.wait
        try:
            while time.monotonic() < deadline:
                target = clf.sense(nfc.clf.RemoteTarget("106A"), iterations=1, interval=0.1)
                if target is None:
                    continue
                tag = nfc.tag.activate(clf, target)
                if tag is not None and tag.type == "Type4Tag":
                    self._tag = tag
                    return
        except nfc.clf.Error as exc:
            self.close()
            raise TransportError(f"nfcpy failed while sensing: {exc}") from exc
        self.close()
        raise NoCard(f"no ISO-DEP card or phone presented within {self.wait:g} s")

    def transmit(self, command: bytes) -> bytes:
        """Exchange one APDU over ISO-DEP; a target that stops answering is :class:`CardRemoved`."""
        if self._tag is None:
            self.connect()
        nfc = _import_nfcpy()
        try:
            response = self._tag.transceive(bytearray(command), timeout=self.timeout)
        except nfc.tag.TagCommandError as exc:
            raise CardRemoved(f"the card or phone stopped answering: {exc}") from exc
        except nfc.clf.Error as exc:
            raise TransportError(f"nfcpy exchange failed: {exc}") from exc
        if response is None or len(response) < 2:
            raise CardRemoved("the card or phone returned no response")
        return bytes(response)

    def close(self) -> None:
        """Close the device; closing twice is harmless."""
        clf, self._clf, self._tag = self._clf, None, None
        if clf is not None:
            with contextlib.suppress(Exception):
                clf.close()
