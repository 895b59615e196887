"""Build the session store the settings name: `[store] backend = "memory" | "redis"`.

Both get the same lifetimes: records live as long as claims can be minted
from them (the outage bound plus a token lifetime), tombstones, stale marks
and client session lists as long as `tokens.revocation_ttl_s`. The memory
store runs on the app's clock; Redis expires keys on its own clock.
"""

from __future__ import annotations

from collections.abc import Callable

from ..config import Settings
from .base import SessionStore
from .memory import MemoryStore
from .redis import RedisStore

__all__ = ["open_store"]


def open_store(settings: Settings, clock: Callable[[], float]) -> SessionStore:
    """A new store; the Redis one connects lazily, on its first command."""
    tokens, store = settings.tokens, settings.store
    record_ttl_s = tokens.outage_max_claims_age_s + tokens.lifetime_s
    if store.backend == "redis":
        return RedisStore.from_url(
            store.redis_url,
            connect_timeout_s=store.connect_timeout_s,
            socket_timeout_s=store.socket_timeout_s,
            record_ttl_s=record_ttl_s,
            revocation_ttl_s=tokens.revocation_ttl_s,
            clock=clock,
        )
    return MemoryStore(
        max_entries=store.max_sessions,
        record_ttl_s=record_ttl_s,
        revocation_ttl_s=tokens.revocation_ttl_s,
        timer=clock,
    )
