"""Contactless kernels by their Kernel Identifier, and the path hcekit drives each one on.

EMV Contactless Book B §3.3.2 gives each kernel a number, carried by the card in Kernel
Identifier (9F2A) and by the terminal's configuration: 2 is Book C-2 (Mastercard), 3 Book C-3
(Visa), 4 Book C-4 (American Express), 5 Book C-5 (JCB), 6 Book C-6 (Discover), 7 Book C-7
(UnionPay). hcekit's terminal and card implement two transaction flows: the Visa-like one
(qVSDC: the cryptogram in the GET PROCESSING OPTIONS answer) and the Mastercard-like one (M/Chip:
READ RECORD then GENERATE AC). ``path`` is the flow each kernel is driven on: C-4 and C-5 follow
the GENERATE AC flow of C-2, C-6 and C-7 the GPO flow of C-3.

>>> kernel(4).name, kernel(4).path, kernel(9) is None
('amex', 'mastercard', True)
>>> kernel_named("discover").id, path_of(7)
(6, 'visa')
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KERNELS", "Kernel", "kernel", "kernel_named", "path_of"]


@dataclass(frozen=True, slots=True)
class Kernel:
    """A contactless kernel.

    ``id`` is its Kernel Identifier (9F2A), ``name`` the network's name for it as hcekit spells
    it (``"amex"``), ``book`` the EMV Contactless book that specifies it, and ``path`` the
    transaction flow hcekit drives it on (``"visa"`` or ``"mastercard"``).
    """

    id: int
    name: str
    book: str
    path: str


KERNELS: tuple[Kernel, ...] = (
    Kernel(2, "mastercard", "EMV Contactless Book C-2", "mastercard"),
    Kernel(3, "visa", "EMV Contactless Book C-3", "visa"),
    Kernel(4, "amex", "EMV Contactless Book C-4", "mastercard"),
    Kernel(5, "jcb", "EMV Contactless Book C-5", "mastercard"),
    Kernel(6, "discover", "EMV Contactless Book C-6", "visa"),
    Kernel(7, "unionpay", "EMV Contactless Book C-7", "visa"),
)
"""The kernels of EMV Contactless Book B §3.3.2, with the path hcekit drives them on."""

_BY_ID = {k.id: k for k in KERNELS}
_BY_NAME = {k.name: k for k in KERNELS}


def kernel(kernel_id: int) -> Kernel | None:
    """The kernel with this Kernel Identifier, ``None`` for one not in :data:`KERNELS`."""
    return _BY_ID.get(kernel_id)


def kernel_named(name: str) -> Kernel | None:
    """The kernel with this name (``"visa"``, ``"amex"`` ...), ``None`` for another name."""
    return _BY_NAME.get(name)


def path_of(kernel_id: int) -> str | None:
    """The transaction path (``"visa"`` or ``"mastercard"``) of a Kernel Identifier, or ``None``."""
    found = _BY_ID.get(kernel_id)
    return found.path if found is not None else None
