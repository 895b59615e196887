"""Prometheus metrics, one registry per app (so tests can run many apps)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "session_minter_requests", "Answered requests", ["route", "status"], registry=r
        )
        self.decisions = Counter(
            "session_minter_refresh_decisions",
            "Refresh outcomes: minted at the edge, sent to the origin, refused",
            ["outcome", "reason"],
            registry=r,
        )
        self.mint_seconds = Histogram(
            "session_minter_mint_seconds", "Edge mint latency", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.origin_seconds = Histogram(
            "session_minter_origin_seconds",
            "Origin latency for refreshes",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.origin_failures = Counter(
            "session_minter_origin_failures", "Origin failures by kind", ["kind"], registry=r
        )
        self.breaker_open = Gauge(
            "session_minter_origin_breaker_open", "1 while in outage mode", registry=r
        )
        self.store_errors = Counter(
            "session_minter_store_errors", "Session store errors", registry=r
        )
        self.jwks_refreshes = Counter(
            "session_minter_jwks_refreshes", "Origin JWKS fetches", ["result"], registry=r
        )
        self.revocations = Counter(
            "session_minter_revocations", "Sessions revoked", ["source"], registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
