"""What the browser SDK does on the wire, as generators with no I/O.

Each flow yields `HttpRequest`s (and `Wait`s between retries) and receives
`HttpAnswer`s; a transport (`fapi_client.aio` for asyncio, the locustfile for
gevent) performs them. So the tests and the load test share one behaviour:

- a refresh posts the last active token as `token` with `organization_id`,
  plus `force_origin=true` (and `?debug=skip_cache`) when skipping the cache;
- a network error, a 5xx, or a 200 without a token or with one that does
  not decode keeps the held token and retries after 3 s, x1.55 each time,
  at most 8 retries; a 429 waits for its `Retry-After` (seconds or an
  HTTP-date, at most `Backoff.max_retry_after_s`; one that does not parse
  is ignored);
- every attempt posts the freshest token the session's tabs hold then (a
  sibling tab may have refreshed during the wait), as clerk-js re-reads its
  token cache on each retry;
- a 422 `missing_expired_token` is retried once with `expired_token` set to
  the last active token;
- answers are kept only when fresher (`TokenBox.offer`): never an empty one.

`refresh_delay_s` is when the SDK refreshes next: 17 s before the held
token expires (43 s after `iat` for a 60 s token).
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from .freshness import TokenBox, TokenFacts, facts_of

__all__ = [
    "DEFAULT_BACKOFF",
    "Backoff",
    "HttpAnswer",
    "HttpRequest",
    "RefreshOutcome",
    "Wait",
    "refresh_delay_s",
    "refresh_flow",
    "retry_after_s",
    "sign_in_flow",
    "sign_out_flow",
]


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str
    form: dict[str, str] | None = None
    query: dict[str, str] = field(default_factory=dict)
    name: str = ""  # a label for statistics (e.g. "refresh")


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int  # 0: network error
    body: Any = None
    retry_after_s: float | None = None

    @property
    def error_code(self) -> str | None:
        if isinstance(self.body, dict):
            errors = self.body.get("errors")
            if isinstance(errors, list) and errors and isinstance(errors[0], dict):
                code = errors[0].get("code")
                return code if isinstance(code, str) else None
        return None


@dataclass(frozen=True, slots=True)
class Wait:
    seconds: float


@dataclass(frozen=True, slots=True)
class Backoff:
    initial_s: float = 3.0
    factor: float = 1.55
    max_delay_s: float = 50.0
    max_retries: int = 8
    max_retry_after_s: float = 60.0  # a longer Retry-After is waited this long

    def delay(self, retry: int) -> float:
        return min(self.initial_s * self.factor**retry, self.max_delay_s)


DEFAULT_BACKOFF = Backoff()
REFRESH_LEAD_S = 17  # clerk-js refreshes 15 s + 2 s of leeway before `exp`


def refresh_delay_s(token: TokenFacts) -> float:
    """Seconds after the token was issued at which the SDK refreshes it."""
    return max(0.0, float(token.exp - token.iat - REFRESH_LEAD_S))


def retry_after_s(value: str | None, *, now: float) -> float | None:
    """RFC 9110 `Retry-After`: delay-seconds or an HTTP-date (`now` is Unix time);
    None when absent or not either. Never negative."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = float(value)  # a run of 310 nines is inf: as good as absent
        return seconds if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    seconds = when.timestamp() - now
    return max(0.0, seconds) if math.isfinite(seconds) else None


@dataclass(slots=True)
class RefreshOutcome:
    jwt: str | None = None  # the freshest token held after the refresh
    accepted: bool = False  # the answer was fresher and kept
    attempts: int = 0
    failures: int = 0  # network errors, 5xx, 429, empty or undecodable tokens
    answered: bool = False  # a 200 with a token that decodes came back
    empty_tokens: int = 0  # 200 answers without a token (clients read them as signed out)
    undecodable_tokens: int = 0  # 200 answers whose token does not decode
    used_expired_token: bool = False
    final_status: int = 0


Flow = Generator[HttpRequest | Wait, HttpAnswer | None, Any]


def sign_in_flow(identifier: str, password: str) -> Flow:
    """Password sign-in; returns (session id, the session's last active token) or None."""
    answer = yield HttpRequest(
        "POST",
        "/v1/client/sign_ins",
        {"identifier": identifier, "password": password, "strategy": "password"},
        name="sign_in",
    )
    if answer is None or answer.status != 200 or not isinstance(answer.body, dict):
        return None
    response = answer.body.get("response") or {}
    sid = response.get("created_session_id")
    if not isinstance(sid, str):
        return None
    client = answer.body.get("client") or {}
    for session in client.get("sessions") or ():
        if isinstance(session, dict) and session.get("id") == sid:
            token = (session.get("last_active_token") or {}).get("jwt")
            return sid, token if isinstance(token, str) and token else None
    return sid, None


def sign_out_flow(session_id: str) -> Flow:
    answer = yield HttpRequest("POST", f"/v1/client/sessions/{session_id}/end", {}, name="sign_out")
    return answer is not None and 200 <= answer.status < 300


def refresh_flow(
    box: TokenBox,
    session_id: str,
    *,
    organization_id: str = "",
    skip_cache: bool = False,
    backoff: Backoff = DEFAULT_BACKOFF,
) -> Flow:
    """One `getToken()` that goes to the network; returns a RefreshOutcome."""
    outcome = RefreshOutcome()
    query: dict[str, str] = {}
    if skip_cache:
        query["debug"] = "skip_cache"
    retries = 0
    while True:
        outcome.attempts += 1
        form = {"organization_id": organization_id}
        last_active = box.get(organization_id) or box.last_active  # read again each try
        if last_active is not None:
            form["token"] = last_active.jwt
        if skip_cache:
            form["force_origin"] = "true"
        answer = yield HttpRequest(
            "POST",
            f"/v1/client/sessions/{session_id}/tokens",
            form,
            dict(query),
            name="refresh (skip cache)" if skip_cache else "refresh",
        )
        assert answer is not None
        outcome.final_status = answer.status
        jwt = answer.body.get("jwt") if isinstance(answer.body, dict) else None
        if answer.status == 200 and isinstance(jwt, str) and jwt:
            if facts_of(jwt) is not None:
                outcome.answered = True
                outcome.accepted = box.offer(jwt)
                held = box.get(organization_id)
                outcome.jwt = held.jwt if held is not None else None
                return outcome
            outcome.undecodable_tokens += 1
        elif answer.status == 200:
            outcome.empty_tokens += 1
        if (
            answer.status == 422
            and answer.error_code == "missing_expired_token"
            and not outcome.used_expired_token
            and box.last_active is not None
        ):
            outcome.used_expired_token = True
            query.pop("debug", None)
            query["expired_token"] = box.last_active.jwt
            continue
        retryable = answer.status in (0, 200, 429) or answer.status >= 500
        if retryable:
            outcome.failures += 1
        if not retryable or retries >= backoff.max_retries:
            held = box.get(organization_id)
            outcome.jwt = held.jwt if held is not None else None
            return outcome
        delay = backoff.delay(retries)
        if answer.status == 429 and answer.retry_after_s is not None:
            delay = min(answer.retry_after_s, backoff.max_retry_after_s)
        retries += 1
        yield Wait(delay)
