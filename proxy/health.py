"""Origin health: a circuit breaker over origin failures, and outage mode.

```
     N failures in a row within window_s
  CLOSED ───────────────────────────────▶ OPEN (outage mode)
    ▲                                       │ open_s later
    │ a probe succeeds                      ▼
    └──────────────────────────────────  HALF_OPEN ── a probe fails ──▶ OPEN
```

Failures are connect errors, timeouts, broken connections, every 5xx, a
200 without a token on the token route, and answers slower than `slow_s`.
A slow answer, or a 5xx other than 502/503/504 (`UNAVAILABLE_STATUSES`), is
still the origin's answer and is passed on; it only counts against the
origin (an origin whose database fails answers 500, and enough of those
must open the breaker). Any other answer, 4xx and 429 included, is the
origin speaking for itself: a success.

Failures count in a row: a success clears them (an origin failing now and
then is not down; 502/503/504 on a refresh fall back to an edge mint one
by one anyway). Answers to requests sent before the breaker opened (each
report carries when its request was sent, from `attempt()`) change
nothing, successes and failures alike: only the probe's answer closes it or
opens it again.

Half-open lets one request at a time through as a probe: the first refresh
that would go to the origin takes a lease (`probe_lease_s`, so a probe that
never reports back cannot wedge the breaker) and every other refresh stays
in outage mode until it reports. `proxy/prober.py` probes in the background
too, so the breaker closes without user traffic.

Outage mode can be forced: `forced = "on"` (always in outage mode: no
refresh goes to the origin that could be minted at the edge), `"off"` (never
in outage mode; a refresh whose origin call fails still falls back to an edge
mint, since nothing better is left for it), `"auto"` (the breaker decides).
Every change of state is logged and reported to `on_change`.

Times come from the injected clock, so tests move them without sleeping.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from enum import StrEnum

__all__ = ["FORCED_MODES", "UNAVAILABLE_STATUSES", "BreakerState", "OriginHealth"]

log = logging.getLogger(__name__)

FORCED_MODES = ("auto", "on", "off")
# The origin could not answer this request: a refresh falls back to the edge.
UNAVAILABLE_STATUSES = frozenset({502, 503, 504})


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class OriginHealth:
    def __init__(
        self,
        *,
        clock: Callable[[], float],
        failure_threshold: int = 5,
        window_s: float = 10.0,
        open_for_s: float = 5.0,
        slow_s: float = 2.0,
        probe_lease_s: float = 10.0,
        forced: str = "auto",
        on_change: Callable[[OriginHealth], None] | None = None,
    ) -> None:
        self._clock = clock
        self._threshold = failure_threshold
        self._window_s = window_s
        self._open_for_s = open_for_s
        self._slow_s = slow_s
        self._probe_lease_s = probe_lease_s
        self._failures: deque[float] = deque()
        self._opened_at: float | None = None
        self._probe_until = float("-inf")
        self._on_change = on_change
        self._changed = asyncio.Event()
        self._forced = "auto"
        self.forced = forced

    # -- state ---------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self._open_for_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def forced(self) -> str:
        return self._forced

    @forced.setter
    def forced(self, mode: str) -> None:
        if mode not in FORCED_MODES:
            raise ValueError(f"outage mode is one of {FORCED_MODES}, not {mode!r}")
        if mode != self._forced:
            log.warning("origin outage mode forced %s (was %s)", mode, self._forced)
            self._forced = mode
            self._notify()

    @property
    def outage(self) -> bool:
        """In outage mode: refreshes that can be minted at the edge are not sent on."""
        return not self.available

    @property
    def available(self) -> bool:
        """May a refresh be sent to the origin now?"""
        if self._forced != "auto":
            return self._forced == "off"
        state = self.state
        if state is BreakerState.HALF_OPEN:
            return self._clock() >= self._probe_until
        return state is BreakerState.CLOSED

    def as_json(self) -> dict[str, object]:
        return {
            "mode": self._forced,
            "breaker": str(self.state),
            "outage": self.outage,
            "recent_failures": len(self._failures),
        }

    # -- reports -------------------------------------------------------------

    def attempt(self) -> float | None:
        """A request is about to be sent to the origin: in half-open it takes the probe
        lease. Returns when it was sent (hand it back with its outcome, as `sent_at`),
        or None when it may not go: half-open, and another request holds the lease
        (refreshes that all saw the origin available before any was sent are not all
        let through to an origin that is recovering)."""
        now = self._clock()
        if (
            self._forced == "auto"
            and self._opened_at is not None
            and self.state is BreakerState.HALF_OPEN
        ):
            if now < self._probe_until:
                return None
            self._probe_until = now + self._probe_lease_s
        return now

    def _late(self, sent_at: float) -> bool:
        """Sent before (or as) the breaker last opened: its outcome says nothing of now."""
        return self._opened_at is not None and sent_at <= self._opened_at

    def record_answer(self, status: int, elapsed_s: float, *, sent_at: float) -> str | None:
        """Classify an answer the origin gave; the failure kind, or None for a success."""
        if 500 <= status <= 599:
            kind = f"status_{status}"
        elif elapsed_s > self._slow_s:
            kind = "slow"
        else:
            self.record_success(sent_at=sent_at)
            return None
        self.record_failure(kind, sent_at=sent_at)
        return kind

    def record_success(self, *, sent_at: float) -> None:
        if self._late(sent_at):
            return  # the probe, sent after it opened, decides
        self._failures.clear()
        self._probe_until = float("-inf")
        if self._opened_at is not None:
            self._opened_at = None
            log.warning("origin breaker closed: the origin answers again")
            self._notify()

    def record_failure(self, kind: str, *, sent_at: float) -> None:
        if self._late(sent_at):
            return  # a timeout of a request sent before it opened is not the probe's
        now = self._clock()
        self._probe_until = float("-inf")
        state = self.state
        if state is BreakerState.OPEN:
            return  # already open: late answers of requests sent before it opened
        if state is BreakerState.HALF_OPEN:
            self._opened_at = now
            log.warning("origin breaker open again: the probe failed (%s)", kind)
            self._notify()
            return
        self._failures.append(now)
        while self._failures and now - self._failures[0] > self._window_s:
            self._failures.popleft()
        if len(self._failures) >= self._threshold:
            self._opened_at = now
            log.warning(
                "origin breaker opened: %d failures within %gs (last: %s)",
                len(self._failures),
                self._window_s,
                kind,
            )
            self._failures.clear()
            self._notify()

    # -- waiting ---------------------------------------------------------------

    def _notify(self) -> None:
        if self._on_change is not None:
            self._on_change(self)
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self) -> None:
        """Return at the next change of state (open, close, forced mode)."""
        await self._changed.wait()

    async def wait_for(self, state: BreakerState) -> None:
        """Return once the breaker is in `state` (for probes and tests)."""
        while self.state is not state:
            await self.changed()
