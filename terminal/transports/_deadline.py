"""Run a blocking driver call with a deadline, so a stuck reader is an error, never a hang."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from terminal.errors import TransportTimeout

T = TypeVar("T")


def call_with_timeout(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Call ``fn`` in a daemon thread; raise :class:`TransportTimeout` if it takes over ``timeout`` s.

    The thread of a call that timed out is abandoned (drivers offer no way to interrupt
    ``SCardTransmit``); the transport that used it must be closed.
    """
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=run, name=f"hcekit-{what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TransportTimeout(f"{what} did not complete within {timeout:g} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]
