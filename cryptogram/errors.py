"""The exceptions of :mod:`cryptogram`, rooted in one class.

::

    CryptogramError
     ├── InvalidKey       a key of the wrong length or kind for the algorithm (also ValueError)
     ├── InvalidInput     data that cannot enter the computation: a PAN that is not digits, an
     │                    ATC that is not 2 bytes, a missing data element (also ValueError)
     └── SealingError     (in :mod:`cryptogram.sealing`) a malformed public key or envelope, or
                          one that fails authentication (also ValueError)

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
