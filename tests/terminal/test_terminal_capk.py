"""The CA public key table: every key checked against its published checksum at load."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from cryptogram.testkeys import TEST_CA_INDEX, oda_test_key
from terminal.capk import CaKeyTable, checksum
from terminal.errors import ConfigError

RIDS = {
    "visa": "A000000003", "mastercard": "A000000004", "amex": "A000000025",
    "discover": "A000000152", "jcb": "A000000065", "unionpay": "A000000333",
}

# The Mastercard test key FA as one public terminal key table lists it, with a checksum that does not
# belong to it (manish914-droid/VX990Amex-HDFCVFService3.0 commit c86db605acb80f520abaa03793d0205f0af7dfca,
# app/src/main/java/com/example/verifonevx990app/transactions/EmvSetAidRid.kt); proxmark3's capk.txt
# (commit 774e9cf4b684ba27396cc4b78a8b33aa10daae7a) lists the same modulus with checksum 5BED4068….
PUBLISHED_BAD_CHECKSUM = "2CFBB82409ED86A31973B0E0CEEA381BC43C8097"


def _rows() -> list[dict[str, str]]:
    return json.loads(resources.files("terminal").joinpath("capk.json").read_text(encoding="utf-8"))


def test_builtin_table_loads_and_covers_every_network() -> None:
    """Production keys of all six networks load, each with a verified checksum."""
    table = CaKeyTable.builtin()
    for name, rid in RIDS.items():
        kinds = {k.kind for k in table if k.rid.hex().upper() == rid}
        assert "production" in kinds, name
    assert len(table) >= 30


def test_published_checksums_match_the_project_computation() -> None:
    """Mastercard 05's published checksum (EMV key list) equals SHA-1(RID‖index‖modulus‖exponent)."""
    key = CaKeyTable.builtin().get(bytes.fromhex("A000000004"), 0x05)
    assert key is not None
    assert checksum(key.rid, key.index, key.public.modulus, key.public.exponent).hex().upper() == (
        "EBFA0D5D06D8CE702DA3EAE890701D45E274C845")


@pytest.mark.parametrize("position", [0, 17, 100, -1])
def test_a_corrupted_byte_is_caught_at_load(position: int) -> None:
    """Changing one byte of any modulus makes loading fail and name the key."""
    rows = _rows()
    row = next(r for r in rows if r["rid"] == "A000000003" and r["index"] == "09")
    modulus = bytearray.fromhex(row["modulus"])
    modulus[position] ^= 0x01
    row["modulus"] = modulus.hex().upper()
    with pytest.raises(ConfigError, match=r"A000000003 index 09.*checksum"):
        CaKeyTable.from_rows(rows)


def test_the_published_wrong_checksum_is_refused() -> None:
    """A key list entry whose published checksum is not its own is refused."""
    row = next(r for r in _rows() if r["rid"] == "A000000004" and r["index"] == "FA")
    with pytest.raises(ConfigError, match="checksum"):
        CaKeyTable.from_rows([{**row, "checksum": PUBLISHED_BAD_CHECKSUM}])


def test_project_test_ca_is_listed_under_each_rid() -> None:
    """The hcekit test CA is in the table (index E1) for every network, marked as a test key."""
    table = CaKeyTable.builtin()
    for rid in RIDS.values():
        key = table.get(bytes.fromhex(rid), TEST_CA_INDEX)
        assert key is not None and key.kind == "hcekit-test"
        assert key.public == oda_test_key("ca").public


def test_load_more_keys_from_capk_txt(tmp_path: Path) -> None:
    """Keys load from a capk.txt file too, and a bad line there is refused."""
    key = oda_test_key("issuer").public
    rid = bytes.fromhex("B012345678")
    digest = checksum(rid, 0x42, key.modulus, key.exponent)

    def colon(b: bytes) -> str:
        return ":".join(f"{x:02x}" for x in b)

    path = tmp_path / "capk.txt"
    line = f"{colon(rid)} 42 301231 rsa {colon(key.exponent)} {colon(key.modulus)} sha1 {colon(digest)}\n"
    path.write_text(line)
    table = CaKeyTable.builtin().load_file(path)
    got = table.get(rid, 0x42)
    assert got is not None and got.public == key and got.expiry == "20301231"
    path.write_text(f"{colon(rid)} 42 301231 rsa 03 {colon(key.modulus)} sha1 {colon(bytes(20))}\n")
    with pytest.raises(ConfigError, match="checksum"):
        CaKeyTable.builtin().load_file(path)


def test_load_more_keys_from_json(tmp_path: Path) -> None:
    """JSON rows in the built-in format load from a file."""
    row = next(r for r in _rows() if r["rid"] == "A000000025" and r["index"] == "10")
    path = tmp_path / "keys.json"
    path.write_text(json.dumps([{**row, "rid": "A000000999"}]).replace('"A000000999"', '"A000000025"'))
    assert CaKeyTable().load_file(path).get(bytes.fromhex("A000000025"), 0x10) is not None


def test_expiry_is_read_against_the_transaction_date() -> None:
    """Visa 01 expired at the end of 2009; Visa 92 (test) has not."""
    table = CaKeyTable.builtin()
    v01 = table.get(bytes.fromhex("A000000003"), 0x01)
    v92 = table.get(bytes.fromhex("A000000003"), 0x92)
    assert v01 is not None and v92 is not None
    assert v01.expired("250101") and not v92.expired("250101")


def test_visa_09_expires_at_the_end_of_2028() -> None:
    """Visa's 1984-bit production key 09 is listed with expiry 281231 by
    theminesec/ms-example-sdk-softpos@3456e8c6cc918df968c26f4e2bd195cfdece4dff:app/src/main/assets/capk.json,
    with the same modulus and checksum as proxmark3's capk.txt (which still says 221231), so a
    Visa card certified under it authenticates in 2026 and stops at the end of 2028."""
    key = CaKeyTable.builtin().get(bytes.fromhex("A000000003"), 0x09)
    assert key is not None and key.kind == "production"
    assert checksum(key.rid, 0x09, key.public.modulus, key.public.exponent).hex().upper() == \
        "1FF80A40173F52D7D27E0F26A146A1C8CCB29046"
    assert key.expiry == "20281231"
    assert not key.expired("261202") and key.expired("290101")
    assert "theminesec/ms-example-sdk-softpos@3456e8c6cc918df968c26f4e2bd195cfdece4dff" in key.source
