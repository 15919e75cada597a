"""Tests of apdu.kernels: Kernel Identifiers of EMV Contactless Book B §3.3.2."""

from __future__ import annotations

import pytest

from apdu.kernels import KERNELS, kernel, kernel_named, path_of

# Book B: Kernel 2 is Book C-2 (Mastercard), 3 C-3 (Visa), 4 C-4 (American Express), 5 C-5 (JCB),
# 6 C-6 (Discover), 7 C-7 (UnionPay).
BOOK_B = [
    (2, "mastercard", "EMV Contactless Book C-2"),
    (3, "visa",       "EMV Contactless Book C-3"),
    (4, "amex",       "EMV Contactless Book C-4"),
    (5, "jcb",        "EMV Contactless Book C-5"),
    (6, "discover",   "EMV Contactless Book C-6"),
    (7, "unionpay",   "EMV Contactless Book C-7"),
]


@pytest.mark.parametrize(("kernel_id", "name", "book"), BOOK_B)
def test_kernel_identifiers(kernel_id: int, name: str, book: str) -> None:
    """Each Kernel Identifier names the book of Book B, by id and by name."""
    found = kernel(kernel_id)
    assert found is not None and (found.name, found.book) == (name, book)
    assert kernel_named(name) is found


def test_paths() -> None:
    """C-2, C-4, C-5 run the GENERATE AC flow; C-3, C-6, C-7 the GPO (qVSDC-like) flow."""
    assert {k.id: k.path for k in KERNELS} == {
        2: "mastercard", 4: "mastercard", 5: "mastercard", 3: "visa", 6: "visa", 7: "visa",
    }
    assert path_of(1) is None and kernel(0) is None and kernel_named("maestro") is None
