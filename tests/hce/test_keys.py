"""Counter stores: reservations are monotonic and durable; LUK selection by budget and time."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hce.errors import CounterExhausted, CounterStoreError
from hce.keys import CounterStore, FileCounterStore, MemoryCounterStore, usable_luk
from hce.profile import LimitedUseKeySpec


def test_both_stores_satisfy_the_protocol(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Memory and file stores are CounterStores."""
    assert isinstance(MemoryCounterStore(), CounterStore)
    assert isinstance(FileCounterStore(tmp_path / "c.json"), CounterStore)


def test_file_store_survives_a_restart_and_never_goes_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A new store on the same file continues; a stale initial ATC cannot move it backwards."""
    path = tmp_path / "c.json"
    store = FileCounterStore(path, initial_atc=10)
    assert [store.reserve_next_atc(online=True), store.reserve_luk_use(3)] == [11, 1]
    again = FileCounterStore(path, initial_atc=5)
    assert (again.last_atc, again.last_online_atc, again.luk_uses(3)) == (11, 11, 1)
    assert again.reserve_next_atc() == 12
    assert json.loads(path.read_text())["atc"] == 12
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


def test_file_store_write_failure_keeps_memory_unchanged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """When the write fails the reservation fails and the in-memory ATC does not move."""
    store = FileCounterStore(tmp_path / "gone" / "c.json")
    (tmp_path / "gone").write_text("")
    with pytest.raises(CounterStoreError):
        store.reserve_next_atc()
    assert store.last_atc == 0


def test_corrupt_file_is_a_counter_store_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A counters file that is not JSON is refused rather than reset to zero."""
    path = tmp_path / "c.json"
    path.write_text("not json")
    with pytest.raises(CounterStoreError):
        FileCounterStore(path)


def test_atc_stops_at_ffff() -> None:
    """The 2-byte ATC cannot wrap around."""
    store = MemoryCounterStore(atc=0xFFFE)
    assert store.reserve_next_atc() == 0xFFFF
    with pytest.raises(CounterExhausted):
        store.reserve_next_atc()


@given(st.lists(st.booleans(), max_size=40))
def test_reservations_are_strictly_increasing(onlines: list[bool]) -> None:
    """Every reservation is one more than the last, whatever the mix of online flags."""
    store = MemoryCounterStore()
    atcs = [store.reserve_next_atc(online=o) for o in onlines]
    assert atcs == list(range(1, len(onlines) + 1))


@pytest.mark.parametrize(
    ("uses", "now", "expected"),
    [
        ({},           50,   1),     # fresh: the first key
        ({1: 2},       50,   2),     # first used up: the second
        ({1: 2, 2: 2}, 50,   None),  # both used up
        ({},           150,  2),     # first expired by time
        ({},           None, 1),     # time unknown: count only
        ({},           250,  None),  # all expired
    ],
)
def test_usable_luk(uses: dict[int, int], now: int | None, expected: int | None) -> None:
    """The first key with budget and time left is the one used."""
    keys = [LimitedUseKeySpec(1, bytes(16), 2, 100), LimitedUseKeySpec(2, bytes(16), 2, 200)]
    found = usable_luk(keys, MemoryCounterStore(luk_uses=uses), now)
    assert (found.index if found else None) == expected
