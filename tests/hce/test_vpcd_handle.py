"""VpcdCard.handle answers vpcd's frames without a socket."""

from __future__ import annotations

from hce.applet import CardApplet
from hce.testcard import builtin_profile
from hce.transports.vpcd import VpcdCard


def test_a_stray_byte_is_answered_wrong_length() -> None:
    """A 1-byte payload that is no control message gets 6700 (ISO/IEC 7816-4 wrong length)."""
    card = VpcdCard(CardApplet(builtin_profile("visa", now=0)))
    assert card.handle(b"\x42") == bytes.fromhex("6700")
