"""The expiring table under the edge's in-process state: expiry, recency, the bound."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.expiring import ExpiringTable
from tests.stack import FakeClock


def table(
    clock: FakeClock, *, max_entries: int = 8, ttl_s: float = 10.0
) -> ExpiringTable[str, int]:
    return ExpiringTable(max_entries=max_entries, ttl_s=ttl_s, clock=clock)


def test_an_entry_lives_its_ttl_from_the_last_write() -> None:
    clock = FakeClock(1_750_000_000)
    entries = table(clock)
    entries.set("a", 1)
    clock.advance(9.9)
    assert entries.get("a") == 1
    assert "a" in entries
    entries.set("a", 2)  # a write restarts the time to live; a read does not
    clock.advance(9.9)
    assert entries.get("a") == 2
    clock.advance(0.1)
    assert "a" not in entries
    assert entries.get("a") is None
    assert len(entries) == 0, "the read that found it expired dropped it"


def test_writes_drop_expired_entries_from_the_front() -> None:
    clock = FakeClock(1_750_000_000)
    entries = table(clock)
    for n in range(5):
        entries.set(f"old{n}", n)
    clock.advance(11)
    entries.set("new", 0)
    assert len(entries) == 1


def test_when_full_the_least_recently_used_goes_first() -> None:
    clock = FakeClock(1_750_000_000)
    entries = table(clock, max_entries=3)
    entries.set("a", 1)
    entries.set("b", 2)
    entries.set("c", 3)
    assert entries.get("a") == 1  # now b is the least recently used
    entries.set("d", 4)
    assert entries.get("b") is None
    assert [entries.get(key) for key in "acd"] == [1, 3, 4]
    assert len(entries) == 3


def test_a_write_says_until_when_what_the_bound_pushed_out_would_have_lived() -> None:
    clock = FakeClock(1_750_000_000)
    entries = table(clock, max_entries=2)
    assert entries.set("a", 1) == 0.0
    clock.advance(3)
    assert entries.set("b", 2) == 0.0
    assert entries.set("c", 3) == 1_750_000_010, "a, written at 0, pushed out"
    clock.advance(8)  # a has expired anyway; b (written at 3) has not
    assert entries.set("d", 4) == 1_750_000_013
    clock.advance(20)
    assert entries.set("e", 5) == 0.0, "expired entries are dropped, not pushed out"


def test_a_clock_stepping_back_never_serves_an_expired_entry() -> None:
    clock = FakeClock(1_750_000_000)
    entries = table(clock)
    entries.set("early", 1)
    clock.advance(-60)
    entries.set("late", 2)  # expires before "early" although written after it
    clock.advance(60 + 10)
    assert entries.get("early") is None
    assert entries.get("late") is None


def test_the_bound_must_hold_something() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        ExpiringTable(max_entries=0, ttl_s=1.0, clock=FakeClock(0))


@given(
    st.lists(
        st.tuples(st.sampled_from(["get", "set", "tick"]), st.integers(0, 12)),
        max_size=200,
    )
)
def test_it_agrees_with_a_plain_model(steps: list[tuple[str, int]]) -> None:
    """Within the bound, the table answers exactly what a dict of expiries would."""
    clock = FakeClock(1_750_000_000)
    entries = table(clock, max_entries=16, ttl_s=5.0)
    model: dict[str, tuple[float, int]] = {}
    for action, number in steps:
        key = f"k{number}"
        if action == "tick":
            clock.advance(number / 4)
        elif action == "set":
            entries.set(key, number)
            model[key] = (clock() + 5.0, number)
        else:
            expected = model.get(key)
            live = expected[1] if expected is not None and clock() < expected[0] else None
            assert entries.get(key) == live
        assert len(entries) <= 16


def test_asking_whether_a_key_is_held_counts_as_a_use() -> None:
    clock = FakeClock(1_750_000_000)
    entries = table(clock, max_entries=2)
    entries.set("a", 1)
    entries.set("b", 2)
    assert "a" in entries  # now b is the least recently used
    entries.set("c", 3)
    assert "b" not in entries
    assert "a" in entries
