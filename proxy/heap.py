"""Keep the edge's long-lived state out of the garbage collector's way.

CPython's full collection walks every container it tracks, alive or not. In
a running edge most of them are the state built at start (modules, the app,
the key ring) and the memory store's tables, which reference a million
sessions. A full collection that walks them stops the event loop: about
0.8 s for a million sessions, every refresh in flight waiting behind it.

Two things keep that walk short (`bench/memory.py` prints the pause):

- Once the app has started, `freeze_startup_heap` moves everything alive into
  CPython's permanent generation (`gc.freeze`), which no collection visits,
  the store's tables among it: their entries are no longer walked through
  them.
- The store keeps each session as plain tuples of strings, bytes and numbers
  (`proxy/store/memory.py`), which the collector stops tracking after a pass
  or two, so new sessions do not pile up in the oldest generation either.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_heap"]


def freeze_startup_heap() -> None:
    """Collect what start-up left behind, then exempt the rest from every later collection."""
    gc.collect()
    gc.freeze()
