"""``hcekit emulate`` and the vpcd protocol, against a real TCP server playing vpcd's part."""

from __future__ import annotations

import json
import socket
import threading

import pytest
from click.testing import CliRunner

from cli.main import cli, main
from hce.errors import TransportError
from hce.transports import parse_via
from hce.transports.vpcd import frame

SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")


def _vpcd_script(server: socket.socket, replies: list[bytes]) -> None:
    """Act as vpcd for one card: power on, ask the ATR, send SELECT PPSE, then hang up."""
    conn, _ = server.accept()
    with conn:
        def read() -> bytes:
            header = conn.recv(2, socket.MSG_WAITALL)
            return conn.recv(int.from_bytes(header, "big"), socket.MSG_WAITALL)

        conn.sendall(frame(b"\x01"))
        conn.sendall(frame(b"\x04"))
        replies.append(read())
        conn.sendall(frame(SELECT_PPSE))
        replies.append(read())
        conn.sendall(frame(b"\x00"))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("vpcd",                  ("vpcd", "localhost", 35963)),
        ("vpcd:10.0.0.2:4000",    ("vpcd", "10.0.0.2", 4000)),
        ("nfc:udp",               ("nfc", "udp:localhost:54321", None)),
        ("nfc:udp:127.0.0.1:99",  ("nfc", "udp:127.0.0.1:99", None)),
        ("nfc:usb:054c:06c3",     ("nfc", "usb:054c:06c3", None)),
    ],
)
def test_parse_via(spec: str, expected: tuple[str, str, int | None]) -> None:
    """--via specifications split into kind, host or nfcpy path, and port."""
    assert parse_via(spec) == expected


@pytest.mark.parametrize("spec", ["pcsc", "vpcd:host:99999", "nfc:bluetooth"])
def test_parse_via_rejects_unknown(spec: str) -> None:
    """Unknown transports and bad ports are TransportErrors."""
    with pytest.raises(TransportError):
        parse_via(spec)


def test_emulate_once_over_vpcd_answers_and_traces_masked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The command connects to vpcd, gives the contactless ATR, answers SELECT PPSE and traces it."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    replies: list[bytes] = []
    script = threading.Thread(target=_vpcd_script, args=(server, replies), daemon=True)
    script.start()
    trace = tmp_path / "t.jsonl"
    result = CliRunner().invoke(cli, ["emulate", "--via", f"vpcd:127.0.0.1:{port}", "--once",
                                      "--kernel", "mastercard", "--trace", str(trace)])
    script.join(10)
    server.close()
    assert result.exit_code == 0, result.output
    assert replies[0] == bytes.fromhex("3B80800101")
    assert replies[1][-2:] == b"\x90\x00"
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [line["dir"] for line in lines] == ["C", "R"] and lines[1]["sw"] == "9000"
    assert "ms" in lines[1]
    assert "C> 00A404000E325041592E5359532E444446303100" in result.output


def test_emulate_without_vpcd_is_one_error_line(capsys) -> None:  # type: ignore[no-untyped-def]
    """With nobody listening, --once exits 1 with one 'error:' line."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["emulate", "--via", f"vpcd:127.0.0.1:{port}", "--once", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach vpcd") and err.count("\n") == 1


def test_emulate_rejects_a_bad_profile(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """An invalid profile file is one error line, exit 1."""
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"version": 1}))
    assert main(["emulate", "--profile", str(path), "--once"]) == 1
    assert "invalid card profile" in capsys.readouterr().err


def _read_reply(conn: socket.socket) -> bytes:
    header = conn.recv(2, socket.MSG_WAITALL)
    if len(header) < 2:
        return b""
    return conn.recv(int.from_bytes(header, "big"), socket.MSG_WAITALL)


def test_malformed_frames_are_answered_6700() -> None:
    """A 1-byte frame that is no vpcd control message, and a 3-byte APDU, get 6700, not silence."""
    from hce.applet import CardApplet
    from hce.testcard import builtin_profile
    from hce.transports.vpcd import VpcdCard

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    card = VpcdCard(CardApplet(builtin_profile("visa", now=0)), "127.0.0.1", port)
    thread = threading.Thread(target=card.serve, kwargs={"reconnect": False}, daemon=True)
    thread.start()
    conn, _ = server.accept()
    with conn:
        conn.settimeout(5)
        for payload in (b"\x80", b"\x00\xa4\x04"):
            conn.sendall(frame(payload))
            assert _read_reply(conn) == b"\x67\x00"
        conn.sendall(frame(SELECT_PPSE))
        assert _read_reply(conn)[-2:] == b"\x90\x00"
    card.stop()
    thread.join(5)
    server.close()


def test_card_reconnects_after_the_connection_is_reset() -> None:
    """vpcd resetting the TCP connection (RST) does not end serving: the card connects again."""
    import struct

    from hce.applet import CardApplet
    from hce.testcard import builtin_profile
    from hce.transports.vpcd import CONTACTLESS_ATR, VpcdCard

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    port = server.getsockname()[1]
    card = VpcdCard(CardApplet(builtin_profile("visa", now=0)), "127.0.0.1", port)
    thread = threading.Thread(target=card.serve, kwargs={"reconnect": True, "retry_interval": 0.05},
                              daemon=True)
    thread.start()
    first, _ = server.accept()
    first.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    first.sendall(frame(b"\x01"))
    first.close()  # linger 0: the peer sees a connection reset
    second, _ = server.accept()
    with second:
        second.settimeout(5)
        second.sendall(frame(b"\x04"))
        assert _read_reply(second) == CONTACTLESS_ATR
    card.stop()
    thread.join(5)
    server.close()
    assert not thread.is_alive()


def test_listen_mode_serves_a_relaying_reader() -> None:
    """vpcd-listen: the card waits, the relay (a phone's HCE service, here a socket) connects and taps."""
    from hce.applet import CardApplet
    from hce.testcard import builtin_profile
    from hce.transports.vpcd import CONTACTLESS_ATR, VpcdCard

    card = VpcdCard(CardApplet(builtin_profile("mastercard", now=0)), "127.0.0.1", 0, listen=True)
    thread = threading.Thread(target=card.serve, kwargs={"reconnect": True, "retry_interval": 0.05},
                              daemon=True)
    thread.start()
    import time
    deadline = time.monotonic() + 10
    while card.address is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert card.address is not None
    with socket.create_connection(card.address, timeout=5) as relay:
        relay.sendall(frame(b"\x01") + frame(b"\x04"))
        assert _read_reply(relay) == CONTACTLESS_ATR
        relay.sendall(frame(SELECT_PPSE))
        assert _read_reply(relay)[-2:] == b"\x90\x00"
    card.stop()
    thread.join(5)
    assert not thread.is_alive()


def test_parse_via_listen() -> None:
    """vpcd-listen defaults to every interface on vpcd's port."""
    assert parse_via("vpcd-listen") == ("vpcd-listen", "0.0.0.0", 35963)
    assert parse_via("vpcd-listen:127.0.0.1:4000") == ("vpcd-listen", "127.0.0.1", 4000)
