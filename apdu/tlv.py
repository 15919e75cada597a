"""BER-TLV as EMV uses it (EMV 4.4 Book 3 Annex B; ISO/IEC 8825-1 where EMV is silent).

A data object is a tag, a length and a value::

    tag      1-3 bytes. First byte: b8-b7 class, b6 constructed, b5-b1 the tag number or
             11111 when more bytes follow; each following byte has b8 = 1 when yet another
             follows (Annex B1). The raw bytes are kept as an int (9F26 is ``0x9F26``) and
             never re-encoded from class and number: ``5F80 01`` stays ``0x5F8001``.
    length   one byte 00-7F, or 81 XX, 82 XXXX, 83 XXXXXX, 84 XXXXXXXX (Annex B2).
    value    the bytes; for a constructed tag, more data objects (Annex B3).

Before, between and after data objects, ``00`` bytes may appear and mean nothing (Annex B,
"padding"); ISO/IEC 7816-4 §5.2.2 adds ``FF``.

:func:`decode` reads in one of two modes. **Strict** follows the rules to the letter: the length
is in its shortest form, there is no indefinite length (``80``), no ``FF`` padding and no tag
longer than 3 bytes. **Lenient** (the default) accepts what real cards send -- lengths such as
``81 05``, runs of ``FF`` filling the end of a record or template, 4-byte tags, and indefinite
lengths closed by ``00 00`` on constructed tags (ISO/IEC 8825-1 §8.1.3.6) -- but it never
guesses: a length that runs past its template, a truncated tag or anything else that could be
read two ways is a :class:`~apdu.errors.DecodeError` in both modes. Nesting deeper than
:data:`MAX_DEPTH` is refused, so hostile input raises only ``DecodeError``.

>>> nodes = decode(bytes.fromhex("6F1A840E325041592E5359532E4444463031A5088801015F2D02656E"))
>>> [n.tag_hex for n in walk(nodes)]
['6F', '84', 'A5', '88', '5F2D']
>>> find(nodes, 0x5F2D).value
b'en'
>>> encode(nodes).hex().upper()
'6F1A840E325041592E5359532E4444463031A5088801015F2D02656E'
>>> tlv(0x77, [tlv(0x82, b"\\x19\\x80"), tlv(0x94, bytes.fromhex("08010100"))]).to_bytes().hex().upper()
'770A82021980940408010100'
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from apdu.ber import encode_length, encode_tag, read_long_tag, tag_to_bytes
from apdu.errors import DecodeError, EncodeError

__all__ = [
    "MAX_DEPTH",
    "TLV",
    "decode",
    "decode_flat",
    "encode",
    "find",
    "tlv",
    "to_dict",
    "walk",
]

MAX_DEPTH = 32
"""The deepest nesting of constructed objects :func:`decode` accepts (EMV uses at most 4)."""


@dataclass(frozen=True, slots=True, repr=False)
class TLV:
    """One BER-TLV data object (EMV 4.4 Book 3 Annex B), immutable.

    ``tag`` is the raw tag bytes as an int (``0x9F26``); ``value`` the value bytes, which for a
    constructed tag hold the encoded ``children`` (and any padding the card put between them);
    ``offset`` the position of the value in the input :func:`decode` read (-1 when built by
    hand; not compared). Built by hand with ``children`` and no ``value``, the value is
    encoded from the children; :func:`tlv` is the convenient way.

    >>> TLV(0x9F27, b"\\x80")
    TLV(0x9F27, '80')
    >>> TLV(0x9F27, b"\\x80").to_bytes().hex().upper()
    '9F270180'
    """

    tag: int
    value: bytes = b""
    children: tuple[TLV, ...] = ()
    offset: int = field(default=-1, compare=False)

    def __post_init__(self) -> None:
        tag_bytes = encode_tag(self.tag)
        value = self.value
        if not isinstance(value, bytes):
            if not isinstance(value, (bytearray, memoryview)):
                raise EncodeError(f"value of tag {self.tag:X} must be bytes, got {type(value).__name__}")
            object.__setattr__(self, "value", bytes(value))
        children = self.children
        if not isinstance(children, tuple):
            children = tuple(children)
            object.__setattr__(self, "children", children)
        if children:
            if not tag_bytes[0] & 0x20:
                raise EncodeError(f"primitive tag {self.tag:X} cannot have children")
            if not self.value:
                object.__setattr__(self, "value", encode(children))

    @property
    def tag_bytes(self) -> bytes:
        """The tag as it is on the wire (``b"\\x9f\\x26"``)."""
        return tag_to_bytes(self.tag)

    @property
    def tag_hex(self) -> str:
        """The tag as uppercase hex (``"9F26"``)."""
        return tag_to_bytes(self.tag).hex().upper()

    @property
    def constructed(self) -> bool:
        """Whether b6 of the first tag byte is set: the value holds data objects (Annex B1)."""
        tag = self.tag
        return bool(tag >> ((tag.bit_length() - 1) & ~7) & 0x20)

    @property
    def length(self) -> int:
        """The number of value bytes."""
        return len(self.value)

    def to_bytes(self) -> bytes:
        """Tag, length (shortest form) and value."""
        value = self.value
        return encode_tag(self.tag) + encode_length(len(value)) + value

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    def find(self, tag: int) -> TLV | None:
        """The first object with ``tag`` among the descendants, depth first, or ``None``."""
        return find(self.children, tag)

    def find_all(self, tag: int) -> list[TLV]:
        """Every object with ``tag`` among the descendants, depth first."""
        return [node for node in walk(self.children) if node.tag == tag]

    def __repr__(self) -> str:
        from apdu.tags import is_sensitive  # the dictionary is loaded only when a value is shown

        if self.children:
            inner = ", ".join(repr(child) for child in self.children)
            return f"TLV(0x{self.tag_hex}, [{inner}])"
        if is_sensitive(self.tag):
            return f"TLV(0x{self.tag_hex}, <{len(self.value)} bytes masked>)"
        return f"TLV(0x{self.tag_hex}, '{self.value.hex().upper()}')"


def encode(nodes: Iterable[TLV]) -> bytes:
    """The data objects one after another (their values as they are, padding included).

    >>> encode([TLV(0x9C, b"\\x00"), TLV(0x5F2A, bytes.fromhex("0978"))]).hex().upper()
    '9C01005F2A020978'
    """
    return b"".join([node.to_bytes() for node in nodes])


def tlv(tag: int, value: bytes | Sequence[TLV]) -> TLV:
    """Build a data object from bytes, or from children for a constructed tag.

    Bytes given to a constructed tag are decoded (leniently) into its children; children given
    to a primitive tag are an :class:`EncodeError`.

    >>> tlv(0x70, [tlv(0x5F24, bytes.fromhex("251231"))]).value.hex().upper()
    '5F2403251231'
    >>> tlv(0x70, bytes.fromhex("5F2403251231")).children[0].tag_hex
    '5F24'
    """
    constructed = bool(encode_tag(tag)[0] & 0x20)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if not constructed:
            return TLV(tag, raw)
        try:
            children = tuple(decode(raw))
        except DecodeError as exc:
            raise EncodeError(f"the value of constructed tag {tag:X} is not BER-TLV: {exc}") from None
        return TLV(tag, raw, children)
    children = tuple(value)
    for child in children:
        if not isinstance(child, TLV):
            raise EncodeError(f"children of tag {tag:X} must be TLV objects, got {type(child).__name__}")
    if not constructed:
        raise EncodeError(f"primitive tag {tag:X} cannot have children")
    return TLV(tag, encode(children), children)


def walk(nodes: Iterable[TLV]) -> Iterator[TLV]:
    """Every object and its descendants, depth first, in the order they were on the wire."""
    stack: list[Iterator[TLV]] = [iter(nodes)]
    while stack:
        for node in stack[-1]:
            yield node
            if node.children:
                stack.append(iter(node.children))
                break
        else:
            stack.pop()


def find(nodes: Iterable[TLV], tag: int) -> TLV | None:
    """The first object with ``tag``, depth first, or ``None``."""
    for node in walk(nodes):
        if node.tag == tag:
            return node
    return None


def to_dict(nodes: Iterable[TLV]) -> dict[int, bytes]:
    """The primitive objects as ``{tag: value}``; when a tag repeats, the first one wins.

    >>> values = to_dict(decode(bytes.fromhex("7009 9F3602 0042 9F2701 80")))
    >>> {f"{tag:X}": value.hex() for tag, value in values.items()}
    {'9F36': '0042', '9F27': '80'}
    """
    out: dict[int, bytes] = {}
    for node in walk(nodes):
        if not node.children and node.tag not in out and not tag_to_bytes(node.tag)[0] & 0x20:
            out[node.tag] = node.value
    return out


# --- decoding -----------------------------------------------------------------------------


class _Node:
    """A :class:`TLV` under construction: same slots, no frozen ``__setattr__``.

    The decoder fills one of these with plain attribute stores and then sets its ``__class__``
    to :class:`TLV` (the two layouts are identical), which is less than half the cost of the
    frozen dataclass's ``__init__`` -- the difference that makes :func:`decode` fast.
    """

    __slots__ = ("tag", "value", "children", "offset")  # noqa: RUF023
    tag: int
    value: bytes
    children: tuple[TLV, ...]
    offset: int


if TLV.__slots__ != _Node.__slots__:  # pragma: no cover
    raise ImportError("apdu.tlv: TLV and _Node must have the same slots")

_NO_CHILDREN: tuple[TLV, ...] = ()

#: One open constructed object while decoding: (the end of its parent's value, the list its
#: parent is filling, the node, whether the parent's level is indefinite).
_Frame = tuple[int, list[TLV], _Node, bool]


def decode(data: bytes, *, strict: bool = False) -> list[TLV]:
    """Decode BER-TLV data objects (EMV 4.4 Book 3 Annex B); raises only :class:`DecodeError`.

    The error carries ``tag`` (the tag being read, if any), ``offset`` (where in ``data``) and
    ``partial``: the complete objects decoded before the failure, outermost level first.

    >>> [(n.tag_hex, n.value.hex()) for n in decode(bytes.fromhex("9F360200420000FFFF"))]
    [('9F36', '0042')]
    >>> decode(bytes.fromhex("9F02810600000000100000"), strict=True)
    Traceback (most recent call last):
    ...
    apdu.errors.DecodeError: length 6 is not in its shortest form at offset 2 in tag 9F02
    """
    if not isinstance(data, bytes):
        if not isinstance(data, (bytearray, memoryview)):
            raise DecodeError(f"BER-TLV data must be bytes, got {type(data).__name__}")
        data = bytes(data)
    final = TLV
    node_type = _Node
    no_children = _NO_CHILDREN
    one_byte_tag = _ONE_BYTE_TAG
    top: list[TLV] = []
    out = top
    stack: list[_Frame] = []
    i = 0
    end = len(data)
    indefinite = False
    tag = 0
    depth = 0
    max_depth = MAX_DEPTH
    try:
        while True:
            while i < end:
                b = data[i]
                if one_byte_tag[b]:
                    tag = b
                    i += 1
                else:
                    if b == 0:
                        if indefinite and i + 1 < end and data[i + 1] == 0:
                            break
                        i += 1
                        continue
                    if b == 0xFF and not data[i:end].strip(b"\xff\x00"):
                        if strict:
                            raise _fail("FF padding is not allowed in strict mode (EMV 4.4 Book 3 Annex B)",
                                        None, i, stack, out)
                        if not indefinite:
                            i = end
                            break
                    if i + 1 < end and data[i + 1] < 0x80:
                        tag = (b << 8) | data[i + 1]
                        i += 2
                    else:
                        try:
                            tag = read_long_tag(data, i, end, strict)
                        except DecodeError as exc:
                            raise _fail(exc.args[0], exc.tag, exc.offset, stack, out) from None
                        i += (tag.bit_length() + 7) >> 3
                n = data[i]
                i += 1
                if n > 0x7F:
                    if i > end:
                        raise _fail("length missing", tag, i - 1, stack, out)
                    size = n & 0x7F
                    if size == 0:
                        if strict:
                            raise _fail("indefinite length (80) is not allowed in strict mode", tag, i - 1,
                                        stack, out)
                        if not b & 0x20:
                            raise _fail("indefinite length (80) on a primitive tag", tag, i - 1, stack, out)
                        if depth >= max_depth:
                            raise _fail(f"nesting deeper than {MAX_DEPTH} levels", tag, i - 1, stack, out)
                        depth += 1
                        node = node_type()
                        node.tag = tag
                        node.offset = i
                        stack.append((end, out, node, indefinite))
                        out = []
                        indefinite = True
                        continue
                    if size > 4:
                        raise _fail(f"length field of {size + 1} bytes (at most 5)", tag, i - 1, stack, out)
                    if i + size > end:
                        raise _fail(f"length truncated: {size} length bytes expected", tag, i - 1, stack, out)
                    n = int.from_bytes(data[i : i + size], "big")
                    if strict and n < (0x80 if size == 1 else 1 << (8 * (size - 1))):
                        raise _fail(f"length {n} is not in its shortest form", tag, i - 1, stack, out)
                    i += size
                stop = i + n
                if stop > end:
                    if i > end:
                        raise _fail("length missing", tag, i - 1, stack, out)
                    raise _fail(f"value of {n} bytes runs past the end of its container by {stop - end}",
                                tag, i, stack, out)
                node = node_type()
                node.tag = tag
                node.value = data[i:stop]
                node.offset = i
                if b & 0x20:
                    if depth >= max_depth:
                        raise _fail(f"nesting deeper than {MAX_DEPTH} levels", tag, i, stack, out)
                    depth += 1
                    stack.append((end, out, node, indefinite))
                    out = []
                    end = stop
                    indefinite = False
                    continue
                node.children = no_children
                node.__class__ = final  # type: ignore[assignment]
                out.append(node)  # type: ignore[arg-type]
                i = stop
            if not stack:
                return top
            children = tuple(out)
            depth -= 1
            if indefinite:
                if i >= end:
                    raise _fail("indefinite length without end-of-contents (00 00)", None, i, stack, out)
                i += 2
                end, out, node, indefinite = stack.pop()
                node.value = data[node.offset : i - 2]
            else:
                end, out, node, indefinite = stack.pop()
            node.children = children
            node.__class__ = final  # type: ignore[assignment]
            out.append(node)  # type: ignore[arg-type]
    except IndexError:
        raise _fail("length missing", tag, len(data), stack, out) from None


#: For each first byte: whether it is a whole tag (not 00 padding, not xxx11111 = more follow).
_ONE_BYTE_TAG: tuple[bool, ...] = tuple(b != 0 and b & 0x1F != 0x1F for b in range(256))


def decode_flat(data: bytes, *, strict: bool = False) -> dict[int, bytes]:
    """The primitive data objects of ``data`` as ``{tag: value}``, first occurrence winning.

    Exactly ``to_dict(decode(data, strict=strict))``, including every :class:`DecodeError`, but
    without building a :class:`TLV` per object: what an authorization needs from field 55
    (ISO 8583 ICC data, EMV 4.4 Book 3 Annex B). Constructed objects are entered, not kept.
    Objects in the common form (tags of 1 or 2 bytes, definite lengths, ``00`` padding) are
    read here; anything else -- ``FF`` padding, 3-byte tags, indefinite or (in strict mode)
    long-form lengths, nesting past :data:`MAX_DEPTH`, and every error -- is left to
    :func:`decode`, so the two can never disagree.

    >>> values = decode_flat(bytes.fromhex("7009 9F3602 0042 9F2701 80 9F3602 0043"))
    >>> {f"{tag:X}": value.hex() for tag, value in values.items()}
    {'9F36': '0042', '9F27': '80'}
    """
    if type(data) is not bytes:
        return to_dict(decode(data, strict=strict))
    one_byte_tag = _ONE_BYTE_TAG
    out: dict[int, bytes] = {}
    ends: list[int] = []
    i = 0
    end = len(data)
    while True:
        while i < end:
            b = data[i]
            if one_byte_tag[b]:
                tag = b
                i += 1
            elif b == 0:
                i += 1
                continue
            elif b != 0xFF and i + 1 < end and data[i + 1] < 0x80:
                tag = (b << 8) | data[i + 1]
                i += 2
            else:
                return to_dict(decode(data, strict=strict))
            if i >= end:
                return to_dict(decode(data, strict=strict))
            n = data[i]
            i += 1
            if n > 0x7F:
                width = n & 0x7F
                if strict or not 0 < width <= 4 or i + width > end:
                    return to_dict(decode(data, strict=strict))
                n = int.from_bytes(data[i : i + width], "big")
                i += width
            stop = i + n
            if stop > end:
                return to_dict(decode(data, strict=strict))
            if b & 0x20:
                if len(ends) >= MAX_DEPTH:
                    return to_dict(decode(data, strict=strict))
                ends.append(end)
                end = stop
                continue
            if tag not in out:
                out[tag] = data[i:stop]
            i = stop
        if not ends:
            return out
        end = ends.pop()


def _fail(message: str, tag: int | None, offset: int, stack: list[_Frame], out: list[TLV]) -> DecodeError:
    partial = [node for frame in stack for node in frame[1]]
    partial.extend(out)
    return DecodeError(message, tag=tag, offset=offset, partial=partial)
