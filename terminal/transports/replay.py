"""The replay transport: a recorded trace answers the kernel's commands.

A real card's tap, recorded with ``hcekit tap --trace FILE``, can be reproduced offline and
attached to a bug report. The matching rule is the trace contract of docs/architecture.md:

1. the recorded response of the first *unused* recorded command with the same bytes;
2. else of the first unused command with the same CLA INS P1 P2 (for SELECT, also the same
   name: a trace's SELECT of another AID must not answer this one);
3. else a status word: 6A82 for SELECT, 6A83 for READ RECORD, 6D00 for anything else
   (ISO/IEC 7816-4 §5.6).

Responses carry the card time recorded with them (``ms``), so a replayed tap's waterfall
shows the real card's time.

>>> from apdu.trace import TraceRecord
>>> t = ReplayTransport([TraceRecord("C", bytes.fromhex("00B2010C00")),
...                      TraceRecord("R", bytes.fromhex("70009000"), ms=4.0)])
>>> t.transmit(bytes.fromhex("00B2010C00")).hex().upper(), t.last_card_ms
('70009000', 4.0)
>>> t.transmit(bytes.fromhex("00B2010C00")).hex().upper()
'6A83'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from apdu.errors import APDUError
from apdu.sw import SW
from apdu.trace import TraceRecord, read_trace
from terminal.errors import ConfigError
from terminal.transports.base import Transport


@dataclass(slots=True)
class _Pair:
    command: bytes
    response: bytes
    ms: float | None
    used: bool = False

    def same_name(self, command: bytes) -> bool:
        if command[1:2] != b"\xa4":
            return True
        return _select_name(self.command) == _select_name(command)


def _select_name(command: bytes) -> bytes:
    if len(command) <= 5:
        return b""
    lc = command[4]
    return command[5:5 + lc]


def pairs(records: Sequence[TraceRecord]) -> list[tuple[TraceRecord, TraceRecord]]:
    """The (command, response) pairs of a trace; a command without a response is dropped."""
    out = []
    pending: TraceRecord | None = None
    for record in records:
        if record.dir == "C":
            pending = record
        elif pending is not None:
            out.append((pending, record))
            pending = None
    return out


class ReplayTransport(Transport):
    """A transport whose card is a recorded trace (see the module docstring for the matching rule)."""

    def __init__(self, records: Sequence[TraceRecord], *, name: str = "replay") -> None:
        self.name = name
        self._pairs = [_Pair(c.raw, r.raw, r.ms) for c, r in pairs(records)]

    @classmethod
    def from_file(cls, path: str | Path) -> ReplayTransport:
        """Load a JSON Lines trace file; a file that is not a trace is :class:`ConfigError`."""
        path = Path(path)
        try:
            with path.open(encoding="utf-8") as fp:
                records = read_trace(fp)
        except OSError as exc:
            raise ConfigError(f"cannot read trace {path}: {exc.strerror or exc}") from exc
        except APDUError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        return cls(records, name=f"replay:{path.name}")

    def transmit(self, command: bytes) -> bytes:
        """The recorded answer to ``command`` (first unused exact match, else same header)."""
        command = bytes(command)
        match = next((p for p in self._pairs if not p.used and p.command == command), None)
        if match is None and len(command) >= 4:
            match = next(
                (p for p in self._pairs
                 if not p.used and p.command[:4] == command[:4] and p.same_name(command)),
                None,
            )
        if match is None:
            self.last_card_ms = None
            ins = command[1] if len(command) > 1 else 0
            missing = {0xA4: SW.FILE_NOT_FOUND, 0xB2: SW.RECORD_NOT_FOUND}.get(ins, SW.INS_NOT_SUPPORTED)
            return missing.to_bytes(2, "big")
        match.used = True
        self.last_card_ms = match.ms
        return match.response

    @property
    def unused(self) -> int:
        """How many recorded exchanges have not been replayed."""
        return sum(not p.used for p in self._pairs)
