"""``hcekit serve`` (the token service) and ``hcekit vault`` (PAN vault maintenance).

``hcekit serve`` runs the Flask development server for one worker and gunicorn for
``--workers N`` (N > 1). Several workers must share state, so N > 1 needs ``REDIS_URL`` (the
in-process store is per process). Configuration comes from the environment (see
:mod:`tsp_backend.config`).

Under gunicorn the logs are JSON lines with card numbers masked (:mod:`tsp_backend.jsonlog`)
unless ``HCEKIT_LOG_JSON=0``; one process logs JSON with ``HCEKIT_LOG_JSON=1``. The workers'
``/metrics`` samples meet in ``PROMETHEUS_MULTIPROC_DIR`` (:mod:`tsp_backend.metrics`): a
private temporary directory made before the workers fork and removed when gunicorn stops,
unless the variable is already set; a worker that exits is marked dead there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import click

from cli.common import fail, print_json


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="TCP port.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes; more than 1 runs gunicorn and needs REDIS_URL.",
)
@click.option(
    "--dev/--no-dev", default=None, help="Development routes (/api/dev/outbox); default HCEKIT_DEV."
)
def serve(host: str, port: int, workers: int, dev: bool | None) -> None:
    """Run the token service (provisioning, lifecycle, devices) on HOST:PORT.

    \b
    Production defaults (HCEKIT_DEV unset):
    - issuer master keys come from HCEKIT_ISSUER_MASTER_KEYS; without it, fresh random
      keys are generated on first start into <instance>/secrets.json (mode 0600) and the
      log says so. The published development keys are used only with HCEKIT_DEV=1.
    - session cookies are Secure; HCEKIT_SECURE_COOKIES=0 drops the flag for plain-http
      test set-ups.
    - the SQLite file and secrets.json are created mode 0600.
    """
    from tsp_backend.config import Config
    from tsp_backend.jsonlog import install_from_env

    install_from_env(default=workers > 1)
    overrides: dict[str, Any] = {} if dev is None else {"dev_mode": dev}
    config = Config.from_env(**overrides)
    if workers > 1 and not config.redis_url:
        raise fail("--workers > 1 needs REDIS_URL: sessions, caches and limits must be shared")
    database = config.database_url.split(":", 1)[0]
    store = "redis" if config.redis_url else "memory"
    plural = "s" if workers > 1 else ""
    click.echo(
        f"hcekit token service on http://{host}:{port} ({workers} worker{plural}; "
        f"database {database}, store {store})",
        err=True,
    )
    if workers == 1:
        from tsp_backend.app import create_app

        app = create_app(config)
        app.run(host=host, port=port, threaded=True, use_reloader=False)
        return
    run_gunicorn(config, host=host, port=port, workers=workers)


def run_gunicorn(config: Any, *, host: str, port: int, workers: int, threads: int = 4) -> None:
    """Serve ``create_app(config)`` with gunicorn: migrate once in the master, then fork workers.

    ``PROMETHEUS_MULTIPROC_DIR`` is set (to a private temporary directory, unless already set)
    before :mod:`prometheus_client` is first imported, so that every worker's metrics are summed.
    """
    with _multiprocess_metrics_dir():
        _serve_gunicorn(config, host=host, port=port, workers=workers, threads=threads)


@contextlib.contextmanager
def _multiprocess_metrics_dir() -> Iterator[str | None]:
    """``PROMETHEUS_MULTIPROC_DIR``: the one set, or a new private directory removed at the end.

    ``None`` (and a warning: each worker then answers ``/metrics`` with its own samples) when
    :mod:`prometheus_client` was imported before, too late for its multiprocess mode.
    """
    existing = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if existing:
        yield existing
        return
    if "prometheus_client" in sys.modules:
        logging.getLogger("tsp_backend").warning(
            "prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set: /metrics is per worker"
        )
        yield None
        return
    path = tempfile.mkdtemp(prefix="hcekit-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    try:
        yield path
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(path, ignore_errors=True)


def _serve_gunicorn(config: Any, *, host: str, port: int, workers: int, threads: int) -> None:
    from gunicorn.app.base import BaseApplication
    from prometheus_client import multiprocess

    from tsp_backend.app import create_app

    application = create_app(config)
    engine = application.extensions["hcekit"].engine

    def post_fork(_server: Any, _worker: Any) -> None:
        engine.dispose(close=False)

    def child_exit(_server: Any, worker: Any) -> None:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]

    class _Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            settings = {
                "bind": f"{host}:{port}",
                "workers": workers,
                "threads": threads,
                "worker_class": "gthread",
                "post_fork": post_fork,
                "child_exit": child_exit,
                "accesslog": None,
                "loglevel": "warning",
                "timeout": 60,
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return application

    _Gunicorn().run()


@click.group()
def vault() -> None:
    """PAN vault maintenance (keys come from HCEKIT_VAULT_KEYS)."""


@vault.command("rotate")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def vault_rotate(as_json: bool) -> None:
    """Re-encrypt every vault entry under the newest key version."""
    from tsp_backend.config import Config
    from tsp_backend.db import make_engine, make_sessionmaker, upgrade
    from tsp_backend.services.vault import Vault, VaultError, derive_subkey

    config = Config.from_env()
    engine = make_engine(config.database_url)
    try:
        upgrade(engine)
        vault_ = Vault(config.vault_keys, derive_subkey(config.secret_key, "pan-fingerprint"))
        with make_sessionmaker(engine)() as session, session.begin():
            try:
                count = vault_.rotate(session)
            except VaultError as exc:
                raise fail(str(exc)) from None
    finally:
        engine.dispose()
    result = {"rotated": count, "active_version": vault_.active_version}
    if as_json:
        print_json(result)
    else:
        click.echo(
            f"re-encrypted {count} vault entr{'y' if count == 1 else 'ies'} "
            f"under key version {vault_.active_version}"
        )


@vault.command("new-key")
@click.option("--version", "version", type=int, default=None, help="Version number (default: next).")
def vault_new_key(version: int | None) -> None:
    """Print a new HCEKIT_VAULT_KEYS entry to append (then run `hcekit vault rotate`)."""
    from tsp_backend.config import Config, generate_vault_key_spec

    if version is None:
        version = Config.from_env().active_vault_version + 1
    click.echo(generate_vault_key_spec(version))


@click.command("network-sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8700, show_default=True, type=int, help="TCP port.")
@click.option(
    "--latency-ms",
    default="0,0",
    show_default=True,
    help="Log-normal latency of every network: 'p50,p99' in milliseconds.",
)
@click.option(
    "--error-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Share of requests that fail with HTTP 503.",
)
@click.option(
    "--down",
    "down",
    multiple=True,
    type=click.Choice(["visa", "mastercard", "amex", "discover"]),
    help="A network in outage (repeatable); POST /admin/<network> changes it while running.",
)
def network_sim(host: str, port: int, latency_ms: str, error_rate: float, down: tuple[str, ...]) -> None:
    """Serve the card networks' authorization switches and issuers over HTTP.

    Point the token service at it with HCEKIT_NETWORK_URL=http://HOST:PORT (or one network
    with HCEKIT_NETWORK_URL_VISA …); time-outs and circuit breaker trips are then real.
    """
    from tsp_backend.services.issuers import IssuerSimulator
    from tsp_backend.services.netsim import Latency, make_simulators
    from tsp_backend.services.networks import NETWORKS
    from tsp_backend.simulators.netsim import NetworkSimServer

    try:
        latency = Latency.parse(latency_ms)
    except ValueError as exc:
        raise fail(str(exc)) from None
    simulators = make_simulators(
        tuple(NETWORKS), IssuerSimulator(), latency=latency, error_rate=error_rate, down=frozenset(down)
    )
    try:
        server = NetworkSimServer(simulators, host=host, port=port)
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    outage = ", ".join(down) or "none"
    click.echo(
        f"hcekit network simulator on {server.url} (latency {latency} ms, error rate {error_rate:g}, "
        f"down: {outage})",
        err=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


@click.command("reconcile")
@click.option("--older-than", default=0.0, show_default=True, type=float, help="Seconds in doubt at least.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def reconcile(older_than: float, as_json: bool) -> None:
    """Settle authorizations whose answer never reached the terminal (reverse or void at the issuer).

    Those in doubt after a network time-out, and those a request left pending when it died
    before recording the issuer's answer (once the request deadline, HCEKIT_REQUEST_DEADLINE_MS,
    has passed).
    """
    from tsp_backend.config import Config
    from tsp_backend.db import make_engine, make_sessionmaker, upgrade
    from tsp_backend.services.networks import NetworkClients
    from tsp_backend.services.reconcile import Reconciler
    from tsp_backend.stores import RedisStore, open_store

    config = Config.from_env()
    engine = make_engine(config.database_url)
    try:
        upgrade(engine)
        store = open_store(config.redis_url)
        client = store.client if isinstance(store, RedisStore) else None
        networks = NetworkClients(redis_client=client)
        report = Reconciler(
            make_sessionmaker(engine), networks, deadline_s=config.request_deadline_s
        ).reconcile(older_than_s=older_than)
    finally:
        engine.dispose()
    if as_json:
        print_json(report.to_json())
    else:
        click.echo(
            f"checked {report.checked} ({report.abandoned} left pending by a request that ended): "
            f"{report.reversed} reversed, {report.declined} declined, {report.still_in_doubt} still in doubt"
        )
