"""Transmission (61XX/6CXX), the local, scripted and replay transports, and reader specifications."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.command import ReadRecord, Select
from apdu.trace import TraceRecord, TraceRecorder, read_trace
from terminal.config import Transaction
from terminal.errors import CardRemoved, ConfigError, TransportError
from terminal.tap import run_tap
from terminal.testing import CardTerminalPair, ScriptedTransport, ScriptMismatch
from terminal.transmission import MAX_GET_RESPONSE, Transmission
from terminal.transports import parse_reader
from terminal.transports.local import LocalTransport
from terminal.transports.replay import ReplayTransport
from tests.terminal.terminal_cards import visa_card


def test_transmission_traces_each_wire_apdu() -> None:
    """Each APDU on the wire reaches the tracers with t and the card's ms."""
    recorder = TraceRecorder()
    card = ScriptedTransport([("00B2010C", "6110"), ("00C0000010", "70" + "0E" + "00" * 14 + "9000")])
    tx = Transmission(card, tracers=(recorder,))
    response = tx.exchange(ReadRecord(1, 1), "read_record")
    assert response.sw == 0x9000 and len(response.data) == 16 + 0
    assert [r.dir for r in recorder.records] == ["C", "R", "C", "R"]
    assert all(r.t is not None for r in recorder.records)
    assert len(tx.exchanges) == 2


def test_endless_61xx_is_a_transport_error() -> None:
    """A card that never stops answering 61XX is an error, not a loop."""
    card = ScriptedTransport([(None, "6101")] * (MAX_GET_RESPONSE + 2))
    with pytest.raises(TransportError):
        Transmission(card).exchange(ReadRecord(1, 1))


def test_card_removed_mid_tap() -> None:
    """A card that leaves the field mid-tap is CardRemoved at once."""
    steps = visa_card()
    count = {"n": 0}
    transport = LocalTransport(lambda c: b"")

    def card(command: bytes) -> bytes:
        count["n"] += 1
        if count["n"] == 3:
            transport.remove()
        return bytes.fromhex(steps[count["n"] - 1][1])

    transport.card = card
    with pytest.raises(CardRemoved):
        run_tap(transport, Transaction(amount=1250))


def test_a_card_that_raises_is_a_transport_error() -> None:
    """An exception inside the card function becomes TransportError."""

    def card(command: bytes) -> bytes:
        raise RuntimeError("boom")

    with pytest.raises(TransportError):
        LocalTransport(card).transmit(b"\x00\xa4\x04\x00")


def test_scripted_transport_checks_commands() -> None:
    """A command the script did not expect is ScriptMismatch."""
    card = ScriptedTransport([("00A4", "9000")])
    with pytest.raises(ScriptMismatch):
        card.transmit(bytes.fromhex("00B2010C00"))


def _trace_of_visa_tap() -> list[TraceRecord]:
    card = ScriptedTransport(visa_card())
    pair = CardTerminalPair(card.as_card())
    pair.tap(1250)
    return pair.recorder.records


def test_replay_reproduces_a_tap() -> None:
    """A recorded tap replays to the same outcome, although the UN (and so the GPO) differs."""
    records = _trace_of_visa_tap()
    text = "".join(json.dumps(r.to_json()) + "\n" for r in records)
    replay = ReplayTransport(read_trace(io.StringIO(text)))
    result = run_tap(replay, Transaction(amount=1250))
    assert result.outcome.outcome.value == "online_request"
    assert replay.unused == 0


def test_replay_file(tmp_path: Path) -> None:
    """ReplayTransport.from_file reads a JSON Lines trace."""
    path = tmp_path / "tap.jsonl"
    path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in _trace_of_visa_tap()))
    assert ReplayTransport.from_file(path).unused == 4


def test_replay_missing_file_is_config_error(tmp_path: Path) -> None:
    """A missing trace file is a ConfigError with its name."""
    with pytest.raises(ConfigError):
        ReplayTransport.from_file(tmp_path / "absent.jsonl")


@pytest.mark.parametrize(
    ("command",                                  "answer"),
    [
        (Select(bytes.fromhex("A0000000041010")),  "6A82"),   # SELECT of another name
        (ReadRecord(2, 1),                         "6A83"),   # READ RECORD not recorded
        (Select(b"2PAY.SYS.DDF01"),                "9000"),   # same bytes
    ],
)
def test_replay_matching(command: object, answer: str) -> None:
    """Replay answers by exact bytes, else header (SELECT: name), else 6A82/6A83/6D00 (architecture.md)."""
    replay = ReplayTransport([
        TraceRecord("C", Select(b"2PAY.SYS.DDF01").to_bytes()), TraceRecord("R", bytes.fromhex("9000")),
        TraceRecord("C", Select(bytes.fromhex("A0000000031010")).to_bytes()), TraceRecord("R", b"\x90\x00"),
    ])
    assert replay.transmit(command.to_bytes()).hex().upper() == answer  # type: ignore[attr-defined]


def test_replay_unknown_instruction() -> None:
    """An instruction absent from the trace gets 6D00."""
    assert ReplayTransport([]).transmit(bytes.fromhex("80CA9F3600")) == b"\x6d\x00"


@given(st.lists(st.binary(min_size=4, max_size=40), max_size=8), st.binary(min_size=0, max_size=40))
def test_replay_always_answers(commands: list[bytes], probe: bytes) -> None:
    """Whatever was recorded and asked, replay answers with at least a status word."""
    records = []
    for c in commands:
        records += [TraceRecord("C", c), TraceRecord("R", c[:2] + b"\x90\x00")]
    assert len(ReplayTransport(records).transmit(probe)) >= 2


@pytest.mark.parametrize(
    ("spec",                      "parsed"),
    [
        ("pcsc",                   ("pcsc", None)),
        ("pcsc:1",                 ("pcsc", "1")),
        ("pcsc:ACS ACR122U",       ("pcsc", "ACS ACR122U")),
        ("nfc:usb",                ("nfc", "usb")),
        ("nfc:usb:072f:2200",      ("nfc", "usb:072f:2200")),
        ("nfc:udp",                ("nfc", "udp")),
        ("nfc:udp:localhost:5432", ("nfc", "udp:localhost:5432")),
        ("replay:tap.jsonl",       ("replay", "tap.jsonl")),
        ("sim",                    ("sim", None)),
    ],
)
def test_parse_reader(spec: str, parsed: tuple[str, str | None]) -> None:
    """Reader specifications of `hcekit tap --reader`."""
    assert parse_reader(spec) == parsed


@pytest.mark.parametrize("spec", ["usb", "nfc:tty", "replay", "pcsc2"])
def test_parse_reader_refuses(spec: str) -> None:
    """Unknown kinds and incomplete specifications are ConfigError."""
    with pytest.raises(ConfigError):
        parse_reader(spec)


def test_pick_reader() -> None:
    """pcsc:NAME matches part of a name; a missing reader is ReaderNotFound."""
    from terminal.errors import ReaderNotFound
    from terminal.transports.pcsc import pick_reader

    with pytest.raises(ReaderNotFound):
        pick_reader([], None)
    with pytest.raises(ReaderNotFound):
        pick_reader(["Virtual PCD 00 00"], "acr")
    with pytest.raises(ReaderNotFound):
        pick_reader(["Virtual PCD 00 00"], "3")
