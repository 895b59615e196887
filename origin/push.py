"""Best-effort pushes to the edges: `POST {edge}/__minter/push`.

Bodies: `{"revoked_sessions": [sid]}` after a revocation, `{"stale_users": [user_id]}`
after a membership or user change. A push that could not be delivered (no
connection, a 5xx: an edge restarting, or its Redis down) is tried again,
`RETRY_DELAYS_S` apart, within the same `push_timeout_s` as the first try;
a 4xx (a wrong secret) is not. A push never fails the admin call that
caused it, and holds it at most `push_timeout_s`: failures are logged and
counted (`push_ok` / `push_failed` / `push_retried` in the stats).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from origin.state import STATE
from origin.stats import STATS, Stats

log = logging.getLogger("origin.push")

PUSH_PATH = "/__minter/push"
RETRY_DELAYS_S = (0.2, 0.8)  # then it is given up


class Pusher:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        edges: tuple[str, ...],
        secret: str,
        timeout_s: float,
        stats: Stats,
    ) -> None:
        self._session = session
        self._edges = edges
        self._secret = secret
        self._timeout_s = timeout_s
        self._stats = stats

    async def push(self, body: dict[str, Any]) -> None:
        """Send `body` to every edge at once; wait for all of them (bounded by the timeout)."""
        if self._edges:
            await asyncio.gather(*(self._push_one(edge, body) for edge in self._edges))

    async def _push_one(self, edge: str, body: dict[str, Any]) -> None:
        url = edge.rstrip("/") + PUSH_PATH
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        status: int | None = None
        for delay_s in (*RETRY_DELAYS_S, None):
            left_s = deadline - loop.time()
            if left_s <= 0:  # a sleep overshot it; and aiohttp reads a 0 timeout as none
                break
            status = await self._post(url, edge, body, left_s)
            if status is not None and status < 500:
                break
            if delay_s is None or loop.time() + delay_s >= deadline:
                break
            self._stats.counts["push_retried"] += 1
            await asyncio.sleep(delay_s)
        ok = status is not None and 200 <= status < 300
        if status is not None and not ok:
            log.warning("push refused", extra={"edge": edge, "status": status})
        self._stats.counts["push_ok" if ok else "push_failed"] += 1

    async def _post(
        self, url: str, edge: str, body: dict[str, Any], timeout_s: float
    ) -> int | None:
        """The edge's answer status, or None when it could not be reached in time."""
        try:
            async with self._session.post(
                url,
                json=body,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
                allow_redirects=False,
                headers={"Authorization": f"Bearer {self._secret}"},
            ) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("push failed", extra={"edge": edge, "error": repr(exc)})
            return None


PUSHER = web.AppKey("origin_pusher", Pusher)


async def pusher_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: one ClientSession for all pushes, closed with the app."""
    settings = app[STATE].settings
    async with aiohttp.ClientSession() as session:
        app[PUSHER] = Pusher(
            session, settings.edges, settings.push_secret, settings.push_timeout_s, app[STATS]
        )
        yield
