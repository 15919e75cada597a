"""``hcekit serve`` (the token service) and ``hcekit vault`` (PAN vault maintenance).

``hcekit serve`` runs the Flask development server for one worker and gunicorn for
``--workers N`` (N > 1). Several workers must share state, so N > 1 needs ``REDIS_URL`` (the
in-process store is per process). Configuration comes from the environment (see
:mod:`tsp_backend.config`).
"""

from __future__ import annotations

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
    """Run the token service (provisioning, lifecycle, devices) on HOST:PORT."""
    from tsp_backend.app import create_app
    from tsp_backend.config import Config

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
        app = create_app(config)
        app.run(host=host, port=port, threaded=True, use_reloader=False)
        return
    run_gunicorn(config, host=host, port=port, workers=workers)


def run_gunicorn(config: Any, *, host: str, port: int, workers: int, threads: int = 4) -> None:
    """Serve ``create_app(config)`` with gunicorn: migrate once in the master, then fork workers."""
    from gunicorn.app.base import BaseApplication

    from tsp_backend.app import create_app

    application = create_app(config)
    engine = application.extensions["hcekit"].engine

    def post_fork(_server: Any, _worker: Any) -> None:
        engine.dispose(close=False)

    class _Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            settings = {
                "bind": f"{host}:{port}",
                "workers": workers,
                "threads": threads,
                "worker_class": "gthread",
                "post_fork": post_fork,
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
