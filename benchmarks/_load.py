"""The load client of the token-service benchmarks, and where the CPU went while it ran.

:func:`run_client` writes the requests to a file and starts this module as a *separate*
process (``python _load.py --client PORT``), so that the client's own work is not the
server's; that process sends each ``POST /api/authorize`` once over raw keep-alive HTTP/1.1
sockets, one selector loop, closed loop (:func:`run_load`), and prints what it got. Around it,
:func:`run_client` samples the CPU time of the named server processes (psutil, their live
descendants included) and of the whole machine, and splits it per request. ``bench_authorize.py``
and ``bench_scaleout.py`` both measure with it. Not a test.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import selectors
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _servers import ROOT, Servers

# ---------------------------------------------------------------------- the load client process


def raw_request(body: dict[str, Any], api_key: str, key: str | None = None) -> bytes:
    """One ``POST /api/authorize`` as HTTP/1.1 bytes; ``key`` is its Idempotency-Key (default: fresh)."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    head = (
        "POST /api/authorize HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        f"Authorization: Bearer {api_key}\r\n"
        f"Idempotency-Key: {key or uuid.uuid4()}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


_CODE = re.compile(rb'"responseCode":\s*"(\w\w)"')
_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)


class _Conn:
    """One keep-alive connection of the load client."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = self._connect()
        self.buf = bytearray()
        self.started = 0.0
        self.request = b""
        self.index = 0

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def reconnect(self) -> None:
        """Open a new socket (the server closed the old one)."""
        self.sock.close()
        self.sock = self._connect()
        self.buf.clear()

    def response(self) -> tuple[int, bytes, bool] | None:
        """``(status, body, close)`` once a whole response is buffered."""
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self.buf[: end + 2])
        match = _LENGTH.search(head)
        length = int(match.group(1)) if match else 0
        if len(self.buf) < end + 4 + length:
            return None
        body = bytes(self.buf[end + 4 : end + 4 + length])
        del self.buf[: end + 4 + length]
        return int(head[9:12]), body, bool(_CLOSE.search(head))


def run_load(port: int, connections: int, requests: list[bytes]) -> dict[str, Any]:
    """Send every request once over ``connections`` keep-alive sockets, closed loop.

    Returns ``{"elapsed_s", "latencies", "answers", "cpu_s"}``: ``answers[i]`` lists the
    response codes request ``i`` received (one, unless the server answered it twice), and
    ``cpu_s`` is this process's own CPU time. A connection the server closes before answering
    is reopened and the same request sent again (a replay, as a terminal would).
    """
    selector = selectors.DefaultSelector()
    pending = iter(range(len(requests)))
    latencies: list[float] = []
    answers: list[list[str]] = [[] for _ in requests]
    active = 0

    def send_next(conn: _Conn) -> bool:
        index = next(pending, None)
        if index is None:
            return False
        conn.index = index
        conn.request = requests[index]
        conn.started = time.perf_counter()
        conn.sock.sendall(conn.request)
        return True

    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    conns = [_Conn(port) for _ in range(connections)]
    for conn in conns:
        if send_next(conn):
            selector.register(conn.sock, selectors.EVENT_READ, conn)
            active += 1
    while active:
        for key, _ in selector.select():
            conn = key.data
            chunk = conn.sock.recv(65536)
            if not chunk:
                selector.unregister(conn.sock)
                conn.reconnect()
                conn.sock.sendall(conn.request)
                selector.register(conn.sock, selectors.EVENT_READ, conn)
                continue
            conn.buf += chunk
            answer = conn.response()
            if answer is None:
                continue
            status, body, close = answer
            latencies.append(time.perf_counter() - conn.started)
            match = _CODE.search(body)
            answers[conn.index].append(match.group(1).decode() if match else f"HTTP {status}")
            if close:
                selector.unregister(conn.sock)
                conn.reconnect()
                selector.register(conn.sock, selectors.EVENT_READ, conn)
            if not send_next(conn):
                selector.unregister(conn.sock)
                active -= 1
    elapsed = time.perf_counter() - began
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    for conn in conns:
        conn.sock.close()
    return {
        "elapsed_s": elapsed,
        "latencies": latencies,
        "answers": answers,
        "cpu_s": (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime),
    }


def answer_codes(answers: Iterable[list[str]]) -> dict[str, int]:
    """How many answers of each response code :func:`run_load` received."""
    return dict(Counter(code for codes in answers for code in codes))


def client_main(port: int, connections: int, source: Path) -> None:
    """The load-client process: the requests of ``source`` (JSON), :func:`run_load`'s result on stdout.

    ``source`` holds ``{"api_key", "items": [{"body", "key"?}]}``; an item without ``key`` gets
    a fresh Idempotency-Key.
    """
    doc = json.loads(source.read_text())
    requests = [raw_request(item["body"], doc["api_key"], item.get("key")) for item in doc["items"]]
    sys.stdout.write(json.dumps(run_load(port, connections, requests)))


# ---------------------------------------------------------------------- CPU accounting


def _tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    import psutil

    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    total = sum(times)
    return total - idle, total


@dataclass(frozen=True)
class ClientRun:
    """A load-client process's result, and the CPU each process group spent meanwhile per request."""

    result: dict[str, Any]
    cpu_ms: dict[str, float]
    machine_ms: float
    machine_busy: float


def run_client(
    servers: Servers,
    port: int,
    connections: int,
    api_key: str,
    items: list[dict[str, Any]],
    groups: dict[str, int],
) -> ClientRun:
    """Send ``items`` (:func:`client_main`) from a load-client process; its result and the CPU split.

    ``groups`` names the processes to account for (their live descendants included); the load
    client's own CPU and the rest of the machine ("other") are added per request.
    """
    source = servers.root / "load.json"
    source.write_text(json.dumps({"api_key": api_key, "items": items}))
    cpu0 = {name: _tree_cpu(pid) for name, pid in groups.items()}
    busy0, total0 = _machine_busy()
    out = subprocess.run(
        [sys.executable, __file__, "--client", str(port), "--connections", str(connections),
         "--source", str(source)],
        cwd=ROOT,
        env=servers.env,
        check=True,
        capture_output=True,
    )
    busy1, total1 = _machine_busy()
    cpu1 = {name: _tree_cpu(pid) for name, pid in groups.items()}
    result = json.loads(out.stdout)
    n = len(items)
    cpu_ms = {name: 1000 * (cpu1[name] - cpu0[name]) / n for name in groups}
    cpu_ms["load client"] = 1000 * result["cpu_s"] / n
    machine_ms = 1000 * (busy1 - busy0) / n
    cpu_ms["other"] = max(0.0, machine_ms - sum(cpu_ms.values()))
    return ClientRun(result, cpu_ms, machine_ms, (busy1 - busy0) / max(1e-9, total1 - total0))


def main() -> None:
    """``--client PORT --connections N --source FILE``: the load-client process."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--client", type=int, required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--source", required=True)
    args = parser.parse_args()
    client_main(args.client, args.connections, Path(args.source))


if __name__ == "__main__":
    main()
