"""A Frontend API client that behaves like the browser SDK on the wire.

`flow` holds the behaviour as I/O-free generators; `aio` runs them with
aiohttp (tests, scripts); the locustfile runs them with gevent.
"""

from .flow import (
    Backoff,
    HttpAnswer,
    HttpRequest,
    RefreshOutcome,
    Wait,
    refresh_delay_s,
    refresh_flow,
    retry_after_s,
    sign_in_flow,
    sign_out_flow,
)
from .freshness import TokenBox, TokenFacts, facts_of

__all__ = [
    "Backoff",
    "HttpAnswer",
    "HttpRequest",
    "RefreshOutcome",
    "TokenBox",
    "TokenFacts",
    "Wait",
    "facts_of",
    "refresh_delay_s",
    "refresh_flow",
    "retry_after_s",
    "sign_in_flow",
    "sign_out_flow",
]
