"""Test doubles for clients of the token service, shipped as library code (as :mod:`terminal.testing` is).

:class:`LoopbackTSP` runs the whole token service -- SQLite in a directory, the in-process
network simulators, development mode -- on a free loopback port, served by a thread of the
calling process, so a wallet, a terminal or a benchmark can talk real HTTP to it with nothing
configured. ``hcekit demo`` runs on it. :func:`wait_until_healthy` waits for a service started as
a process of its own (``hcekit serve``) to answer.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["LoopbackTSP", "wait_until_healthy"]


class LoopbackTSP:
    """The token service on ``127.0.0.1:<free port>``, served by a thread of this process.

    ``directory`` holds its SQLite database and secrets (a temporary directory, removed on
    :meth:`close`, when not given). ``overrides`` are :class:`tsp_backend.config.Config` fields.
    Use as a context manager; :attr:`url` is the base URL.
    """

    def __init__(self, directory: Path | None = None, **overrides: Any) -> None:
        from werkzeug.serving import make_server

        from tsp_backend.app import create_app
        from tsp_backend.config import Config

        self._owned = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="hcekit-tsp-")) if directory is None else directory
        values: dict[str, Any] = {
            "dev_mode": True,
            "ratelimit_enabled": False,
            "argon2_time_cost": 1,
            "argon2_memory_kib": 8192,
        }
        values.update(overrides)
        try:
            self.app = create_app(Config.embedded(self.directory / "instance", **values))
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            self._server = make_server("127.0.0.1", 0, _closing_responses(self.app), threaded=True)
        except BaseException:
            self._cleanup()
            raise
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="hcekit-tsp", daemon=True)
        self._thread.start()

    def _cleanup(self) -> None:
        """Close the database's connections and remove the directory if this object made it."""
        try:
            app = getattr(self, "app", None)
            if app is not None:
                app.extensions["hcekit"].engine.dispose()
        finally:
            if self._owned:
                shutil.rmtree(self.directory, ignore_errors=True)

    def close(self) -> None:
        """Stop serving, close the database and remove the temporary directory."""
        self._server.shutdown()
        self._thread.join(10)
        self._server.server_close()
        self._cleanup()

    def __enter__(self) -> LoopbackTSP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _closing_responses(app: Any) -> Any:
    """``app`` whose response iterables are closed even when the client goes away mid-answer.

    Werkzeug's development server closes the iterable in a ``finally`` that first drains the
    socket; when the browser has already reset the connection that drain raises, ``close()`` is
    skipped and a static file's handle is left to the garbage collector. A generator wrapper is
    closed as soon as the server drops it, and closes the iterable it wraps.
    """

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        iterable = app(environ, start_response)

        def chunks() -> Any:
            try:
                yield from iterable
            finally:
                close = getattr(iterable, "close", None)
                if close is not None:
                    close()

        return chunks()

    return wsgi


def wait_until_healthy(base: str, process: subprocess.Popen[bytes], *, log: Path | None = None) -> None:
    """Wait (up to a minute) until the service at ``base`` answers ``/healthz`` with 200.

    Raises ``RuntimeError`` if ``process`` exits first (with the end of ``log`` when given) or the
    minute passes.
    """
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = log.read_text()[-2000:] if log is not None else f"exit status {process.returncode}"
            raise RuntimeError(f"the service exited: {said}")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the service did not become healthy")
