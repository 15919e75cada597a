"""The exceptions of :mod:`terminal`, rooted in one class.

::

    TerminalError
     ├── TransportError        a reader or transport failed (translated from pyscard, nfcpy, OS errors)
     │    ├── CardRemoved      the card or phone left the field mid-tap
     │    ├── NoCard           no card was presented before the wait timed out
     │    ├── ReaderNotFound   the named reader or device is not there
     │    ├── TransportTimeout an exchange did not complete in time (never a hang)
     │    └── ScriptMismatch   (terminal.testing) a scripted card got a command it did not expect
     ├── KernelError           the kernel was driven out of order (a programming error)
     ├── ConfigError           terminal data or a reader specification that cannot be used
     └── HostError             the authorization host could not be reached or answered badly
          └── HostRejected     the host answered with an RFC 9457 problem (``type``, ``status``)

A status word is never an exception here: the kernel turns it into an outcome
(EMV Contactless Book A §6, "Outcomes"). Foreign errors are translated at the boundary, in the
transport or host client that met them (``raise TransportError(...) from exc``).
"""

from __future__ import annotations


class TerminalError(Exception):
    """Root of every error raised by :mod:`terminal`."""


class TransportError(TerminalError):
    """A reader, a device or a byte pipe failed during a tap."""


class CardRemoved(TransportError):
    """The card or phone left the field before the tap finished."""


class NoCard(TransportError):
    """No card or phone was presented before the wait timed out."""


class ReaderNotFound(TransportError):
    """The requested PC/SC reader or nfcpy device does not exist."""


class TransportTimeout(TransportError):
    """An exchange did not complete within its timeout."""


class KernelError(TerminalError):
    """The kernel was used out of order: a response fed when no command was outstanding."""


class ConfigError(TerminalError, ValueError):
    """Terminal data, an amount or a reader specification that cannot be used."""


class HostError(TerminalError):
    """The authorization host could not be reached, or its answer could not be read."""


class HostRejected(HostError):
    """The host answered with an RFC 9457 problem document.

    ``type`` is the problem's stable URI, ``status`` the HTTP status, ``detail`` its detail.
    """

    def __init__(self, message: str, *, type: str = "about:blank", status: int = 0, detail: str = "") -> None:
        super().__init__(message)
        self.type = type
        self.status = status
        self.detail = detail
