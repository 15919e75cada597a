"""``hcekit serve --workers N``'s prometheus-client directory (the gunicorn run is in tests/integration)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.serve import _multiprocess_metrics_dir


def test_the_operators_directory_is_used_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PROMETHEUS_MULTIPROC_DIR already set is used as it is and left in place."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with _multiprocess_metrics_dir() as path:
        assert path == str(tmp_path)
    assert tmp_path.is_dir()


def test_too_late_for_multiprocess_mode_serves_per_worker(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """prometheus_client already imported (as in this process): no directory, a warning, no crash."""
    import prometheus_client  # noqa: F401

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with _multiprocess_metrics_dir() as path:
        assert path is None
    assert "per worker" in caplog.text
