"""The background probe: closes the breaker when the origin is back, without user traffic.

While the breaker is half-open (and outage mode is not forced), a light
`GET` of the origin's JWKS path is sent every `interval_s`; its outcome is
reported to `OriginHealth` like any refresh (an answer slower than the slow
threshold, a 502/503/504, a timeout or a refused connection keep it open).
The JWKS was chosen because every origin serves it, it needs no credential,
and it costs the origin no database work. Nothing is probed while closed.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp

from .health import BreakerState, OriginHealth

__all__ = ["probe_forever", "probe_once"]

log = logging.getLogger(__name__)


async def probe_once(
    health: OriginHealth,
    session: aiohttp.ClientSession,
    url: str,
    client_timeout: aiohttp.ClientTimeout,
) -> str | None:
    """Probe the origin now; the failure kind, or None when it answered well (or when
    a refresh holds the probe lease: that refresh is the probe)."""
    sent_at = health.attempt()
    if sent_at is None:
        return None
    started = time.perf_counter()
    try:
        async with session.get(url, allow_redirects=False, timeout=client_timeout) as response:
            await response.read()
            status = response.status
    except TimeoutError:
        kind = "timeout"
    except aiohttp.ClientConnectorError:
        kind = "connect"
    except aiohttp.ClientError:
        kind = "broken"
    else:
        return health.record_answer(status, time.perf_counter() - started, sent_at=sent_at)
    health.record_failure(kind, sent_at=sent_at)
    return kind


async def probe_forever(
    health: OriginHealth,
    session: aiohttp.ClientSession,
    url: str,
    *,
    client_timeout: aiohttp.ClientTimeout,
    interval_s: float,
) -> None:
    """Probe whenever the breaker is half-open and free for a probe; runs until cancelled."""
    while True:
        await asyncio.sleep(interval_s)
        if health.forced != "auto" or health.state is not BreakerState.HALF_OPEN:
            continue
        if not health.available:
            continue  # a refresh holds the probe lease
        kind = await probe_once(health, session, url, client_timeout)
        log.info("origin probe: %s", kind or "ok")
