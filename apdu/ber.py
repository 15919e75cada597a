"""The two fields in front of every BER-TLV value: the tag and the length (EMV 4.4 Book 3 Annex B).

:mod:`apdu.tlv` builds, decodes and walks data objects; this module is what it puts on the wire
before each value and reads back:

- the **tag** (Annex B1): 1-3 bytes (4 accepted when reading leniently). b5-b1 of the first byte
  all set mean more bytes follow, and each following byte with b8 set means yet another does.
  A tag is kept as the int of its raw bytes (``0x9F26``) and never re-encoded from class and
  number.
- the **length** (Annex B2): one byte 00-7F, or ``81``-``84`` followed by 1-4 length bytes.

>>> encode_tag(0x9F26).hex().upper(), encode_length(200).hex().upper()
('9F26', '81C8')
>>> read_long_tag(bytes.fromhex("9F8101"), 0, 3, strict=True) == 0x9F8101
True
"""

from __future__ import annotations

from apdu.errors import DecodeError, EncodeError

__all__ = ["MAX_LENGTH", "encode_length", "encode_tag", "read_long_tag", "tag_to_bytes"]

MAX_LENGTH = 0xFFFFFFFF
"""The largest length four length bytes can carry (Annex B2)."""

_TAG_BYTES_CACHE: dict[int, bytes] = {}


def tag_to_bytes(tag: int) -> bytes:
    """The wire bytes of a tag already known to be valid (a cached :func:`encode_tag`)."""
    cached = _TAG_BYTES_CACHE.get(tag)
    if cached is None:
        cached = encode_tag(tag)
    return cached


def encode_tag(tag: int) -> bytes:
    """The wire bytes of ``tag``, checked against the tag rules of EMV 4.4 Book 3 Annex B1.

    The int is the raw bytes: nothing is re-encoded. A tag that a decoder would read with a
    different length (``0x9F`` alone, ``0x9F2601``, ``0x0A1F``) is an :class:`EncodeError`.

    >>> encode_tag(0x9F26).hex().upper()
    '9F26'
    >>> encode_tag(0x9F)
    Traceback (most recent call last):
    ...
    apdu.errors.EncodeError: tag 9F is not a complete BER-TLV tag
    """
    cached = _TAG_BYTES_CACHE.get(tag)
    if cached is not None and type(tag) is int:
        return cached
    if not isinstance(tag, int) or isinstance(tag, bool) or not 0 < tag <= 0xFFFFFFFF:
        raise EncodeError(f"a tag is an int of 1 to 4 bytes, got {tag!r}")
    raw = tag.to_bytes((tag.bit_length() + 7) // 8, "big")
    expected = 1
    if raw[0] & 0x1F == 0x1F:
        expected = 2
        while expected <= len(raw) and raw[expected - 1] & 0x80:
            expected += 1
    if expected != len(raw):
        raise EncodeError(f"tag {tag:X} is not a complete BER-TLV tag")
    if len(_TAG_BYTES_CACHE) < 4096:
        _TAG_BYTES_CACHE[tag] = raw
    return raw


def encode_length(n: int) -> bytes:
    """The length field for ``n`` value bytes, in its shortest form (EMV 4.4 Book 3 Annex B2).

    >>> encode_length(5).hex(), encode_length(200).hex(), encode_length(300).hex()
    ('05', '81c8', '82012c')
    """
    if n < 0x80:
        if n < 0:
            raise EncodeError(f"a length cannot be negative, got {n}")
        return bytes((n,))
    if n > MAX_LENGTH:
        raise EncodeError(f"a length has at most 4 bytes, got {n}")
    size = (n.bit_length() + 7) // 8
    return bytes((0x80 | size,)) + n.to_bytes(size, "big")


def read_long_tag(data: bytes, i: int, end: int, strict: bool) -> int:
    """The int of the tag at ``data[i]`` whose first byte's b5-b1 are all set (Annex B1).

    Raises :class:`DecodeError` (with ``tag`` and ``offset``, no ``partial``) when a subsequent
    byte is missing before ``end``, or the tag is longer than 3 bytes in strict mode, 4 otherwise.
    """
    start = i
    tag = data[i]
    for size in (2, 3, 4):
        i += 1
        if i >= end:
            raise DecodeError("tag truncated: a subsequent tag byte is missing", tag=tag, offset=start)
        c = data[i]
        tag = (tag << 8) | c
        if not c & 0x80:
            return tag
        if size == 3 and strict:
            raise DecodeError("tag longer than 3 bytes (EMV 4.4 Book 3 Annex B1)", tag=tag, offset=start)
    raise DecodeError("tag longer than 4 bytes", tag=tag, offset=start)
