"""TLV node dicts and their plain-text tree, without rich (what ``hcekit tlv decode`` needs).

A TLV node is ``{"tag": "9F26", "name": …, "length": 8, "value": "<UPPERCASE HEX>"}`` plus
``"children"`` for constructed tags, ``"meaning"`` where :func:`apdu.tags.interpret` has one
and ``"bits"`` where :func:`apdu.tags.explain_bits` explains a bitmap. :mod:`cli.render` turns
the same dicts into rich trees; :func:`plain_tree` writes the text rich would write for a tree
whose every line fits the width, and declines (``None``) otherwise, so output never depends on
which of the two printed it. Importing rich costs more start-up time than decoding, which is why
this module exists (``tests/cli/test_startup.py`` keeps the modules each command imports).
"""

from __future__ import annotations

import itertools
import os
import re
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from apdu import tags as _tags
from apdu import tlv as _tlv

Node = dict[str, Any]

_BRANCH, _LAST, _PIPE, _SPACE = "├── ", "└── ", "│   ", "    "


def tlv_node(node: _tlv.TLV, kernel: str | None = None) -> Node:
    """One decoded data object as a JSON-ready dict (children recursively)."""
    out: Node = {
        "tag": node.tag_hex,
        "name": _tags.name(node.tag, kernel),
        "length": len(node.value),
        "value": node.value.hex().upper(),
    }
    if node.constructed:
        out["children"] = [tlv_node(child, kernel) for child in node.children]
        return out
    meaning = _tags.interpret(node.tag, node.value, kernel)
    if meaning and meaning.replace(" ", "").upper() != out["value"]:
        out["meaning"] = meaning
    bits = _tags.explain_bits(node.tag, node.value, kernel)
    if bits:
        out["bits"] = list(bits)
    return out


def tlv_nodes(nodes: Iterable[_tlv.TLV], kernel: str | None = None) -> list[Node]:
    """Decoded data objects as JSON-ready dicts."""
    return [tlv_node(node, kernel) for node in nodes]


def decode_tlv(data: bytes, *, strict: bool = False, kernel: str | None = None) -> list[Node]:
    """Decode BER-TLV (EMV 4.4 Book 3 Annex B) into node dicts; raises :class:`DecodeError`."""
    return tlv_nodes(_tlv.decode(data, strict=strict), kernel)


def node_label(node: Node) -> str:
    """The text of a node's line: tag, name, [length], value and (without bits) its meaning."""
    label: str = node["tag"]
    if node.get("name"):
        label += f" {node['name']}"
    label += f" [{node['length']}]"
    if "children" not in node:
        if node["value"]:
            label += f" {node['value']}"
        if node.get("meaning") and not node.get("bits"):
            label += f"  {node['meaning']}"
    return label


_WORD = re.compile(r"\s*\S+\s*")


def _simple(text: str) -> bool:
    """Whether every character of ``text`` takes one cell and is printable (as rich counts)."""
    return text.isprintable() and all(
        ord(c) < 0x300 or (unicodedata.east_asian_width(c) in "NaHA" and not unicodedata.combining(c))
        for c in text
    )


def _wrap(text: str, width: int) -> list[str] | None:
    """``text`` broken into lines of ``width`` cells at word boundaries, the way rich does.

    Words are runs of non-space with the spaces that follow; a word that does not fit the rest
    of the line starts the next one. ``None`` when rich would do something this does not (a word
    longer than the width, which rich folds; a line whose trailing spaces overflow, which rich
    trims; a character that is not one cell wide).
    """
    if width <= 0 or not _simple(text):
        return None
    breaks = [0]
    offset = 0
    position = 0
    while (match := _WORD.match(text, position)) is not None:
        start, position = match.span()
        word = match.group()
        length = len(word.rstrip())
        if width - offset >= length:
            offset += len(word)
        elif length > width:
            return None
        elif offset and start:
            breaks.append(start)
            offset = len(word)
    breaks.append(len(text))
    lines = [text[a:b] for a, b in itertools.pairwise(breaks)] or [text]
    if any(len(line) > width for line in lines):
        return None
    return lines


def _add(out: list[str], first: str, rest: str, text: str, width: int) -> bool:
    lines = _wrap(text, width - len(first))
    if lines is None:
        return False
    out.append(first + lines[0])
    out.extend(rest + line for line in lines[1:])
    return True


def _lines(nodes: Sequence[Node], prefix: str, out: list[str], width: int) -> bool:
    for index, node in enumerate(nodes):
        last = index == len(nodes) - 1
        inner = prefix + (_SPACE if last else _PIPE)
        if not _add(out, prefix + (_LAST if last else _BRANCH), inner, node_label(node), width):
            return False
        bits = node.get("bits", ())
        children = node.get("children", ())
        for number, bit in enumerate(bits):
            end = number == len(bits) - 1 and not children
            guide, rest = (_LAST, _SPACE) if end else (_BRANCH, _PIPE)
            if not _add(out, inner + guide, inner + rest, bit, width):
                return False
        if not _lines(children, inner, out, width):
            return False
    return True


def plain_tree(nodes: Sequence[Node], label: str, width: int) -> str | None:
    """The tree as rich prints it without colour on ``width`` columns (long lines wrapped at
    words, continued under the tree's guides), or ``None`` where rich's output could differ."""
    out: list[str] = []
    if not _add(out, "", "", label, width) or not _lines(nodes, "", out, width):
        return None
    return "\n".join(out) + "\n"


def plain_width() -> int | None:
    """The width rich would use for standard output, or ``None`` when rich would add colour.

    Rich colours a terminal (or any output when ``FORCE_COLOR`` or ``TTY_COMPATIBLE=1`` is set);
    otherwise it takes ``COLUMNS``, else the size of the first of standard input, output and
    error that is a terminal, else 80 columns.
    """
    if os.environ.get("FORCE_COLOR") is not None or os.environ.get("TTY_COMPATIBLE") == "1":
        return None
    if os.environ.get("JUPYTER_COLUMNS") is not None or os.environ.get("TERM", "") in ("dumb", "unknown"):
        return None
    try:
        if sys.stdout.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    columns = os.environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        return int(columns)
    for descriptor in (0, 1, 2):
        try:
            width = os.get_terminal_size(descriptor).columns
        except (AttributeError, ValueError, OSError):
            continue
        if width:
            return width
        break
    return 80
