"""Decoding and rendering shared by ``hcekit tlv``, ``apdu``, ``trace`` and ``tap``.

Every decoder here returns plain JSON-ready dicts (what ``--json`` prints), and every renderer
turns those dicts into rich renderables, so the text and JSON outputs can never disagree.

The TLV node dicts are made in :mod:`cli.plain` (which needs no rich).
A TLV node is ``{"tag": "9F26", "name": …, "length": 8, "value": "<UPPERCASE HEX>"}`` plus
``"children"`` for constructed tags, ``"meaning"`` where :func:`apdu.tags.interpret` has one
and ``"bits"`` where :func:`apdu.tags.explain_bits` explains a bitmap.

:class:`TraceContext` carries what a trace has taught so far (the kernel, from the selected
AID; the PDOL from SELECT; CDOL1, CDOL2, DDOL and UDOL from records) so that GET PROCESSING
OPTIONS, GENERATE AC, INTERNAL AUTHENTICATE and COMPUTE CRYPTOGRAPHIC CHECKSUM data can be
split into named fields (EMV 4.4 Book 3 §5.4).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text
from rich.tree import Tree

from apdu import dol as _dol
from apdu import tags as _tags
from apdu import tlv as _tlv
from apdu.cid import cryptogram_type
from apdu.command import CommandAPDU
from apdu.errors import APDUError, DecodeError
from apdu.response import ResponseAPDU
from apdu.trace import TraceRecord, mask_record
from cli.plain import Node as Node
from cli.plain import decode_tlv as decode_tlv
from cli.plain import tlv_node as tlv_node
from cli.plain import tlv_nodes as tlv_nodes

# --- TLV ----------------------------------------------------------------------------------


def _node_label(node: Node) -> Text:
    label = Text()
    label.append(node["tag"], style="bold cyan")
    label.append(f" {node['name']}" if node.get("name") else "")
    label.append(f" [{node['length']}]", style="dim")
    if "children" not in node:
        label.append(f" {node['value']}" if node["value"] else "", style="yellow")
        if node.get("meaning") and not node.get("bits"):
            label.append(f"  {node['meaning']}", style="green")
    return label


def add_nodes(tree: Tree, nodes: Sequence[Node]) -> Tree:
    """Add node dicts (and their bits and children) under ``tree``."""
    for node in nodes:
        branch = tree.add(_node_label(node))
        for bit in node.get("bits", ()):
            branch.add(Text(bit, style="dim green"))
        if "children" in node:
            add_nodes(branch, node["children"])
    return tree


def tlv_tree(nodes: Sequence[Node], label: str | Text = "TLV") -> Tree:
    """A rich tree of node dicts."""
    return add_nodes(Tree(label, guide_style="dim"), nodes)


# --- trace context ------------------------------------------------------------------------


@dataclass
class TraceContext:
    """What a trace has revealed so far, used to split DOL data into named fields."""

    kernel: str | None = None
    fixed_kernel: bool = False
    pdol: bytes | None = None
    cdol1: bytes | None = None
    cdol2: bytes | None = None
    ddol: bytes | None = None
    udol: bytes | None = None
    generate_ac_seen: int = 0

    def learn(self, nodes: Iterable[_tlv.TLV]) -> None:
        """Remember DOLs (9F38, 8C, 8D, 9F49, 9F69) and the kernel from a response's data."""
        for node in _tlv.walk(nodes):
            if node.constructed:
                continue
            if node.tag in (0x84, 0x4F) and not self.fixed_kernel:
                self.kernel = _tags.kernel_for_aid(node.value) or self.kernel
            elif node.tag == 0x9F38:
                self.pdol = node.value
            elif node.tag == 0x8C:
                self.cdol1 = node.value
            elif node.tag == 0x8D:
                self.cdol2 = node.value
            elif node.tag == 0x9F49:
                self.ddol = node.value
            elif node.tag == 0x9F69 and self.kernel == "mastercard":
                self.udol = node.value


