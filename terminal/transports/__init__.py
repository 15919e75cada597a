"""Reader transports: thin byte pipes (local, PC/SC, nfcpy, replay) behind one interface.

:func:`open_transport` turns a ``--reader`` specification into a transport:

========================  =============================================================
``pcsc[:NAME|INDEX]``     :class:`~terminal.transports.pcsc.PcscTransport` (pyscard)
``nfc:usb[:…]``           :class:`~terminal.transports.nfc.NfcTransport` over USB
``nfc:udp[:HOST:PORT]``   :class:`~terminal.transports.nfc.NfcTransport`, nfcpy's UDP driver
``replay:FILE``           :class:`~terminal.transports.replay.ReplayTransport`
========================  =============================================================

``sim`` (the hce applet in process) is assembled by the command line, which alone may import
both the card and the terminal; it reaches the terminal as a
:class:`~terminal.transports.local.LocalTransport`.

>>> parse_reader("pcsc:ACR122")
('pcsc', 'ACR122')
>>> parse_reader("nfc:udp:localhost:54321")
('nfc', 'udp:localhost:54321')
"""

from __future__ import annotations

from terminal.errors import ConfigError
from terminal.transports.base import Transport

KINDS = ("sim", "pcsc", "nfc", "replay")


def parse_reader(spec: str) -> tuple[str, str | None]:
    """Split a reader specification into its kind and argument (``None`` when absent)."""
    kind, sep, arg = spec.strip().partition(":")
    kind = kind.lower()
    if kind not in KINDS:
        raise ConfigError(
            f"unknown reader {spec!r}: use sim, pcsc[:NAME|INDEX], nfc:usb[:…], nfc:udp[:H:P] or replay:FILE"
        )
    if kind == "replay" and not arg:
        raise ConfigError("replay needs a trace file: replay:FILE")
    if kind == "nfc":
        arg = arg or "usb"
        if not (arg.startswith("usb") or arg.startswith("udp")):
            raise ConfigError(f"nfc reader path must start with usb or udp, got {arg!r}")
    return kind, (arg if sep or kind == "nfc" else None)


def open_transport(spec: str, *, wait: float = 10.0, timeout: float | None = None) -> Transport:
    """The transport for a ``pcsc``, ``nfc`` or ``replay`` specification (not ``sim``)."""
    kind, arg = parse_reader(spec)
    if kind == "pcsc":
        from terminal.transports.pcsc import PcscTransport

        return PcscTransport(arg, wait=wait, timeout=timeout or 5.0)
    if kind == "nfc":
        from terminal.transports.nfc import NfcTransport

        return NfcTransport(arg or "usb", wait=wait, timeout=timeout or 1.0)
    if kind == "replay":
        from terminal.transports.replay import ReplayTransport

        return ReplayTransport.from_file(arg or "")
    raise ConfigError("the sim reader is assembled by the command line (it needs the hce card)")
