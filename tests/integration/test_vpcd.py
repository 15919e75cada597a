"""The card plugged into a real pcscd through vsmartcard-vpcd, driven by pyscard."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from apdu.command import PPSE, GenerateAC, GetData, GetProcessingOptions, ReadRecord, Select
from apdu.tlv import decode, find
from apdu.trace import TraceRecorder
from cryptogram.cvn import profile as cvn_profile
from cryptogram.luk import derive_luk
from hce.applet import CardApplet
from hce.testcard import TEST_IMK, builtin_profile
from hce.transports.vpcd import VpcdCard

pytestmark = pytest.mark.integration

CDOL1_DATA = bytes.fromhex(
    "000000001250" "000000000000" "0250" "0000000000" "0978" "250101" "00" "CAFEBABE"
    "22" "0000" "0000000000000000" "1F0302"
)


@pytest.fixture
def plugged(pcscd) -> Iterator[tuple[CardApplet, TraceRecorder, str]]:
    """A Mastercard test card connected to vpcd, and the name of the reader it sits in."""
    from smartcard.System import readers

    card = CardApplet(builtin_profile("mastercard", now=int(time.time())), clock=time.time)
    recorder = TraceRecorder()
    virtual = VpcdCard(card, pcscd.vpcd_host, pcscd.vpcd_port, tracers=[recorder])
    thread = threading.Thread(target=virtual.serve, kwargs={"reconnect": False}, daemon=True)
    thread.start()
    assert virtual.connected.wait(10), "the virtual card could not connect to vpcd"
    deadline = time.monotonic() + 15
    name = ""
    while time.monotonic() < deadline:
        names = [str(r) for r in readers() if str(r).startswith(pcscd.reader_prefix)]
        if names:
            name = sorted(names)[0]
            break
        time.sleep(0.1)
    assert name, "pcscd shows no vpcd reader"
    yield card, recorder, name
    virtual.stop()
    thread.join(10)


def _connect(reader_name: str):  # type: ignore[no-untyped-def]
    from smartcard.Exceptions import CardConnectionException, NoCardException
    from smartcard.System import readers

    reader = next(r for r in readers() if str(r) == reader_name)
    deadline = time.monotonic() + 15
    while True:
        connection = reader.createConnection()
        try:
            connection.connect()
            return connection
        except (NoCardException, CardConnectionException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _send(connection, apdu: bytes) -> bytes:  # type: ignore[no-untyped-def]
    data, sw1, sw2 = connection.transmit(list(apdu))
    return bytes(data) + bytes((sw1, sw2))


def test_pyscard_taps_the_card_through_pcscd(plugged) -> None:
    """pyscard sends SELECT PPSE … GENERATE AC through pcscd and gets a verifiable ARQC."""
    card, recorder, reader_name = plugged
    connection = _connect(reader_name)
    try:
        assert bytes(connection.getATR()) == bytes.fromhex("3B80800101")
        ppse = _send(connection, Select(PPSE).to_bytes())
        assert ppse[-2:] == b"\x90\x00"
        aid = find(decode(ppse[:-2]), 0x4F)
        assert aid is not None and aid.value == card.profile.aid
        assert _send(connection, Select(aid.value).to_bytes())[-2:] == b"\x90\x00"
        assert _send(connection, GetProcessingOptions().to_bytes())[-2:] == b"\x90\x00"
        assert _send(connection, ReadRecord(1, 1).to_bytes())[-2:] == b"\x90\x00"
        response = _send(connection, GenerateAC("ARQC", CDOL1_DATA).to_bytes())
        assert response[-2:] == b"\x90\x00"
        atc = _send(connection, GetData(0x9F36).to_bytes())
    finally:
        connection.disconnect()
    nodes = decode(response[:-2])
    values = {tag: find(nodes, tag).value for tag in (0x9F26, 0x9F27, 0x9F36, 0x9F10)}  # type: ignore[union-attr]
    assert values[0x9F27] == b"\x80"
    assert atc[:-2] == bytes.fromhex("9F3602") + values[0x9F36]
    cvn = cvn_profile("mc16")
    luk = derive_luk(cvn.derive_icc_mk(TEST_IMK, card.profile.pan, card.profile.psn), 1)
    tlvs = {
        0x9F02: CDOL1_DATA[0:6], 0x9F03: CDOL1_DATA[6:12], 0x9F1A: CDOL1_DATA[12:14],
        0x95: CDOL1_DATA[14:19], 0x5F2A: CDOL1_DATA[19:21], 0x9A: CDOL1_DATA[21:24],
        0x9C: CDOL1_DATA[24:25], 0x9F37: CDOL1_DATA[25:29], 0x82: card.profile.aip,
        0x9F36: values[0x9F36], 0x9F10: values[0x9F10],
    }
    assert cvn.verify(luk, tlvs, values[0x9F26])
    assert [r.dir for r in recorder.records][:2] == ["C", "R"]
    assert all(r.ms is not None for r in recorder.records if r.dir == "R")


def test_one_byte_apdu_is_answered_and_the_reader_stays_usable(plugged) -> None:
    """A 1-byte APDU through pcscd gets 6700; the next client still reaches the card."""
    _, _, reader_name = plugged
    connection = _connect(reader_name)
    try:
        assert _send(connection, b"\x80") == b"\x67\x00"
    finally:
        connection.disconnect()
    again = _connect(reader_name)
    try:
        assert _send(again, PPSE_SELECT)[-2:] == b"\x90\x00"
    finally:
        again.disconnect()


PPSE_SELECT = Select(PPSE).to_bytes()
