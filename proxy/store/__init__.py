"""Session state stores: memory (default, one process) and Redis (several edges)."""

from .base import SessionStore, StoreUnavailable
from .memory import MemoryStore

__all__ = ["MemoryStore", "SessionStore", "StoreUnavailable"]
