"""Best-effort pushes to the edges: `POST {edge}/__minter/push`.

Bodies: `{"revoked_sessions": [sid]}` after a revocation, `{"stale_users": [user_id]}`
after a membership or user change. A push never fails the admin call that caused
it: failures are logged and counted (`push_ok` / `push_failed` in the stats).
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
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._stats = stats

    async def push(self, body: dict[str, Any]) -> None:
        """Send `body` to every edge at once; wait for all of them (bounded by the timeout)."""
        if self._edges:
            await asyncio.gather(*(self._push_one(edge, body) for edge in self._edges))

    async def _push_one(self, edge: str, body: dict[str, Any]) -> None:
        url = edge.rstrip("/") + PUSH_PATH
        try:
            async with self._session.post(
                url,
                json=body,
                timeout=self._timeout,
                allow_redirects=False,
                headers={"Authorization": f"Bearer {self._secret}"},
            ) as response:
                await response.read()
                ok = 200 <= response.status < 300
                status: int | None = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            ok, status = False, None
            log.warning("push failed", extra={"edge": edge, "error": repr(exc)})
        else:
            if not ok:
                log.warning("push refused", extra={"edge": edge, "status": status})
        self._stats.counts["push_ok" if ok else "push_failed"] += 1


PUSHER = web.AppKey("origin_pusher", Pusher)


async def pusher_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: one ClientSession for all pushes, closed with the app."""
    settings = app[STATE].settings
    async with aiohttp.ClientSession() as session:
        app[PUSHER] = Pusher(
            session, settings.edges, settings.push_secret, settings.push_timeout_s, app[STATS]
        )
        yield
