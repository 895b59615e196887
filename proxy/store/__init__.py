"""Session state stores: memory (default, one process) and Redis (several edges)."""

from .base import SessionStore, StoreUnavailable
from .factory import open_store
from .memory import MemoryStore
from .redis import RedisStore

__all__ = ["MemoryStore", "RedisStore", "SessionStore", "StoreUnavailable", "open_store"]
