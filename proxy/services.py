"""What the handlers share, built once per app and held under one AppKey."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from minter import Bounds, VerifyRules

from .coalesce import Coalescer
from .config import Settings
from .forward import Upstream
from .health import OriginHealth
from .keyring import KeyRing
from .metrics import Metrics
from .signed import SignedHere
from .store import SessionStore

__all__ = ["SERVICES", "Services"]


@dataclass(slots=True)
class Services:
    settings: Settings
    clock: Callable[[], float]
    keyring: KeyRing
    store: SessionStore
    health: OriginHealth
    metrics: Metrics
    bounds: Bounds
    rules: VerifyRules
    coalescer: Coalescer
    signed: SignedHere
    upstream: Upstream | None = None  # set once the client session is open

    def now(self) -> int:
        """Whole Unix seconds, the clock of `iat`."""
        return int(self.clock())

    @property
    def origin(self) -> Upstream:
        if self.upstream is None:
            raise RuntimeError("the origin client is not open")
        return self.upstream


SERVICES = web.AppKey("services", Services)
