"""The certification authority public keys a terminal trusts, by RID and index.

EMV 4.4 Book 2 §5.1 and Book 4 §11.3.2: a terminal holds, for each registered application
provider (RID), the CA public keys of the payment system with their index (8F on the card),
exponent, expiry and a SHA-1 checksum over ``RID ‖ index ‖ modulus ‖ exponent``. The checksum
is what protects the table from a transcription error: a key list once published with wrong
bytes in it would otherwise make every card of that index fail, or worse, verify against the
wrong key. So every row is checked at load, and a row that fails is an error that names it.

The built-in table (``capk.json`` beside this module) holds public data, each row citing where
it was taken from:

- production keys of Visa, Mastercard, American Express, Discover, JCB and UnionPay, and the
  published test keys of Visa, Mastercard and American Express, as listed in the CA key file
  of RfidResearchGroup/proxmark3 (``client/resources/capk.txt``) and in the key table of a
  public payment-terminal application (manish914-droid/VX990Amex-HDFCVFService3.0), with the
  later expiry of Visa 09 from a SoftPOS example's key list (theminesec/ms-example-sdk-softpos);
  a row appears only where its published checksum verifies;
- the hcekit test CA (:mod:`cryptogram.testkeys`) under index E1 of each RID, so that cards
  certified by the token service authenticate in this terminal.

More rows load from a file (:meth:`CaKeyTable.load_file`): JSON rows as in ``capk.json``, or
the ``capk.txt`` line format (``a0:00:00:00:03 92 291231 rsa 03 <modulus> sha1 <checksum>``).

>>> table = CaKeyTable.builtin()
>>> key = table.get(bytes.fromhex("A000000004"), 0x05)
>>> (key.kind, key.public.length * 8)
('production', 1408)
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from cryptogram.rsa import RsaPublicKey
from terminal.errors import ConfigError

__all__ = ["CaKey", "CaKeyTable", "checksum"]


def checksum(rid: bytes, index: int, modulus: bytes, exponent: bytes) -> bytes:
    """The CA public key check sum: SHA-1 of RID ‖ index ‖ modulus ‖ exponent (Book 2 §11.2)."""
    return hashlib.sha1(rid + bytes([index]) + modulus + exponent).digest()  # noqa: S324 - EMV mandates SHA-1


@dataclass(frozen=True, slots=True)
class CaKey:
    """One CA public key: RID (5 bytes), index (8F), the key, its expiry YYYYMMDD ('' unknown),
    its kind (``production``, ``test``, ``hcekit-test``, ``unlabelled``) and where it came from."""

    rid: bytes
    index: int
    public: RsaPublicKey
    expiry: str = ""
    kind: str = "production"
    source: str = ""

    def expired(self, today: str) -> bool:
        """Whether the key expired before ``today`` (YYMMDD, the terminal's 9A)."""
        if not self.expiry:
            return False
        yy = int(today[:2])
        full = f"{1900 + yy if yy >= 50 else 2000 + yy}{today[2:]}"
        return self.expiry < full


def _row_key(row: Mapping[str, Any], where: str) -> CaKey:
    try:
        rid = bytes.fromhex(str(row["rid"]).replace(":", ""))
        index = int(str(row["index"]), 16)
        modulus = bytes.fromhex(str(row["modulus"]).replace(":", ""))
        exponent = bytes.fromhex(str(row["exponent"]).replace(":", ""))
        published = bytes.fromhex(str(row["checksum"]).replace(":", ""))
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"{where}: a CA key row needs rid, index, modulus, exponent and checksum in hex") \
            from exc
    name = f"{where}: CA key {rid.hex().upper()} index {index:02X}"
    if len(rid) != 5 or not 0 <= index <= 0xFF:
        raise ConfigError(f"{name}: RID is 5 bytes and the index one")
    if not hmac.compare_digest(checksum(rid, index, modulus, exponent), published):
        raise ConfigError(f"{name}: the SHA-1 checksum does not match the key (corrupted or mistyped)")
    try:
        public = RsaPublicKey(modulus, exponent)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from exc
    return CaKey(rid, index, public, str(row.get("expiry", "")), str(row.get("kind", "production")),
                 str(row.get("source", "")))


def _capk_txt_rows(text: str) -> Iterator[dict[str, str]]:
    """Rows of the ``capk.txt`` line format: RID, index, expiry YYMMDD, ``rsa``, exponent, modulus,
    ``sha1``, checksum (colon-separated hex)."""
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 8 or fields[3] != "rsa" or fields[6] != "sha1":
            raise ConfigError(f"line {number}: not 'RID index expiry rsa exponent modulus sha1 checksum'")
        expiry = fields[2] if fields[2].strip("0") else ""
        yield {
            "rid": fields[0], "index": fields[1], "exponent": fields[4], "modulus": fields[5],
            "checksum": fields[7], "expiry": f"20{expiry}" if expiry else "", "source": f"line {number}",
        }


class CaKeyTable:
    """CA public keys by (RID, index); every key's checksum verified when it was added."""

    def __init__(self, keys: Iterable[CaKey] = ()) -> None:
        self._keys: dict[tuple[bytes, int], CaKey] = {}
        for key in keys:
            self._keys[(key.rid, key.index)] = key

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]], *, where: str = "CA key table") -> CaKeyTable:
        """A table from JSON-style rows; a row whose checksum fails raises :class:`ConfigError`."""
        return cls(_row_key(row, where) for row in rows)

    @classmethod
    def builtin(cls) -> CaKeyTable:
        """The table shipped with hcekit (``terminal/capk.json``)."""
        text = resources.files("terminal").joinpath("capk.json").read_text(encoding="utf-8")
        return cls.from_rows(json.loads(text), where="capk.json")

    def load_file(self, path: str | Path) -> CaKeyTable:
        """A new table: this one plus the keys of ``path`` (JSON rows or capk.txt lines)."""
        p = Path(path)
        text = p.read_text(encoding="utf-8")
        rows: Iterable[Mapping[str, Any]]
        if text.lstrip().startswith("["):
            try:
                rows = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{p.name}: not JSON: {exc}") from exc
        else:
            rows = list(_capk_txt_rows(text))
        added = CaKeyTable.from_rows(rows, where=p.name)
        return CaKeyTable([*self, *added])

    def get(self, rid: bytes, index: int) -> CaKey | None:
        """The key for ``rid`` and ``index``, or ``None``."""
        return self._keys.get((bytes(rid[:5]), index))

    def __iter__(self) -> Iterator[CaKey]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)
