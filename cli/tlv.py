"""``hcekit tlv``: BER-TLV in hex, decoded into a tree of named EMV data objects."""

from __future__ import annotations

from collections.abc import Sequence

import click

from apdu.errors import DecodeError
from cli.common import fail, parse_hex, print_json
from cli.plain import decode_tlv, plain_tree, plain_width

KERNELS = click.Choice(["visa", "mastercard", "amex"], case_sensitive=False)
"""The kernels whose tag meanings differ (EMV Contactless Books C-2, C-3, C-4)."""


def hex_words(words: Sequence[str]) -> bytes:
    """Bytes from hex given as one or more words (``9F27 01 80`` or ``"9F27 01 80"``)."""
    try:
        return parse_hex(" ".join(words))
    except click.BadParameter as exc:
        raise click.BadParameter(exc.message, param_hint="'HEX'") from None


@click.group()
def tlv() -> None:
    """Decode BER-TLV (EMV 4.4 Book 3 Annex B)."""


@tlv.command()
@click.argument("words", nargs=-1, required=True, metavar="HEX")
@click.option("--json", "as_json", is_flag=True, help="Print a list of nodes as JSON.")
@click.option("--strict", is_flag=True, help="Refuse non-minimal lengths, FF padding and long tags.")
@click.option("--kernel", type=KERNELS, default=None, help="Read kernel-specific tags as this kernel's.")
def decode(words: tuple[str, ...], as_json: bool, strict: bool, kernel: str | None) -> None:
    """Decode HEX as BER-TLV: tag names, lengths, values and what they mean.

    \b
    Example:
      hcekit tlv decode 770E82021980940808010100100101019F2701 80
    """
    data = hex_words(words)
    try:
        nodes = decode_tlv(data, strict=strict, kernel=kernel.lower() if kernel else None)
    except DecodeError as exc:
        raise fail(f"not BER-TLV: {exc}") from None
    if as_json:
        print_json(nodes)
        return
    label = f"{len(data)} bytes"
    width = plain_width()
    if width is not None:
        # Not a terminal: rich's text (wrapping included) without importing rich, when it can be.
        text = plain_tree(nodes, label, width) if nodes else "(no data objects)\n"
        if text is not None:
            click.echo(text, nl=False)
            return
    from cli.common import console
    from cli.render import tlv_tree

    if not nodes:
        console.print("(no data objects)")
        return
    console.print(tlv_tree(nodes, label=label), soft_wrap=False)
