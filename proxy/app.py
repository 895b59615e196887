"""The app factory: settings in, a ready aiohttp Application out.

One `ClientSession` to the origin (no cookie jar, no automatic headers or
decompression, bounded pool) is opened and closed by `cleanup_ctx`, which
also fetches the origin's JWKS at start and refreshes it in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence

import aiohttp
from aiohttp import web

from minter import Bounds, SigningKey, VerifyRules

from .coalesce import Coalescer
from .config import Settings
from .forward import SKIP_AUTO_HEADERS, Upstream
from .health import OriginHealth
from .keyring import KeyRing
from .keys import load_signing_keys
from .limits import LIMITS, Limits
from .logs import install_request_log
from .metrics import Metrics
from .prober import probe_forever
from .reading import BODY_IDLE_S
from .redact import install_access_log_redaction
from .routes import dispatch
from .services import SERVICES, Services
from .serving import handler_args
from .signed import SignedHere
from .store import SessionStore, StoreUnavailable, open_store

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def _store(settings: Settings, clock: Callable[[], float]) -> SessionStore:
    return open_store(settings, clock)


def _health(settings: Settings, clock: Callable[[], float], metrics: Metrics) -> OriginHealth:
    origin = settings.origin
    return OriginHealth(
        clock=clock,
        failure_threshold=origin.breaker_failures,
        window_s=origin.breaker_window_s,
        open_for_s=origin.breaker_open_s,
        slow_s=origin.slow_answer_s,
        probe_lease_s=origin.timeout_s + origin.connect_timeout_s,
        forced=origin.outage,
        on_change=lambda health: metrics.set_breaker(str(health.state), health.outage),
    )


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    signing_keys: Sequence[SigningKey] | None = None,
    store: SessionStore | None = None,
) -> web.Application:
    """Build the edge. `clock` and `signing_keys` are injectable for tests and the demo."""
    keys = list(signing_keys) if signing_keys is not None else load_signing_keys(settings.keys)
    install_access_log_redaction()  # tokens in query strings never reach the access log
    tokens = settings.tokens
    metrics = Metrics()
    services = Services(
        settings=settings,
        clock=clock,
        keyring=KeyRing(
            keys,
            jwks_url=settings.origin.base_url + settings.origin.jwks_path,
            min_refetch_s=settings.origin.jwks_min_refetch_s,
            clock=clock,
            cache_file=settings.origin.jwks_cache_file,
            on_fetch=lambda ok: metrics.jwks_refreshes.labels("ok" if ok else "failed").inc(),
        ),
        store=store if store is not None else _store(settings, clock),
        health=_health(settings, clock, metrics),
        metrics=metrics,
        bounds=Bounds(
            max_claims_age_s=tokens.max_claims_age_s,
            outage_max_claims_age_s=tokens.outage_max_claims_age_s,
            lifetime_s=tokens.lifetime_s,
            max_expired_s=tokens.max_expired_s,
        ),
        # Verification admits the outage window; the policy holds normal times to
        # max_expired_s.
        rules=VerifyRules(
            issuers=frozenset(tokens.issuers),
            authorized_parties=frozenset(tokens.authorized_parties),
            max_expired_s=tokens.widest_expired_s,
        ),
        coalescer=Coalescer(clock=clock),
        signed=SignedHere(
            max_entries=tokens.remember_signed,
            ttl_s=tokens.lifetime_s + tokens.max_expired_s,
            clock=clock,
        ),
    )
    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        handler_args=handler_args(settings.server),
    )
    app[SERVICES] = services
    app[BODY_IDLE_S] = settings.server.body_timeout_s
    metrics.before_render.append(lambda: _observe_state(services))
    install_request_log(app, dispatch, metrics, frozenset(settings.server.trusted_proxies))
    app[LIMITS] = Limits(
        settings.limits,
        clock=clock,
        trusted_proxies=frozenset(settings.server.trusted_proxies),
        registry=services.metrics.registry,
    )
    app.cleanup_ctx.append(_origin_client)
    return app


async def _origin_client(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES]
    settings = services.settings
    streamed, buffered = _origin_session(settings), _origin_session(settings)
    services.upstream = Upstream(
        session=streamed,
        buffered_session=buffered,
        base_url=settings.origin.base_url,
        prefix=settings.server.prefix,
        preserve_host=settings.origin.preserve_host,
        trusted_proxies=frozenset(settings.server.trusted_proxies),
        token_timeout=aiohttp.ClientTimeout(
            total=settings.origin.timeout_s, sock_connect=settings.origin.connect_timeout_s
        ),
        stream_timeout=aiohttp.ClientTimeout(
            total=None,
            # Waiting for a free pooled connection is bounded too: a 504, not a hang.
            connect=settings.origin.timeout_s,
            sock_connect=settings.origin.connect_timeout_s,
            sock_read=settings.origin.timeout_s,
        ),
    )
    try:
        await services.store.start()
    except StoreUnavailable:
        log.warning("session store unavailable at start; will retry on the first refresh")
    keyring = services.keyring
    if not await keyring.refresh(buffered):
        log.warning("origin JWKS unavailable at start; will retry")
    refresher = asyncio.create_task(_refresh_jwks(services, buffered))
    prober = asyncio.create_task(
        probe_forever(
            services.health,
            buffered,
            settings.origin.base_url + settings.origin.jwks_path,
            client_timeout=services.upstream.token_timeout,
            interval_s=min(1.0, settings.origin.breaker_open_s),
        )
    )
    try:
        yield
    finally:
        for task in (refresher, prober):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await services.store.close()
        await streamed.close()
        await buffered.close()


def _origin_session(settings: Settings) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=256, limit_per_host=256),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=SKIP_AUTO_HEADERS,
        timeout=aiohttp.ClientTimeout(
            total=settings.origin.timeout_s, sock_connect=settings.origin.connect_timeout_s
        ),
    )


async def _refresh_jwks(services: Services, session: aiohttp.ClientSession) -> None:
    settings = services.settings.origin
    while True:
        interval = settings.jwks_refresh_s if services.keyring.origin_keys_known else 2.0
        await asyncio.sleep(interval)
        await services.keyring.refresh(session)  # counted by the key ring's on_fetch


def _observe_state(services: Services) -> None:
    """Gauges of state owned elsewhere, refreshed on each scrape."""
    metrics, health, keyring = services.metrics, services.health, services.keyring
    metrics.set_breaker(str(health.state), health.outage)
    metrics.signing_keys.labels("active").set(1)
    metrics.signing_keys.labels("published").set(len(keyring.signing))
    metrics.signing_keys.labels("retiring").set(len(keyring.retiring))
