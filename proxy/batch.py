"""Calls asked for during one turn of the event loop, run back to back at the start of the next.

An RS256 signature is a few hundred microseconds of big-number arithmetic
(AVX-512 code in OpenSSL, where the CPU has it), and a token refresh is a
few hundred microseconds of Python around it. Taking turns request by
request, they slow each other down: each finds the CPU's caches holding
the other's data, and plain Python runs slower for milliseconds after the
vector code (`bench/after_rsa.py`). Batches make the switches fewer: on
this project's machine a bare aiohttp handler that signs answers 3 to 11%
more requests per second when the signatures of one loop turn run
together, and the edge 5 to 12% more (README, "Performance"). Under light
load a batch holds one call and costs one loop turn (microseconds); under
load, the requests that the loop read in one turn reach their signature
together and share a batch (about 21 at `bench/run.py`'s 64 connections).

Calls given the same `share` key in one batch run once, and every caller
gets that one result: tabs of one session refreshing together get one
signature (`coalesce.py` covers the rest of that second). Each caller waits
on its own future, so one that goes away (its task cancelled) takes nothing
from the others; a call whose callers are all gone is skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["LoopBatch"]

T = TypeVar("T")

_Waiting = list[asyncio.Future[Any]]


class LoopBatch:
    def __init__(self) -> None:
        self._pending: list[tuple[Callable[[], Any], _Waiting]] = []
        self._shared: dict[Hashable, _Waiting] = {}
        self.batches = 0  # batches run so far
        self.calls = 0  # calls run in them
        self.shared = 0  # callers served by another caller's call

    def __len__(self) -> int:
        """Calls waiting for the next batch."""
        return len(self._pending)

    def run(self, call: Callable[[], T], *, share: Hashable | None = None) -> asyncio.Future[T]:
        """`call`'s result (or exception), once this turn's batch has run."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._run_batch)
        if share is not None:
            waiting = self._shared.get(share)
            if waiting is not None:
                waiting.append(future)
                self.shared += 1
                return future
            waiting = self._shared[share] = [future]
        else:
            waiting = [future]
        self._pending.append((call, waiting))
        return future

    def _run_batch(self) -> None:
        batch, self._pending, self._shared = self._pending, [], {}
        self.batches += 1
        for call, waiting in batch:
            callers = [future for future in waiting if not future.done()]
            if not callers:  # all cancelled: nobody is left to answer
                continue
            self.calls += 1
            try:
                result = call()
            except Exception as exc:  # the callers' to handle, as if each had called
                for future in callers:
                    future.set_exception(exc)
            else:
                for future in callers:
                    future.set_result(result)
