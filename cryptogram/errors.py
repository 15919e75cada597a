"""The exceptions of :mod:`cryptogram`, rooted in one class.

::

    CryptogramError
     ├── InvalidKey       a key of the wrong length or kind for the algorithm (also ValueError)
     ├── InvalidInput     data that cannot enter the computation: a PAN that is not digits, an
     │                    ATC that is not 2 bytes, a missing data element (also ValueError)
     ├── SealingError     (in :mod:`cryptogram.sealing`) a malformed public key or envelope, or
     │                    one that fails authentication (also ValueError)
     └── OdaError         a certificate or signature of offline data authentication failed a
                          check of EMV Book 2; ``reason`` names which (:class:`cryptogram.oda.Reason`)

Messages name the offending parameter and its length, never its value: a key, a PAN or a
cryptogram input never appears in an exception.
"""

from __future__ import annotations


class CryptogramError(Exception):
    """Root of every error raised by :mod:`cryptogram`."""


class InvalidKey(CryptogramError, ValueError):
    """A key of the wrong length or kind for the requested algorithm."""


class InvalidInput(CryptogramError, ValueError):
    """Input that cannot enter the computation (wrong length, not digits, a missing element)."""


class OdaError(CryptogramError):
    """A certificate or signature of offline data authentication failed one check of EMV Book 2.

    ``reason`` is a :class:`cryptogram.oda.Reason`; the message explains it without any key or
    card data.
    """

    def __init__(self, reason: object, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        value = getattr(reason, "value", reason)
        super().__init__(f"{value}: {detail}" if detail else str(value))