def _dol_fields(dol: bytes | None, data: bytes, kernel: str | None) -> list[Node] | None:
    """Split DOL-built data into named fields (EMV 4.4 Book 3 §5.4), or ``None`` if it does not fit."""
    if dol is None:
        return None
    try:
        entries = _dol.parse_dol(dol)
        if _dol.dol_length(entries) != len(data):
            return None
        values = _dol.split_dol_data(entries, data)
    except (APDUError, ValueError):
        return None
    return [
        tlv_node(_tlv.TLV(entry.tag, values.get(entry.tag, b"")), kernel)
        for entry in entries
    ]


def _printable(name: bytes) -> str | None:
    if name and all(0x20 <= b < 0x7F for b in name):
        return name.decode("ascii")
    return None


# --- commands -----------------------------------------------------------------------------


def decode_command(raw: bytes, context: TraceContext | None = None) -> dict[str, Any]:
    """A command APDU decoded: header, case, lengths, and its data by command.

    Raises :class:`apdu.errors.MalformedAPDU` for bytes that are not a command APDU.
    """
    context = context or TraceContext()
    command = CommandAPDU.from_bytes(raw)
    info: dict[str, Any] = {
        "name": command.name,
        "cla": f"{command.cla:02X}",
        "ins": f"{command.ins:02X}",
        "p1": f"{command.p1:02X}",
        "p2": f"{command.p2:02X}",
        "case": command.case,
        "lc": len(command.data) if command.data else None,
        "le": command.le,
        "data": command.data.hex().upper(),
    }
    fields: list[dict[str, str]] = []
    ins, p1, p2, data = command.ins, command.p1, command.p2, command.data
    kernel = context.kernel
    if ins == 0xA4:
        fields.append({"name": "selection", "value": _select_by(p1)})
        fields.append({"name": "occurrence", "value": "next" if p2 & 0x02 else "first or only"})
        if data:
            text = _printable(data)
            fields.append({"name": "DF name", "value": text if text else data.hex().upper()})
            scheme = _tags.scheme_of(data)
            if scheme:
                fields.append({"name": "application", "value": scheme})
    elif ins == 0xB2:
        fields.append({"name": "record", "value": str(p1)})
        fields.append({"name": "SFI", "value": str(p2 >> 3)})
        if p2 & 0x07 != 0x04:
            reference = f"P2 bits 3-1 = {p2 & 0x07} (not 'P1 is a record number')"
            fields.append({"name": "reference", "value": reference})
    elif ins == 0xA8 and data:
        _add_template_83(info, data, context)
    elif ins == 0xAE:
        kind = cryptogram_type(p1) or "RFU"
        fields.append({"name": "cryptogram", "value": kind})
        fields.append({"name": "CDA requested", "value": "yes" if p1 & 0x10 else "no"})
        dol = context.cdol2 if context.generate_ac_seen else context.cdol1
        split = _dol_fields(dol, data, kernel)
        if split is not None:
            info["dol"] = split
            info["dol_name"] = "CDOL2" if context.generate_ac_seen else "CDOL1"
    elif ins in (0xCA, 0xCB):
        tag = (p1 << 8) | p2
        fields.append({"name": "tag", "value": f"{tag:04X} {_tags.name(tag, kernel)}"})
    elif ins == 0x20:
        pin = {0x80: "plaintext", 0x88: "enciphered"}.get(p2, f"P2 {p2:02X}")
        fields.append({"name": "PIN", "value": pin})
        if data:
            fields.append({"name": "PIN block", "value": f"{len(data)} bytes, not shown"})
            info["data"] = ""
    elif ins == 0x88 and data:
        split = _dol_fields(context.ddol, data, kernel)
        if split is not None:
            info["dol"], info["dol_name"] = split, "DDOL"
    elif ins == 0x2A and command.cla & 0x80 and data:
        split = _dol_fields(context.udol, data, kernel)
        if split is not None:
            info["dol"], info["dol_name"] = split, "UDOL"
    if fields:
        info["fields"] = fields
    return info


