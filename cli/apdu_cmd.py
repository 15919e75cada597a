"""``hcekit apdu``: one command or response APDU in hex, decoded."""

from __future__ import annotations

import click

from apdu.errors import APDUError
from cli.common import console, fail, print_json
from cli.render import TraceContext, command_tree, decode_command, decode_response, response_tree
from cli.tlv import KERNELS, hex_words


@click.group()
def apdu() -> None:
    """Decode ISO/IEC 7816-4 APDUs and the EMV commands."""


@apdu.command()
@click.argument("words", nargs=-1, required=True, metavar="HEX")
@click.option("--response", "is_response", is_flag=True, help="HEX is a response (data then SW1 SW2).")
@click.option("--json", "as_json", is_flag=True, help="Print the decoded APDU as JSON.")
@click.option("--kernel", type=KERNELS, default=None, help="Read kernel-specific tags as this kernel's.")
def decode(words: tuple[str, ...], is_response: bool, as_json: bool, kernel: str | None) -> None:
    """Decode a command APDU (or with --response a response APDU).

    \b
    Examples:
      hcekit apdu decode 00A404000E325041592E5359532E444446303100
      hcekit apdu decode --response 6A82
    """
    data = hex_words(words)
    context = TraceContext(kernel=kernel.lower() if kernel else None, fixed_kernel=kernel is not None)
    try:
        info = decode_response(data, context) if is_response else decode_command(data, context)
    except APDUError as exc:
        what = "response" if is_response else "command"
        raise fail(f"not a {what} APDU: {exc}") from None
    if as_json:
        print_json(info)
    elif is_response:
        console.print(response_tree(info), soft_wrap=False)
    else:
        console.print(command_tree(info), soft_wrap=False)
