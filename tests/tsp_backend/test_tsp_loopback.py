"""The loopback service that ``hcekit demo`` and the browser tests run on."""

from __future__ import annotations

import gc
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tsp_backend.testing import LoopbackTSP


def test_a_client_that_resets_mid_answer_leaves_no_file_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A browser that resets the connection while a static file is being served (a page closed
    mid-load) leaves no file handle for the garbage collector to find (a ResourceWarning)."""
    unraisable: list[str] = []

    def hook(meta: Any) -> None:
        unraisable.append(f"{meta.exc_type.__name__}: {meta.exc_value}")

    monkeypatch.setattr(sys, "unraisablehook", hook)
    with LoopbackTSP(tmp_path) as tsp:
        port = int(tsp.url.rsplit(":", 1)[1])
        for _ in range(50):
            with socket.create_connection(("127.0.0.1", port)) as client:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))   # RST
                client.sendall(b"GET /wallet/static/icon.svg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        with socket.create_connection(("127.0.0.1", port)) as client:   # the server is still serving
            client.sendall(b"GET /wallet/static/icon.svg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert client.recv(12) == b"HTTP/1.1 200"
        time.sleep(0.2)   # let the server's threads finish the reset connections
        gc.collect()
    assert [u for u in unraisable if "icon.svg" in u] == []
