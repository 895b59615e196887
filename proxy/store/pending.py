"""Sign-outs that could not be written yet, retried in the background until they are.

A sign-out the origin confirmed must reach the shared store, or another edge
could keep minting for a session that has ended. When the write fails, the
session ids wait here: the owning store answers them as revoked locally, a
background task retries with a capped backoff (0.1 s doubling to 2 s), and
`ping` is False while any wait. The queue is bounded: past `max_pending` ids
the oldest are dropped (an error is logged), which bounds memory when the
store stays down under a flood of sign-outs. A dropped sign-out must still
hold, so once the queue is written the store begins a new data set
(`begin_again`): claims assembled before then go to the origin once, on
every edge, as after a Redis that lost its data (`base.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable

from .base import StoreUnavailable

__all__ = ["PendingRevocations"]

log = logging.getLogger(__name__)

_FIRST_DELAY_S = 0.1
_MAX_DELAY_S = 2.0


class PendingRevocations:
    def __init__(
        self,
        write: Callable[[list[str]], Awaitable[None]],
        *,
        begin_again: Callable[[], Awaitable[None]],
        max_pending: int = 100_000,
    ) -> None:
        self._write = write
        self._begin_again = begin_again
        self._max_pending = max_pending
        self._ids: dict[str, None] = {}  # insertion-ordered set
        self._dropped = False  # some were dropped: the store must begin again
        self._drops = 0  # how many times; a drop during `begin_again` needs another
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def dropped(self) -> bool:
        """Some were dropped, and the store has not begun again since."""
        return self._dropped

    def add(self, session_ids: Iterable[str]) -> None:
        """Queue ids for writing and make sure the retry task runs."""
        for session_id in session_ids:
            self._ids[session_id] = None
        overflow = len(self._ids) - self._max_pending
        if overflow > 0:
            for session_id in list(self._ids)[:overflow]:
                del self._ids[session_id]
            self._dropped = True
            self._drops += 1
            log.error(
                "dropped %d queued sign-outs: the store has been down too long; once it is"
                " back, every session goes to the origin once",
                overflow,
            )
        if self._ids and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._retry())

    async def flush(self) -> bool:
        """Try once to write everything queued (and, after a drop, begin again);
        True when nothing is left."""
        batch = list(self._ids)
        try:
            if batch:
                await self._write(batch)
                for session_id in batch:
                    self._ids.pop(session_id, None)
                log.info("wrote %d queued sign-outs", len(batch))
            if self._dropped and not self._ids:
                drops = self._drops
                await self._begin_again()
                # A drop while it ran is not covered by the data set it began.
                self._dropped = self._drops != drops
        except StoreUnavailable:
            return False
        return not self._ids and not self._dropped

    async def _retry(self) -> None:
        delay = _FIRST_DELAY_S
        while not await self.flush():
            # The Redis client can swallow a cancellation that lands during a write
            # (it raises the write's error instead): closing is checked here too.
            if self._closed:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_DELAY_S)

    async def close(self) -> None:
        """Stop retrying after one last attempt; log what is lost."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not await self.flush():
            log.error("%d sign-outs were never written to the store", len(self._ids))
