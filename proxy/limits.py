"""Abuse limits on the token route: per-IP and per-session token buckets, a signing gate.

Three limits, each applied where it cannot be turned against someone else:

- **Per client IP, before anything else** (before the body is read or a
  signature checked): `per_ip_per_s` with bursts of `per_ip_burst`. The IP is
  the TCP peer; `X-Forwarded-For` is believed only when the peer is one of
  `server.trusted_proxies`, and then its last entry that is not itself a
  trusted proxy (behind a CDN and a balancer, both listed) names the client.
  IPv6 clients are keyed by their /64, the smallest block a single host is
  usually given.
- **Per verified session and client, after verification**:
  `per_session_per_s` with bursts of `per_session_burst`, keyed on the `sid`
  of a token whose signature and claims passed and on the client credential
  that posted it (the hash of `__client` or `authorization`; none is a key
  of its own). Garbage posted to a victim's path never reaches this bucket,
  and a copy of the victim's token posted from another client spends that
  client's budget, so neither can drain the victim's.
- **Concurrent signatures**: at most `max_concurrent_signs` edge signatures
  run at once; at most `QUEUE_FACTOR` times that many refreshes wait for a
  slot, and the ones past that get 503 `edge_busy` with `Retry-After` instead
  of piling up. By default a signature runs on the event loop (about 0.4 ms
  of RSA), together with the others asked for in the same loop turn
  (`batch.py`): measured on a pinned core, handing it to a thread costs more than
  it frees, because every I/O call of the loop then waits for the GIL.
  `limits.sign_in_threads = true` signs in worker threads instead, which
  pays off only when one worker process has spare cores (cryptography
  releases the GIL while it signs); `--workers N` is the better way to use
  them.

And one limit on everything else the edge streams to the origin:

- **Forwarded requests in flight per client IP**: `per_ip_forwards` (32).
  A streamed forward holds one of the origin pool's 256 connections for as
  long as its client takes to send the body (up to `server.body_timeout_s`
  between bytes), so one client sending slowly could hold them all and
  stall every sign-in at that edge. Past the cap: 429 with `Retry-After: 1`.
  Refreshes and sign-outs are read whole before they go out, over a pool
  of their own (`forward.py`), and are not counted here.

Over a rate limit the answer is 429 in the Clerk error shape with a whole
`Retry-After` (at least 1 second). Buckets live in bounded expiring tables:
an entry expires once its bucket would have refilled, so dropping it loses
nothing, and under pressure the least recently used entries go first (which
can only give their owner a fresh, full bucket).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import math
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from .batch import LoopBatch
from .config import LimitSettings
from .errors import clerk_error
from .expiring import ExpiringTable

__all__ = [
    "LIMITS",
    "MAX_TRACKED_KEYS",
    "QUEUE_FACTOR",
    "InFlight",
    "Limits",
    "SignBusy",
    "SignGate",
    "TokenBuckets",
    "client_ip",
]

MAX_TRACKED_KEYS = 100_000  # per bucket table; the least recently used go first
QUEUE_FACTOR = 4  # refreshes that may wait for a signing slot, per slot

T = TypeVar("T")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """One token bucket per key, refilled at `rate` per second up to `burst`."""

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        clock: Callable[[], float],
        max_keys: int = MAX_TRACKED_KEYS,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        # Past this age a bucket is full again, so forgetting it changes nothing.
        refill_s = max(burst / rate, 1.0)
        self._buckets: ExpiringTable[str, _Bucket] = ExpiringTable(
            max_entries=max_keys, ttl_s=refill_s, clock=clock
        )

    def __len__(self) -> int:
        return len(self._buckets)

    @property
    def max_keys(self) -> int:
        return self._buckets.max_entries

    def take(self, key: str) -> float:
        """Spend one token: 0.0 when allowed, else the seconds until one is available."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.burst), updated=now)
        else:
            elapsed = max(0.0, now - bucket.updated)  # a clock stepping back refills nothing
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        allowed = bucket.tokens >= 1.0
        if allowed:
            bucket.tokens -= 1.0
        self._buckets.set(key, bucket)  # (re)write: resets the entry's expiry
        return 0.0 if allowed else (1.0 - bucket.tokens) / self.rate


class SignBusy(Exception):
    """Every signing slot is taken and the waiting line is full."""


class SignGate:
    """At most `limit` signatures at once; a bounded waiting line."""

    def __init__(self, limit: int, *, max_waiting: int, in_threads: bool = False) -> None:
        self.limit = limit
        self.max_waiting = max_waiting
        self.in_threads = in_threads
        self.waiting = 0
        self._slots = asyncio.Semaphore(limit)
        self.batch = LoopBatch()

    def slot(self) -> _Slot:
        """Hold one signing slot (`async with`); raises SignBusy when the line is full."""
        return _Slot(self)

    async def _acquire(self) -> None:
        if self._slots.locked() and self.waiting >= self.max_waiting:
            raise SignBusy
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1

    def _release(self) -> None:
        self._slots.release()

    async def run(self, sign: Callable[[], T], *, share: Hashable | None = None) -> T:
        """Run `sign` once a slot is free: on the loop, or in a worker thread.

        On the loop, calls with the same `share` key in one batch run once.
        """
        if not self.in_threads and not self._slots.locked():
            # On the loop a signature runs to its end before anything else runs:
            # taking a free slot for that long could not be seen by anyone. The
            # signatures asked for in one loop turn run together (`batch.py`).
            return await self.batch.run(sign, share=share)
        async with self.slot():
            if self.in_threads:
                return await asyncio.to_thread(sign)
            return sign()


