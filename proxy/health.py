"""Origin health: a circuit breaker over origin failures.

Closed: refreshes may go to the origin. After `failure_threshold` failures
in a row (connect errors, timeouts, 502/503/504) it opens: the origin is
treated as down (outage mode) for `open_for_s`; then it is half-open and
lets the next request through as a probe, whose outcome closes it or opens
it again. Outage mode can also be forced on or off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum

__all__ = ["BreakerState", "OriginHealth"]

log = logging.getLogger(__name__)


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
        open_for_s: float = 5.0,
        forced_outage: bool | None = None,
    ) -> None:
        self._clock = clock
        self._threshold = failure_threshold
        self._open_for_s = open_for_s
        self._failures = 0
        self._opened_at: float | None = None
        self.forced_outage = forced_outage

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self._open_for_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def available(self) -> bool:
        """May a refresh be sent to the origin now?"""
        if self.forced_outage is not None:
            return not self.forced_outage
        return self.state is not BreakerState.OPEN

    def record_success(self) -> None:
        if self._opened_at is not None:
            log.warning("origin breaker closed: the origin answers again")
        self._failures = 0
        self._opened_at = None

    def record_failure(self, kind: str) -> None:
        self._failures += 1
        state = self.state
        if state is BreakerState.HALF_OPEN or (
            state is BreakerState.CLOSED and self._failures >= self._threshold
        ):
            if state is BreakerState.CLOSED:
                log.warning("origin breaker opened after %d failures (%s)", self._failures, kind)
            self._opened_at = self._clock()
