"""A bounded table whose entries expire a fixed time after they were last written.

The edge's in-process state (rate-limit buckets, the memory store's tables,
recent signatures) is read and written on every token request, so this table
does as little as it can in Python: one `OrderedDict` (C) of
`key -> (expires, value)` in least-recently-used order. Reads and writes
move their key to the end; a write also restarts its entry's time to live.
Each write drops entries from the front while they have expired or the
table holds more than `max_entries` (amortised O(1)), so when the table is
full the least recently used entry goes first, and `set` says until when
what it pushed out would have lived (a table of sign-outs must not forget
one silently). An expired entry behind a live one at the front stays until
it is read (which drops it, unserved) or pushed out by the bound.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["ExpiringTable"]

K = TypeVar("K")
V = TypeVar("V")


class ExpiringTable(Generic[K, V]):
    __slots__ = ("_clock", "_entries", "max_entries", "ttl_s")

    def __init__(self, *, max_entries: int, ttl_s: float, clock: Callable[[], float]) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        """Entries held, some of which may have expired and not been dropped yet."""
        return len(self._entries)

    def __contains__(self, key: K) -> bool:
        return self._live(key) is not None

    def get(self, key: K) -> V | None:
        entry = self._live(key)
        return None if entry is None else entry[1]

    def _live(self, key: K) -> tuple[float, V] | None:
        """The entry, now the most recently used; an expired one is dropped."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() < entry[0]:
            self._entries.move_to_end(key)
            return entry
        del self._entries[key]
        return None

    def set(self, key: K, value: V) -> float:
        """Write `value`; it lives `ttl_s` from now.

        Returns 0.0, or, when the bound pushed out entries that had not expired,
        the time (on the table's clock) the last of them would have expired.
        """
        now = self._clock()
        entries = self._entries
        entries[key] = (now + self.ttl_s, value)
        entries.move_to_end(key)
        pushed_out_until = 0.0
        while entries:
            oldest = next(iter(entries))
            expires = entries[oldest][0]
            if now < expires:
                if len(entries) <= self.max_entries:
                    break
                pushed_out_until = max(pushed_out_until, expires)
            del entries[oldest]
        return pushed_out_until
