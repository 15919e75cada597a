"""Application selection: the PPSE, the candidate list, SELECT AID (EMV Contactless Book B §3.3).

The kernel's actions for the SELECT states of :data:`terminal.kernel.TRANSITIONS`. Each takes
the kernel and the card's answer and returns the next command, or ``None`` once the tap has an
outcome; the kernel derives its next state from the command (:func:`terminal.kernel.waiting_on`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from apdu.command import CommandAPDU, GetProcessingOptions, Select
from apdu.dol import build_dol_data
from apdu.kernels import path_of
from apdu.response import ResponseAPDU
from apdu.tlv import decode, to_dict, walk
from terminal.config import supported_aid
from terminal.outcome import Outcome

if TYPE_CHECKING:
    from terminal.kernel import Kernel

__all__ = ["TERMINAL_APP_VERSION", "Candidate", "on_aid", "on_next_candidate", "on_no_ppse", "on_ppse",
           "select_next"]

#: Application Version Number (terminal) 9F09 per kernel path (Book C-3 Annex A: VCPS 2.2 is
#: 0096; Book C-2 Annex A: M/Chip 0002).
TERMINAL_APP_VERSION: dict[str, bytes] = {"visa": b"\x00\x96", "mastercard": b"\x00\x02"}


@dataclass(frozen=True, slots=True)
class Candidate:
    """An application on the candidate list (EMV Contactless Book B §3.3.2).

    ``priority`` is the Application Priority Indicator (87) low nibble, 0 for none (after all
    others); ``order`` its place in the PPSE, which breaks ties.
    """

    aid: bytes
    label: str
    priority: int
    kernel_id: int
    kernel: str
    order: int = 0

    @property
    def sort_key(self) -> tuple[int, int]:
        """Priority 1 first, 15 last, none after every prioritised entry; PPSE order on ties."""
        return (self.priority or 16, self.order)


def on_ppse(k: Kernel, response: ResponseAPDU) -> CommandAPDU | None:
    """Build the candidate list from the PPSE's FCI (EMV Contactless Book B §3.3.2)."""
    nodes = decode(response.data)
    found: list[Candidate] = []
    for order, entry in enumerate(n for n in walk(nodes) if n.tag == 0x61):
        aid_node = entry.find(0x4F)
        if aid_node is None:
            continue
        match = supported_aid(aid_node.value, k.config.supported_aids)
        if match is None:
            continue
        label_node, prio_node, kid_node = entry.find(0x50), entry.find(0x87), entry.find(0x9F2A)
        kernel_id = kid_node.value[0] if kid_node is not None and kid_node.value else match.kernel_id
        kernel = k.config.kernel or path_of(kernel_id) or match.kernel
        found.append(Candidate(
            aid=aid_node.value,
            label=label_node.value.decode("ascii", "replace") if label_node else match.name,
            priority=prio_node.value[0] & 0x0F if prio_node is not None and prio_node.value else 0,
            kernel_id=kernel_id,
            kernel=kernel,
            order=order,
        ))
    k.candidates = sorted(found, key=lambda c: c.sort_key)
    if not k.candidates:
        return k._finish(Outcome.TRY_ANOTHER_INTERFACE, "no application on the card is supported")
    return select_next(k)


def on_no_ppse(k: Kernel, response: ResponseAPDU) -> CommandAPDU | None:
    """No PPSE: the card is not contactless-capable here (Book B §3.3.2.2)."""
    return k._finish(Outcome.TRY_ANOTHER_INTERFACE, f"SELECT PPSE answered {response.sw_hex}")


def on_next_candidate(k: Kernel, response: ResponseAPDU) -> CommandAPDU | None:
    """The application is not there or refused: try the next candidate (Book B §3.3.3)."""
    return select_next(k)


def select_next(k: Kernel) -> CommandAPDU | None:
    if not k.candidates:
        return k._finish(Outcome.END_APPLICATION, "no candidate application could be selected")
    k.candidate = k.candidates.pop(0)
    k.card = {}
    k._oda_records = []
    return Select(k.candidate.aid)


def on_aid(k: Kernel, response: ResponseAPDU) -> CommandAPDU | None:
    """Keep the FCI's data and send GET PROCESSING OPTIONS with PDOL data (EMV 4.4 Book 3 §10.1)."""
    nodes = decode(response.data)
    fci = to_dict(nodes)
    assert k.candidate is not None
    k.card = {k: v for k, v in fci.items() if k != 0x84}
    k.card[0x84] = fci.get(0x84, k.candidate.aid)
    k.card.setdefault(0x4F, k.candidate.aid)
    k.terminal[0x9F09] = TERMINAL_APP_VERSION.get(k.candidate.kernel, b"\x00\x02")
    pdol = fci.get(0x9F38, b"")
    pdol_data = build_dol_data(pdol, k.terminal, format_of=k._format_of) if pdol else b""
    k._pdol_data = pdol_data
    return GetProcessingOptions(pdol_data)