def _select_by(p1: int) -> str:
    """SELECT P1 (ISO/IEC 7816-4 §11.2.2 Table 63)."""
    return {
        0x00: "MF, DF or EF by file identifier",
        0x01: "child DF",
        0x02: "EF under the current DF",
        0x03: "parent DF",
        0x04: "by DF name",
        0x08: "from the MF by path",
        0x09: "from the current DF by path",
    }.get(p1, f"P1 {p1:02X}")


def _add_template_83(info: dict[str, Any], data: bytes, context: TraceContext) -> None:
    """GET PROCESSING OPTIONS data: tag 83 around the PDOL data (EMV 4.4 Book 3 §6.5.8)."""
    try:
        nodes = _tlv.decode(data)
    except DecodeError as exc:
        info["tlv_error"] = str(exc)
        return
    info["tlv"] = tlv_nodes(nodes, context.kernel)
    template = _tlv.find(nodes, 0x83)
    if template is not None:
        split = _dol_fields(context.pdol, template.value, context.kernel)
        if split is not None:
            info["dol"], info["dol_name"] = split, "PDOL"


# --- responses ----------------------------------------------------------------------------


def decode_response(
    raw: bytes, context: TraceContext | None = None, command: CommandAPDU | None = None
) -> dict[str, Any]:
    """A response APDU decoded: its data as TLV and the status word's meaning.

    ``command`` (when known) lets format 1 responses (tag 80) of GET PROCESSING OPTIONS and
    GENERATE AC be split into their data objects (EMV 4.4 Book 3 §6.5.8.4, §6.5.5.4).
    Raises :class:`apdu.errors.MalformedAPDU` for fewer than two bytes.
    """
    context = context or TraceContext()
    response = ResponseAPDU.from_bytes(raw)
    info: dict[str, Any] = {
        "sw": response.sw_hex,
        "meaning": response.meaning,
        "ok": response.ok,
        "length": len(response.data),
        "data": response.data.hex().upper(),
    }
    if not response.data:
        return info
    try:
        nodes = _tlv.decode(response.data)
    except DecodeError as exc:
        info["tlv_error"] = str(exc)
        nodes = [n for n in exc.partial if isinstance(n, _tlv.TLV)]
        if nodes:
            info["tlv"] = tlv_nodes(nodes, context.kernel)
        return info
    context.learn(nodes)
    info["tlv"] = tlv_nodes(nodes, context.kernel)
    if command is not None and len(nodes) == 1 and nodes[0].tag == 0x80:
        split = _format1(command.ins, nodes[0].value, context.kernel)
        if split:
            info["format1"] = split
    return info


def _format1(ins: int, value: bytes, kernel: str | None) -> list[Node] | None:
    """Response Message Template Format 1 split into its data objects."""
    if ins == 0xA8 and len(value) >= 2 and (len(value) - 2) % 4 == 0:
        parts = [(0x82, value[:2]), (0x94, value[2:])]
    elif ins == 0xAE and len(value) >= 11:
        parts = [(0x9F27, value[:1]), (0x9F36, value[1:3]), (0x9F26, value[3:11])]
        if len(value) > 11:
            parts.append((0x9F10, value[11:]))
    else:
        return None
    return [tlv_node(_tlv.TLV(tag, part), kernel) for tag, part in parts]


# --- rendering ----------------------------------------------------------------------------


