"""What each command imports at start-up, kept as module lists (never as times).

Each case runs ``hcekit`` in a fresh interpreter with standard output piped (not a terminal),
then lists ``sys.modules``. Start-up CPU is what ``benchmarks/bench_startup.py`` measures; these
lists are what keeps it: a command must not import a package it does not use.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = (
    "import sys\n"
    "from cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "sys.stdout.flush()\n"
    "with open(__import__('os').environ['HCEKIT_MODULES'], 'w') as f:\n"
    "    f.write('\\n'.join(sorted(sys.modules)))\n"
    "raise SystemExit(code)\n"
)

#: Packages no command needs just to start.
NEVER = ("matplotlib", "nfc", "smartcard", "pyemv", "playwright", "gunicorn", "psycopg", "pgserver")
#: What the token service, the rich renderer and the cryptography bring in.
SERVER = ("flask", "werkzeug", "sqlalchemy", "alembic", "redis", "flask_limiter", "tsp_backend")


def imported(tmp_path: Path, *args: str) -> tuple[set[str], str]:
    """The top-level and dotted module names ``hcekit ARGS`` imported, and its standard output."""
    listing = tmp_path / "modules.txt"
    env = {**os.environ, "HCEKIT_MODULES": str(listing), "PYTHONPATH": str(ROOT)}
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(listing.read_text().split()), done.stdout


def top(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_tlv_decode_imports_neither_rich_nor_the_service(tmp_path: Path) -> None:
    """``hcekit tlv decode`` (piped) prints its tree without rich, Flask, SQLAlchemy or crypto."""
    modules, out = imported(tmp_path, "tlv", "decode", "9F0206000000001250")
    assert "9F02 Amount, Authorised (Numeric) [6] 000000001250" in out
    forbidden = {"rich", "cryptography", "httpx", "pydantic", *NEVER, *SERVER}
    assert top(modules) & forbidden == set()
    assert {"hce", "terminal", "cryptogram"} & top(modules) == set()
    assert {"apdu.command", "apdu.response", "apdu.trace", "apdu.dol", "cli.render"} & modules == set()


def test_tlv_decode_json_imports_no_rich(tmp_path: Path) -> None:
    """``--json`` needs no renderer at all."""
    modules, out = imported(tmp_path, "tlv", "decode", "--json", "770A82021980940408010100")
    assert '"tag": "94"' in out
    assert "rich" not in top(modules)


def test_help_imports_no_command(tmp_path: Path) -> None:
    """``hcekit --help`` lists the commands from the table: no command module, no rich, no apdu."""
    modules, out = imported(tmp_path, "--help")
    assert "tlv" in out and "demo" in out
    assert top(modules) & {"rich", "apdu", "hce", "terminal", "cryptogram", *NEVER, *SERVER} == set()
    assert {m for m in modules if m.startswith("cli.")} <= {"cli.main", "cli.common"}


def test_demo_help_imports_no_service(tmp_path: Path) -> None:
    """``hcekit demo --help`` does not start (or import) the token service."""
    modules, _ = imported(tmp_path, "demo", "--help")
    assert top(modules) & {*NEVER, *SERVER, "hce", "terminal"} == set()


def test_demo_imports_nothing_it_does_not_use(tmp_path: Path) -> None:
    """The whole demo runs without the hardware stacks, plotting, the peer library or a server."""
    modules, out = imported(tmp_path, "demo", "--no-apdus", "--trace", str(tmp_path / "trace.jsonl"))
    assert "every outcome as expected" in out
    assert top(modules) & set(NEVER) == set()
