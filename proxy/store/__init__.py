"""Session state stores: memory (default, one process) and Redis (several edges)."""

from .base import SessionStore, Settled, StoreUnavailable
from .factory import open_store
from .memory import MemoryStore
from .redis import RedisStore

__all__ = [
    "MemoryStore",
    "RedisStore",
    "SessionStore",
    "Settled",
    "StoreUnavailable",
    "open_store",
]