def command_tree(info: dict[str, Any], label: str | Text | None = None) -> Tree:
    """A rich tree for :func:`decode_command`'s dict."""
    if label is None:
        label = Text(info["name"], style="bold")
    tree = Tree(label, guide_style="dim")
    header = f"CLA {info['cla']}  INS {info['ins']}  P1 {info['p1']}  P2 {info['p2']}  case {info['case']}"
    if info.get("lc") is not None:
        header += f"  Lc {info['lc']}"
    if info.get("le") is not None:
        header += f"  Le {info['le']}"
    tree.add(Text(header, style="dim"))
    for item in info.get("fields", ()):
        line = Text()
        line.append(f"{item['name']}: ", style="bold")
        line.append(item["value"])
        tree.add(line)
    if info.get("dol") is not None:
        add_nodes(tree.add(Text(f"{info.get('dol_name', 'DOL')} data", style="bold")), info["dol"])
    elif info.get("tlv"):
        add_nodes(tree, info["tlv"])
    elif info.get("data"):
        tree.add(Text(f"data {info['data']}", style="yellow"))
    if info.get("tlv_error"):
        tree.add(Text(f"not TLV: {info['tlv_error']}", style="red"))
    return tree


def response_tree(info: dict[str, Any], label: str | Text | None = None) -> Tree:
    """A rich tree for :func:`decode_response`'s dict."""
    if label is None:
        label = Text()
        label.append(info["sw"], style="bold green" if info["ok"] else "bold red")
        label.append(f" {info['meaning']}")
    tree = Tree(label, guide_style="dim")
    if info.get("tlv"):
        add_nodes(tree, info["tlv"])
    if info.get("format1"):
        add_nodes(tree.add(Text("format 1 fields", style="bold")), info["format1"])
    if info.get("tlv_error"):
        tree.add(Text(f"not TLV: {info['tlv_error']}", style="red"))
        if not info.get("tlv"):
            tree.add(Text(f"data {info['data']}", style="yellow"))
    return tree


# --- traces -------------------------------------------------------------------------------


def decode_trace(
    records: Sequence[TraceRecord], *, kernel: str | None = None, masked: bool = True
) -> list[dict[str, Any]]:
    """Every record of a trace decoded, remembering DOLs and the kernel along the way."""
    context = TraceContext(kernel=kernel, fixed_kernel=kernel is not None)
    out: list[dict[str, Any]] = []
    last_command: CommandAPDU | None = None
    for index, original in enumerate(records, start=1):
        record = mask_record(original) if masked else original
        entry: dict[str, Any] = {"index": index, **record.to_json()}
        try:
            if record.dir == "C":
                last_command = CommandAPDU.from_bytes(record.raw)
                entry["command"] = decode_command(record.raw, context)
                if last_command.ins == 0xAE:
                    context.generate_ac_seen += 1
            else:
                entry["response"] = decode_response(record.raw, context, last_command)
        except APDUError as exc:
            entry["error"] = str(exc)
            if record.dir == "C":
                last_command = None
        out.append(entry)
    return out


def trace_renderable(entries: Sequence[dict[str, Any]]) -> RenderableType:
    """One tree per record of :func:`decode_trace`'s list, with timing."""
    trees = []
    for entry in entries:
        label = Text()
        label.append(f"#{entry['index']:<3}", style="dim")
        if entry.get("t") is not None:
            label.append(f" {entry['t'] * 1000:9.1f} ms", style="dim")
        if entry["dir"] == "C":
            label.append("  C→ ", style="bold blue")
            label.append(entry.get("command", {}).get("name", "?"), style="bold")
            label.append(f"  {entry['hex']}", style="dim")
            tree = command_tree(entry["command"], label) if "command" in entry else Tree(label)
        else:
            label.append("  ←R ", style="bold magenta")
            sw_ok = entry.get("response", {}).get("ok", False)
            label.append(str(entry.get("sw")), style="bold green" if sw_ok else "bold red")
            if entry.get("ms") is not None:
                label.append(f"  card {entry['ms']:.1f} ms ", style="cyan")
            if "response" in entry:
                label.append(f" {entry['response']['meaning']}")
            tree = response_tree(entry["response"], label) if "response" in entry else Tree(label)
        if entry.get("error"):
            tree.add(Text(f"not an APDU: {entry['error']}", style="red"))
        trees.append(tree)
    return Group(*trees)
