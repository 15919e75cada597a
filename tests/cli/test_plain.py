"""``cli.plain.plain_tree`` prints exactly what rich prints, or declines.

The reference is rich itself (the renderer ``hcekit`` uses on a terminal), given the same node
dicts and width without colour; generated trees cover long words, repeated spaces, deep guides
and narrow widths.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from cli.plain import decode_tlv, plain_tree
from cli.render import tlv_tree

RESPONSES = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "card_responses.json"


def rich_text(nodes: list[dict[str, Any]], label: str, width: int) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, highlight=False, soft_wrap=True)
    console.print(tlv_tree(nodes, label=label), soft_wrap=False)
    return out.getvalue()


def test_real_card_responses_at_common_widths() -> None:
    """Every benchmark card response: same text as rich, and plain at least at 80 and 120 columns."""
    doc = json.loads(RESPONSES.read_text())
    printed = 0
    for entry in doc["responses"]:
        data = bytes.fromhex(entry["response"])[:-2]
        nodes = decode_tlv(data)
        for width in (40, 60, 80, 120, 200):
            text = plain_tree(nodes, f"{len(data)} bytes", width)
            if text is not None:
                printed += 1
                assert text == rich_text(nodes, f"{len(data)} bytes", width), (entry["name"], width)
    assert printed >= len(doc["responses"]) * 2


def test_amount_wraps_as_rich_does() -> None:
    """The example of the issue: a line longer than 80 columns wraps under the tree's guide."""
    nodes = decode_tlv(bytes.fromhex("9F0206000000001250"))
    text = plain_tree(nodes, "9 bytes", 80)
    assert text is not None and text.count("\n") == 3
    assert text == rich_text(nodes, "9 bytes", 80)


_words = st.text(alphabet="abcXYZ019 –é()[]:;,.-", min_size=0, max_size=30)
_leaf = st.fixed_dictionaries(
    {"tag": st.sampled_from(["9F02", "5A", "82", "DF8101"]), "name": _words,
     "length": st.integers(0, 300), "value": st.text(alphabet="0123456789ABCDEF", max_size=90)},
    optional={"meaning": _words, "bits": st.lists(_words.filter(bool), max_size=3)},
)
_node = st.recursive(
    _leaf,
    lambda inner: st.fixed_dictionaries(
        {"tag": st.sampled_from(["70", "77", "A5", "BF0C"]), "name": _words,
         "length": st.integers(0, 300), "value": st.just(""), "children": st.lists(inner, max_size=3)}
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    nodes=st.lists(_node, max_size=4),
    width=st.integers(8, 100),
    label=st.integers(0, 999).map("{} bytes".format),
)
def test_generated_trees_match_rich(nodes: list[dict[str, Any]], width: int, label: str) -> None:
    """Whatever the labels and width: plain text equals rich's, or plain declines."""
    text = plain_tree(nodes, label, width)
    if text is not None:
        assert text == rich_text(nodes, label, width)


def test_command_output_is_rich_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """``hcekit tlv decode`` piped prints the text rich prints, wrapped lines included."""
    from click.testing import CliRunner

    from cli.main import cli

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    hexdata = "770E82021980940808010100100101019F270180"
    result = CliRunner().invoke(cli, ["tlv", "decode", hexdata])
    assert result.exit_code == 0
    nodes = decode_tlv(bytes.fromhex(hexdata))
    assert result.stdout == rich_text(nodes, "20 bytes", 80)
    empty = CliRunner().invoke(cli, ["tlv", "decode", "0000"])
    assert empty.stdout == "(no data objects)\n"
