"""The command line's error contract, checked in one place: one ``error: …`` line on standard error."""

from __future__ import annotations

import pytest


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """Standard error of the command just run, checked to be one line that starts ``error: ``."""
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    return err.strip()