class _Slot:
    """`SignGate.slot`: a class, not an async generator, so that mypyc compiles it."""

    def __init__(self, gate: SignGate) -> None:
        self._gate = gate

    async def __aenter__(self) -> None:
        await self._gate._acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self._gate._release()


@functools.lru_cache(maxsize=65536)
def _ip_key(address: str) -> str:
    address = _without_port(address.strip())
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _without_port(address: str) -> str:
    """`203.0.113.7:51000` and `[2001:db8::1]:443` (as some proxies write hops) name
    the address alone; a new port must not mean a new, full bucket."""
    if address.startswith("["):
        return address[1:].partition("]")[0]
    host, colon, port = address.rpartition(":")
    if colon and "." in host and ":" not in host and port.isdigit():
        return host
    return address


def client_ip(request: web.Request, trusted_proxies: frozenset[str]) -> str:
    """The rate-limit key of a request's client (see the module docstring)."""
    peer = request.remote or "unknown"
    if peer in trusted_proxies:
        forwarded = ",".join(request.headers.getall("X-Forwarded-For", ()))
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        # From the right: the first hop that is not itself a trusted proxy is the client.
        for hop in reversed(hops):
            if hop not in trusted_proxies:
                return _ip_key(hop)
        if hops:
            return _ip_key(hops[0])
    return _ip_key(peer)


def _retry_after(seconds: float) -> int:
    return max(1, math.ceil(seconds))


class InFlight:
    """Requests in flight per key, at most `limit` each; a key at zero is not kept."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._counts)

    def enter(self, key: str) -> bool:
        count = self._counts.get(key, 0)
        if count >= self.limit:
            return False
        self._counts[key] = count + 1
        return True

    def leave(self, key: str) -> None:
        count = self._counts[key] - 1
        if count:
            self._counts[key] = count
        else:
            del self._counts[key]


class Limits:
    """The edge's limits, one instance per app (under `LIMITS`)."""

    def __init__(
        self,
        settings: LimitSettings,
        *,
        clock: Callable[[], float],
        trusted_proxies: frozenset[str] = frozenset(),
        registry: CollectorRegistry | None = None,
        max_keys: int = MAX_TRACKED_KEYS,
    ) -> None:
        self.per_ip = TokenBuckets(
            rate=settings.per_ip_per_s, burst=settings.per_ip_burst, clock=clock, max_keys=max_keys
        )
        self.per_session = TokenBuckets(
            rate=settings.per_session_per_s,
            burst=settings.per_session_burst,
            clock=clock,
            max_keys=max_keys,
        )
        self.signs = SignGate(
            settings.max_concurrent_signs,
            max_waiting=QUEUE_FACTOR * settings.max_concurrent_signs,
            in_threads=settings.sign_in_threads,
        )
        self.forwards = InFlight(settings.per_ip_forwards)
        self._trusted = trusted_proxies
        self.limited = Counter(
            "session_minter_limited",
            "Token requests refused by a limit",
            ["limit"],
            registry=registry,
        )

    def check_ip(self, request: web.Request) -> web.Response | None:
        """Before reading anything: None when allowed, else the 429 to send."""
        wait = self.per_ip.take(client_ip(request, self._trusted))
        if not wait:
            return None
        self.limited.labels("ip").inc()
        return clerk_error(
            request,
            429,
            "too_many_requests",
            "too many token requests from this address",
            retry_after_s=_retry_after(wait),
        )

    def check_session(
        self, request: web.Request, verified_session_id: str, client_key: str | None
    ) -> web.Response | None:
        """Only for a verified token's `sid`, from the client `client_key` names:
        None when allowed, else the 429 to send."""
        wait = self.per_session.take(f"{verified_session_id} {client_key or ''}")
        if not wait:
            return None
        self.limited.labels("session").inc()
        return clerk_error(
            request,
            429,
            "too_many_requests",
            "too many token requests for this session",
            retry_after_s=_retry_after(wait),
        )

    @contextlib.contextmanager
    def forward_slot(self, request: web.Request) -> Iterator[web.Response | None]:
        """Around a streamed forward: None while it may go, else the 429 to send."""
        ip = client_ip(request, self._trusted)
        if not self.forwards.enter(ip):
            self.limited.labels("forwards").inc()
            yield clerk_error(
                request,
                429,
                "too_many_requests",
                "too many requests in flight from this address",
                retry_after_s=1,
            )
            return
        try:
            yield None
        finally:
            self.forwards.leave(ip)

    def busy(self, request: web.Request) -> web.Response:
        self.limited.labels("signing").inc()
        return clerk_error(
            request,
            503,
            "edge_busy",
            "too many tokens are being signed; retry shortly",
            retry_after_s=1,
        )


LIMITS = web.AppKey("limits", Limits)
