"""ISO/IEC 14443-4 block protocol, card side: RATS/ATS, chaining, R-block rules, WTX, DESELECT."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hce.errors import TransportError
from hce.transports.isodep import Apdu, Deselected, Ignore, IsoDepTarget, Send, WtxAccepted


def active(rats: str = "E080", **kw: int) -> IsoDepTarget:
    """A target after RATS."""
    target = IsoDepTarget(**kw)
    target.rats(bytes.fromhex(rats))
    return target


@pytest.mark.parametrize(
    ("fsci", "fwi", "ats"),
    [
        (8, 8, "0578808002"),  # 256-byte frames, FWT 77 ms, CID supported
        (5, 4, "0575804002"),  # 64-byte frames, FWT 4.8 ms
    ],
)
def test_ats_encodes_fsci_and_fwi(fsci: int, fwi: int, ats: str) -> None:
    """The ATS carries FSCI in T0 and FWI in TB (ISO/IEC 14443-4 §5.2)."""
    assert IsoDepTarget(fsci=fsci, fwi=fwi).rats(bytes.fromhex("E080")).hex().upper() == ats


def test_bad_rats_is_a_transport_error() -> None:
    """A frame that is not RATS cannot activate the target."""
    with pytest.raises(TransportError):
        IsoDepTarget().rats(b"\x50\x00")


def test_chained_command_is_acknowledged_then_delivered() -> None:
    """I-blocks with the chaining bit get R(ACK); the last one delivers the whole APDU."""
    target = active()
    assert target.receive(bytes.fromhex("1200A4")) == Send(bytes.fromhex("A2"))
    assert target.receive(bytes.fromhex("030400")) == Apdu(bytes.fromhex("00A40400"))
    assert target.respond(b"\x90\x00") == bytes.fromhex("039000")


def test_long_response_is_chained_by_fsd() -> None:
    """With FSD 16 (RATS E000) a 30-byte response goes out in chained I-blocks fetched by R(ACK)."""
    target = active("E000")
    assert isinstance(target.receive(bytes.fromhex("0200B2010C00")), Apdu)
    response = bytes(range(28)) + b"\x90\x00"
    first = target.respond(response)
    assert first[0] == 0x12 and len(first) == 14
    second = target.receive(bytes.fromhex("A3"))
    assert isinstance(second, Send) and second.frame[0] == 0x13
    third = target.receive(bytes.fromhex("A2"))
    assert isinstance(third, Send) and third.frame[0] == 0x02
    assert first[1:] + second.frame[1:] + third.frame[1:] == response


def test_r_blocks_follow_the_block_number_rules() -> None:
    """R(NAK) with the card's number repeats the last block; with another number gets R(ACK)."""
    target = active()
    target.receive(bytes.fromhex("0200A4040000"))
    last = target.respond(b"\x90\x00")
    assert target.receive(bytes.fromhex("B2")) == Send(last)
    assert target.receive(bytes.fromhex("B3")) == Send(bytes.fromhex("A2"))


def test_cid_is_echoed() -> None:
    """With a CID in RATS, the card's blocks carry it (ISO/IEC 14443-4 §7.1.1.2)."""
    target = active("E081")
    assert target.receive(bytes.fromhex("0A0100A4040000")) == Apdu(bytes.fromhex("00A4040000"))
    assert target.respond(b"\x90\x00") == bytes.fromhex("0A019000")


def test_wtx_and_deselect() -> None:
    """S(WTX) is built with WTXM and its echo accepted; S(DESELECT) is answered and deactivates."""
    target = active()
    assert target.wtx(3) == bytes.fromhex("F203")
    assert target.receive(bytes.fromhex("F203")) == WtxAccepted(3)
    assert target.receive(bytes.fromhex("C2")) == Deselected(bytes.fromhex("C2"))
    assert not target.active
    with pytest.raises(TransportError):
        target.wtx(60)


# Every block type with and without CID, NAD and chaining (ISO/IEC 14443-4 §7.1.1), then any byte.
_BLOCK_PCBS = [0x02, 0x03, 0x06, 0x0A, 0x0E, 0x12, 0x13, 0x16, 0x1A, 0xA2, 0xA3, 0xAA, 0xB2, 0xB3, 0xC2, 0xCA,
               0xF2, 0xFA]
_PCB = st.one_of(st.sampled_from(_BLOCK_PCBS), st.integers(0, 255))
_FRAME = st.one_of(
    st.just(b""), st.builds(lambda pcb, rest: bytes((pcb,)) + rest, _PCB, st.binary(max_size=40)),
)


@given(_FRAME)
def test_fuzz_frames_never_raise(frame: bytes) -> None:
    """Any frame yields the event its block type calls for (ISO/IEC 14443-4 §7.1.1), never an exception:
    an APDU only from an I-block ending its chain, with the frame's INF as the APDU; a Send only for an
    I-block that chains or an R-block; DESELECT and WTX only from their S-blocks; anything else ignored."""
    event = active().receive(frame)
    pcb = frame[0] if frame else -1
    header = 1 + bool(pcb & 0x08) + bool(pcb & 0xE6 == 0x06)   # CID byte, NAD byte
    if isinstance(event, Apdu):
        assert pcb & 0xE2 == 0x02 and not pcb & 0x10
        assert event.apdu == frame[header:]
    elif isinstance(event, Send):
        assert (pcb & 0xE2 == 0x02 and pcb & 0x10) or pcb & 0xE6 == 0xA2
    elif isinstance(event, Deselected):
        assert pcb & 0xF7 == 0xC2
    elif isinstance(event, WtxAccepted):
        assert pcb & 0xF7 == 0xF2 and event.wtxm == frame[header] & 0x3F
    else:
        assert isinstance(event, Ignore)
