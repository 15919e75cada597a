"""The exceptions of :mod:`hce`, rooted in one class.

::

    HCEError
     ├── ProfileError        a card profile that does not validate (never echoes PAN or key values)
     ├── CounterError        the ATC or a limited-use key counter could not be reserved
     │    ├── CounterExhausted   the ATC reached FFFF: the card can make no more cryptograms
     │    └── CounterStoreError  the counter could not be made durable (I/O failed)
     ├── TransportError      a card-side transport failed (vpcd socket, nfcpy device)
     ├── WalletError         the device wallet cannot be read, written or used
     │    └── WalletLocked       the wallet's key is missing or wrong: its store cannot be opened
     ├── InAppError          (hce.inapp) the card would not make an in-app cryptogram
     └── TSPProblem          (hce.tspclient) the token service refused a request, or cannot be reached

The applet itself never raises: it answers every command with a status word and turns a
:class:`CounterError` into one. Transports translate foreign errors (``OSError``,
``nfc.clf.Error``) into :class:`TransportError` at their boundary.
"""

from __future__ import annotations


class HCEError(Exception):
    """Root of every error raised by :mod:`hce`."""


class ProfileError(HCEError, ValueError):
    """A card profile that is not valid; the message names fields, never their values."""


class CounterError(HCEError):
    """The ATC or a limited-use key counter could not be reserved."""


class CounterExhausted(CounterError):
    """The ATC reached its maximum (FFFF, EMV 4.4 Book 3 Annex A1 'Application Transaction Counter')."""


class CounterStoreError(CounterError):
    """The counter store could not write its new value durably."""


class TransportError(HCEError):
    """A card-side transport failed; the foreign error is chained as ``__cause__``."""


class WalletError(HCEError):
    """The wallet cannot be read or written, or holds no such card, device or session."""


class WalletLocked(WalletError):
    """The wallet key does not open the wallet document (a wrong key, or a tampered file)."""
