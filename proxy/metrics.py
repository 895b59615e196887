"""Prometheus metrics, one registry per app (so tests can run many apps).

| metric | labels | what |
|---|---|---|
| `session_minter_requests_total` | `route`, `status` | every answer, by edge route |
| `session_minter_request_seconds` | `route` | time to answer (to the handler's return) |
| `session_minter_refresh_decisions_total` | `outcome`, `reason` | minted / origin / refused |
| `session_minter_mint_seconds` | | edge mint latency (sign + store) |
| `session_minter_origin_seconds` | | origin latency of refreshes sent on |
| `session_minter_origin_failures_total` | `kind` | connect, timeout, status_503, slow... |
| `session_minter_origin_breaker_open` | | 1 while in outage mode |
| `session_minter_origin_breaker_state` | `state` | 1 for the current state |
| `session_minter_store_errors_total` | | session store calls that failed |
| `session_minter_jwks_refreshes_total` | `result` | origin JWKS fetches, ok / failed |
| `session_minter_key_reloads_total` | `result` | SIGHUP reloads of the signing keys |
| `session_minter_signing_keys` | `state` | active / published / retiring keys |
| `session_minter_revocations_total` | `source` | sessions revoked (sign_out, push) |
| `session_minter_log_lines_dropped_total` | | log lines dropped while stderr was stalled |

Gauges that describe state owned elsewhere (the breaker, the key ring) are
refreshed by the `before_render` hooks, run on each scrape, so a scrape never
shows a state older than the scrape itself.

The four metrics that move on every request (requests, request seconds,
decisions, mint seconds) are `LoopCounter` / `LoopHistogram`: plain numbers
in a dict, touched only from the event loop's thread (each worker is its
own process), turned into Prometheus families when scraped. A
`prometheus_client` child takes a lock and walks its buckets in Python on
each call, which on a token refresh cost about 15 µs of CPU. They export no
`_created` samples.

`session_minter_log_lines_dropped_total` is the process's log writer's own
count (`logwriter.dropped_lines`), read on each scrape: the writer belongs
to the process, not to one app.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from .logwriter import dropped_lines

__all__ = [
    "METRICS_CONTENT_TYPE",
    "LoopCounter",
    "LoopHistogram",
    "Metrics",
    "ReadCounter",
    "metrics_app",
    "metrics_response",
]

# The classic text format that `generate_latest` writes, named as such.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BREAKER_STATES = ("closed", "open", "half_open")


Labels = tuple[str, ...]


class _LoopMetric(Collector):
    """What both loop metrics share: a name, help text, label names, a registry."""

    def __init__(
        self, name: str, documentation: str, labelnames: Labels, registry: CollectorRegistry
    ) -> None:
        self._name, self._documentation, self._labelnames = name, documentation, labelnames
        registry.register(self)


class LoopCounter(_LoopMetric):
    """A labelled counter kept as plain numbers, for the event loop's thread only."""

    def __init__(
        self, name: str, documentation: str, labelnames: Labels, registry: CollectorRegistry
    ) -> None:
        self._values: dict[Labels, float] = {}
        super().__init__(name, documentation, labelnames, registry)

    def inc(self, labels: Labels = (), amount: float = 1.0) -> None:
        values = self._values
        values[labels] = values.get(labels, 0.0) + amount

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)
        for labels, value in sorted(self._values.items()):
            family.add_metric(labels, value)
        yield family


class LoopHistogram(_LoopMetric):
    """A labelled histogram kept as plain numbers, for the event loop's thread only.

    Per label set: one count per bucket (an observation lands in the first
    bucket whose bound it does not exceed, else in `+Inf`), then the sum.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Labels,
        registry: CollectorRegistry,
        *,
        buckets: tuple[float, ...],
    ) -> None:
        self._bounds = buckets
        self._series: dict[Labels, list[float]] = {}
        super().__init__(name, documentation, labelnames, registry)

    def observe(self, labels: Labels, value: float) -> None:
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = [0.0] * (len(self._bounds) + 2)
        series[bisect_left(self._bounds, value)] += 1
        series[-1] += value

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)
        for labels, series in sorted(self._series.items()):
            cumulative, buckets = 0.0, []
            for bound, count in zip((*self._bounds, float("inf")), series, strict=False):
                cumulative += count
                buckets.append((_bound_text(bound), cumulative))
            family.add_metric(labels, buckets, sum_value=series[-1])
        yield family


class ReadCounter(Collector):
    """A counter without labels whose value is read from elsewhere on each scrape."""

    def __init__(
        self, name: str, documentation: str, read: Callable[[], float], registry: CollectorRegistry
    ) -> None:
        self._name, self._documentation, self._read = name, documentation, read
        registry.register(self)

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self._name, self._documentation, value=self._read())


def _bound_text(bound: float) -> str:
    """A bucket's `le` as Prometheus writes it: `+Inf`, else the float's repr."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    before_render: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = LoopCounter(
            "session_minter_requests", "Answered requests", ("route", "status"), r
        )
        self.request_seconds = LoopHistogram(
            "session_minter_request_seconds",
            "Time to answer, by route",
            ("route",),
            r,
            buckets=_LATENCY_BUCKETS,
        )
        self.decisions = LoopCounter(
            "session_minter_refresh_decisions",
            "Refresh outcomes: minted at the edge, sent to the origin, refused",
            ("outcome", "reason"),
            r,
        )
        self.mint_seconds = LoopHistogram(
            "session_minter_mint_seconds", "Edge mint latency", (), r, buckets=_LATENCY_BUCKETS
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
        self.breaker_state = Gauge(
            "session_minter_origin_breaker_state",
            "1 for the breaker's current state (closed, open, half_open)",
            ["state"],
            registry=r,
        )
        self.store_errors = Counter(
            "session_minter_store_errors", "Session store errors", registry=r
        )
        self.jwks_refreshes = Counter(
            "session_minter_jwks_refreshes", "Origin JWKS fetches", ["result"], registry=r
        )
        self.key_reloads = Counter(
            "session_minter_key_reloads", "Signing key reloads (SIGHUP)", ["result"], registry=r
        )
        self.signing_keys = Gauge(
            "session_minter_signing_keys",
            "Edge keys: active (signs), published (configured), retiring (overlap)",
            ["state"],
            registry=r,
        )
        self.revocations = Counter(
            "session_minter_revocations", "Sessions revoked", ["source"], registry=r
        )
        self.log_lines_dropped = ReadCounter(
            "session_minter_log_lines_dropped",
            "Log lines dropped because stderr was not read fast enough",
            dropped_lines,
            r,
        )
        for result in ("ok", "failed"):  # present from the first scrape, at 0
            self.jwks_refreshes.labels(result)
            self.key_reloads.labels(result)

    def set_breaker(self, state: str, outage: bool) -> None:
        self.breaker_open.set(1 if outage else 0)
        for name in BREAKER_STATES:
            self.breaker_state.labels(name).set(1 if name == state else 0)

    def render(self) -> bytes:
        for hook in self.before_render:
            hook()
        return generate_latest(self.registry)


def metrics_response(metrics: Metrics) -> web.Response:
    response = web.Response(body=metrics.render())
    response.headers["Content-Type"] = METRICS_CONTENT_TYPE
    return response


def metrics_app(metrics: Metrics) -> web.Application:
    """The app behind `server.metrics_port`: `GET /metrics` and nothing else."""

    async def handle(request: web.Request) -> web.Response:
        return metrics_response(metrics)

    app = web.Application()
    app.router.add_get("/metrics", handle)
    return app
