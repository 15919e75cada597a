"""Limited-use keys: derivation, the value type, and a whole issuer ↔ card round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cryptogram.cvn import PROFILES, profile, profile_for_iad
from cryptogram.derive import derive_icc_mk, derive_session_key_emv, derive_session_key_mastercard
from cryptogram.errors import InvalidInput, InvalidKey
from cryptogram.luk import MAX_LUK_INDEX, LimitedUseKey, derive_luk, derive_luk_batch

TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


@given(st.binary(min_size=16, max_size=16), st.integers(1, MAX_LUK_INDEX))
def test_luk_is_deterministic_with_odd_parity(token_mk: bytes, index: int) -> None:
    """The same TMK and index give the same 16-byte key, each byte of odd parity."""
    luk = derive_luk(token_mk, index)
    assert luk == derive_luk(token_mk, index) and len(luk) == 16
    assert all(bin(b).count("1") % 2 == 1 for b in luk)


@given(
    st.binary(min_size=16, max_size=16),
    st.integers(1, MAX_LUK_INDEX - 1),
    st.binary(min_size=2, max_size=2),
    st.binary(min_size=4, max_size=4),
)
def test_luk_differs_from_neighbours_and_session_keys(
    token_mk: bytes, index: int, atc: bytes, un: bytes
) -> None:
    """LUK_i differs from LUK_i+1 and from every EMV or Mastercard session key of the same TMK."""
    luk = derive_luk(token_mk, index)
    assert luk != derive_luk(token_mk, index + 1)
    assert luk != derive_session_key_emv(token_mk, atc)
    assert luk != derive_session_key_mastercard(token_mk, atc, un)


def test_batch_indexes_and_limits() -> None:
    """A batch holds consecutive indexes, each with the given limits and its own key."""
    batch = derive_luk_batch(TMK, 10, 5, max_uses=3, not_after=1_798_761_600)
    assert [k.index for k in batch] == [10, 11, 12, 13, 14]
    assert {k.max_uses for k in batch} == {3} and {k.not_after for k in batch} == {1_798_761_600}
    assert len({k.key for k in batch}) == 5
    assert batch[0].key == derive_luk(TMK, 10) and batch[0].matches(derive_luk(TMK, 10))


def test_repr_and_errors_hide_the_key() -> None:
    """Neither repr nor str of a limited-use key shows key material."""
    key = derive_luk_batch(TMK, 1, 1, max_uses=1, not_after=0)[0]
    for text in (repr(key), str(key)):
        assert key.key.hex() not in text.lower() and "key=" not in text


def test_dict_round_trip_matches_card_profile_shape() -> None:
    """to_dict gives the card profile's entry (uppercase hex) and from_dict reads it back."""
    key = derive_luk_batch(TMK, 1, 1, max_uses=10, not_after=1_798_761_600)[0]
    entry = key.to_dict()
    assert set(entry) == {"index", "key", "max_uses", "not_after"} and entry["key"] == entry["key"].upper()
    assert LimitedUseKey.from_dict(entry) == key


@pytest.mark.parametrize(
    "entry",
    [{}, {"index": 1, "key": "zz", "max_uses": 1, "not_after": 0},
     {"index": 0, "key": "00" * 16, "max_uses": 1, "not_after": 0},
     {"index": 1, "key": "00" * 8, "max_uses": 1, "not_after": 0},
     {"index": 1, "key": "00" * 16, "max_uses": 0, "not_after": 0}],
)
def test_from_dict_rejects_malformed_entries(entry: dict[str, object]) -> None:
    """Malformed entries raise InvalidInput or InvalidKey, both ValueErrors."""
    with pytest.raises((InvalidInput, InvalidKey)):
        LimitedUseKey.from_dict(entry)


@pytest.mark.parametrize("index", [0, -1, MAX_LUK_INDEX + 1])
def test_index_range(index: int) -> None:
    """Indexes run from 1 to 65535 (two bytes in the IAD)."""
    with pytest.raises(InvalidInput):
        derive_luk(TMK, index)


def test_batch_must_fit_the_index_range() -> None:
    """A batch running past 65535 or of no keys is refused."""
    with pytest.raises(InvalidInput):
        derive_luk_batch(TMK, MAX_LUK_INDEX, 2, max_uses=1, not_after=0)
    with pytest.raises(InvalidInput):
        derive_luk_batch(TMK, 1, 0, max_uses=1, not_after=0)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_issuer_card_round_trip_with_limited_use_keys(name: str) -> None:
    """The card signs with LUK_i and puts i in the IAD; the issuer re-derives LUK_i and verifies."""
    cvn = profile(name)
    imk = bytes.fromhex("89ABCDEF0123456776543210FEDCBA98")
    token_mk = derive_icc_mk(imk, "4895370012003478", "00")
    card_keys = derive_luk_batch(token_mk, 1, 3, max_uses=10, not_after=1_798_761_600)
    card_key = card_keys[1]
    values = {
        0x9F02: bytes.fromhex("000000001250"), 0x9F03: bytes(6), 0x9F1A: bytes.fromhex("0250"),
        0x95: bytes(5), 0x5F2A: bytes.fromhex("0978"), 0x9A: bytes.fromhex("250301"), 0x9C: b"\x00",
        0x9F37: bytes.fromhex("1A2B3C4D"), 0x82: bytes.fromhex("2000"), 0x9F36: bytes.fromhex("0007"),
    }
    values[0x9F10] = cvn.build_iad(bytes(cvn.cvr_length), luk_index=card_key.index)
    arqc = cvn.generate(card_key.key, values).cryptogram

    issuer_cvn = profile_for_iad(values[0x9F10], cvn.network)
    index = issuer_cvn.parse_iad(values[0x9F10]).luk_index
    assert index == card_key.index
    luk = derive_luk(derive_icc_mk(imk, "4895370012003478", "00"), index)
    assert issuer_cvn.verify(luk, values, arqc)
    assert not issuer_cvn.verify(derive_luk(token_mk, index + 1), values, arqc)
    assert not issuer_cvn.verify(token_mk, values, arqc)
