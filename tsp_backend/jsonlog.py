"""Structured logs: one JSON object per line, with card numbers masked.

:class:`JSONFormatter` is a stdlib :class:`logging.Formatter`: every record becomes
``{"time", "level", "logger", "message", …extra fields, "exc"}`` on one line. Before it is
written, every string in it — the formatted message, the extra fields (``log.info(..., extra=
{...})``), the traceback — goes through :func:`mask`, a chain of processors in the manner of
structlog's:

1. **Track 2 equivalent data** (EMV tag 57; ISO/IEC 7813 layout): a PAN of 12–19 digits, the
   separator ``D`` (hex) or ``=`` (magnetic stripe text), YYMM and the service code, then
   discretionary data — the PAN is masked, the discretionary data (which carries dynamic CVV
   and CVC3 values) replaced by ``*``, as :mod:`apdu.trace` does for tag 57.
2. **PANs**: a number of 13–19 digits standing alone that passes the Luhn check
   (:func:`apdu.pan.luhn_valid`) is shown as :func:`apdu.pan.mask_pan` shows a PAN (first six,
   last four). A run of 13 or more digits that touches letters or is longer than 19 digits — a
   PAN inside a hex dump (``5A08…5F24``) touches other digits — is masked so when any 13–19
   digit window of it passes: a number that merely happens to is masked too, which costs a log
   reader nothing.

Enabled by ``HCEKIT_LOG_JSON=1`` (:func:`install_from_env`, called by the application factory),
and by default under ``hcekit serve --workers N`` (``HCEKIT_LOG_JSON=0`` keeps plain text).

>>> mask("card 4111111111111111 declined")
'card 411111******1111 declined'
>>> mask("track2 4111111111111111D30121011234567890F")
'track2 411111******1111D3012101***********'
>>> mask("order 1234567890123 shipped")
'order 1234567890123 shipped'
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from typing import Any

from apdu.pan import luhn_valid, mask_pan

__all__ = ["JSONFormatter", "install", "install_from_env", "mask"]

_TRACK2 = re.compile(r"(\d{12,19})([D=])(\d{7})([0-9A-F]*)", re.IGNORECASE)
_DIGITS = re.compile(r"\d{13,}")

#: attributes every LogRecord has; anything else on a record came from ``extra=``
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _track2(match: re.Match[str]) -> str:
    pan, separator, expiry_service, discretionary = match.groups()
    return mask_pan(pan) + separator + expiry_service + "*" * len(discretionary)


def _holds_pan(run: str) -> bool:
    """Whether some 13–19 digit window of ``run`` passes the Luhn check."""
    for length in range(13, min(19, len(run)) + 1):
        for start in range(len(run) - length + 1):
            if luhn_valid(run[start : start + length]):
                return True
    return False


def _pan(match: re.Match[str]) -> str:
    run, text = match.group(0), match.string
    before = text[match.start() - 1] if match.start() > 0 else " "
    after = text[match.end()] if match.end() < len(text) else " "
    alone = len(run) <= 19 and not before.isalnum() and not after.isalnum()
    return mask_pan(run) if (luhn_valid(run) if alone else _holds_pan(run)) else run


def mask(text: str) -> str:
    """``text`` with Track 2 data and PANs masked (module docstring)."""
    return _DIGITS.sub(_pan, _TRACK2.sub(_track2, text))


def _scrub(value: Any) -> Any:
    """A JSON-ready copy of ``value`` with every string (and every long integer) masked."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        text = str(value)
        return mask(text) if len(text) >= 13 else value
    if isinstance(value, dict):
        return {str(key): _scrub(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_scrub(item) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return mask(bytes(value).hex().upper())
    return mask(str(value))


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one masked JSON line."""
        moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        document: dict[str, Any] = {
            "time": f"{moment}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, item in vars(record).items():
            if key not in _STANDARD and key not in document:
                document[key] = item
        if record.exc_info:
            document["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            document["exc"] = record.exc_text
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(_scrub(document), ensure_ascii=False)


def install(level: int = logging.WARNING) -> logging.Handler:
    """Send the root logger's records (``level`` and above) to stderr as JSON lines; the handler
    (a second call replaces it). The default is the level Python logs at when nothing is set."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if isinstance(existing.formatter, JSONFormatter):
            root.removeHandler(existing)
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)
    return handler


def enabled(default: bool = False) -> bool:
    """Whether ``HCEKIT_LOG_JSON`` asks for JSON logs (``default`` when unset)."""
    raw = os.environ.get("HCEKIT_LOG_JSON", "").strip().lower()
    if not raw:
        return default
    return raw not in ("0", "false", "no", "off")


def install_from_env(default: bool = False) -> bool:
    """:func:`install` if ``HCEKIT_LOG_JSON`` says so; whether it did."""
    if not enabled(default):
        return False
    install()
    return True
