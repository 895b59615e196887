"""Load test that behaves like real browser SDKs, against `session-minter demo` (or any edge).

    locust --headless -u 50 -r 10 -t 60s -H http://127.0.0.1:8080 --time-scale 0.05

Each simulated user signs in, holds one session open in 1 to 3 tabs that
share their tokens (as tabs do over a BroadcastChannel), refreshes on the
SDK's schedule (17 s before the held token expires: 43 s after `iat` for a
60 s token, times --time-scale),
sometimes skips the cache, sometimes switches organization, and signs out
at the end. The wire behaviour (retries, backoff, `expired_token`, keeping
the freshest token) is `fapi_client.flow`, shared with the tests.

Custom figures, printed at the end and in the stats table as TOKEN rows:
refreshes minted at the edge (the answer's `oiat` is older than its `iat`)
vs by the origin (`oiat == iat`), answers rejected as staler, failed
refreshes (no usable token after every retry), and empty or undecodable
tokens in 200 answers (must stay 0). A clone the edge makes in the
same second as the origin token it copies has `oiat == iat` too, and is
counted as the origin's here; so the report adds the edge's own count of its
decisions, read from its `/metrics` when the edge serves them there.
"""

from __future__ import annotations

import random
import re
import time
import urllib.request
from collections import Counter
from typing import Any

from locust import HttpUser, events, task
from locust.env import Environment

from fapi_client import (
    Backoff,
    HttpAnswer,
    HttpRequest,
    RefreshOutcome,
    TokenBox,
    Wait,
    facts_of,
    refresh_delay_s,
    refresh_flow,
    retry_after_s,
    sign_in_flow,
    sign_out_flow,
)

USERS = (
    ("alice@example.com", "correct-horse", "org_acme"),
    ("bob@example.com", "battery-staple", ""),
)
SKIP_CACHE_SHARE = 0.01
SWITCH_ORG_SHARE = 0.01
FIGURES: Counter[str] = Counter()


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiply SDK waits")
    parser.add_argument("--refreshes", type=int, default=10, help="refresh cycles per session")


def _fire(environment: Environment, name: str, count: int = 1) -> None:
    FIGURES[name] += count
    for _ in range(count):
        environment.events.request.fire(
            request_type="TOKEN",
            name=name,
            response_time=0,
            response_length=0,
            exception=None,
            context={},
        )


class Browser(HttpUser):
    """One browser: one client cookie, one session, 1 to 3 tabs."""

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.time_scale = options.time_scale if options else 1.0
        self.cycles = options.refreshes if options else 10
        self.backoff = Backoff()
        self.staler_reported = 0
        self.client.headers["Origin"] = "http://localhost:3000"

    def _run(self, flow: Any) -> Any:
        step = next(flow)
        while True:
            reply: HttpAnswer | None = None
            if isinstance(step, Wait):
                time.sleep(step.seconds * self.time_scale)
            else:
                reply = self._perform(step)
            try:
                step = flow.send(reply)
            except StopIteration as done:
                return done.value

    def _perform(self, request: HttpRequest) -> HttpAnswer:
        with self.client.request(
            request.method,
            request.path,
            data=request.form,
            params=request.query or None,
            name=request.name or request.path,
            catch_response=True,
        ) as response:
            if response.status_code in (200, 422) or 200 <= response.status_code < 300:
                response.success()
            try:
                body = response.json()
            except ValueError:
                body = None
            return HttpAnswer(
                response.status_code or 0,
                body,
                retry_after_s(response.headers.get("Retry-After"), now=time.time()),
            )

    def _refresh(self, box: TokenBox, sid: str, org: str, *, skip_cache: bool) -> RefreshOutcome:
        outcome: RefreshOutcome = self._run(
            refresh_flow(box, sid, organization_id=org, skip_cache=skip_cache, backoff=self.backoff)
        )
        if outcome.empty_tokens:
            _fire(self.environment, "empty token", outcome.empty_tokens)
        if outcome.undecodable_tokens:
            _fire(self.environment, "undecodable token", outcome.undecodable_tokens)
        if box.rejected_staler > self.staler_reported:
            _fire(
                self.environment, "rejected as staler", box.rejected_staler - self.staler_reported
            )
            self.staler_reported = box.rejected_staler
        if not outcome.answered or outcome.jwt is None:
            _fire(self.environment, "refresh failed")
            return outcome
        facts = facts_of(outcome.jwt)
        if facts is not None and outcome.accepted:
            source = (
                "minted at edge"
                if facts.oiat is not None and facts.oiat < facts.iat
                else "minted by origin"
            )
            _fire(self.environment, source)
        return outcome

    @task
    def session_lifetime(self) -> None:
        identifier, password, home_org = random.choice(USERS)
        signed_in = self._run(sign_in_flow(identifier, password))
        if signed_in is None:
            _fire(self.environment, "sign-in failed")
            return
        sid, first_token = signed_in
        box = TokenBox()
        self.staler_reported = 0
        if first_token:
            box.offer(first_token)
        org = ""
        tabs = random.randint(1, 3)
        held_since = time.monotonic()
        for _ in range(self.cycles):
            # The SDK's timer: 17 s before the held token expires, on the scaled clock,
            # counted from when it arrived (the last cycle's own time included).
            held = box.get(org) or box.last_active
            due = (refresh_delay_s(held) if held is not None else 0.0) * self.time_scale
            time.sleep(max(0.0, due - (time.monotonic() - held_since)))
            if home_org and random.random() < SWITCH_ORG_SHARE:
                org = home_org if org == "" else ""
            for _tab in range(tabs):
                skip = random.random() < SKIP_CACHE_SHARE
                self._refresh(box, sid, org, skip_cache=skip)
            held_since = time.monotonic()
        self._run(sign_out_flow(sid))


@events.quitting.add_listener
def _report(environment: Environment, **_: Any) -> None:
    edge, origin = FIGURES["minted at edge"], FIGURES["minted by origin"]
    total = edge + origin
    share = edge / total if total else 0.0
    print("\nsession-minter figures")
    print(f"  refreshes answered:      {total}")
    print(f"  minted at the edge:      {edge} ({share:.1%})")
    print(f"  minted by the origin:    {origin}")
    print(f"  rejected as staler:      {FIGURES['rejected as staler']}")
    print(f"  failed refreshes:        {FIGURES['refresh failed']}")
    print(f"  empty tokens:            {FIGURES['empty token']}")
    print(f"  undecodable tokens:      {FIGURES['undecodable token']}")
    decisions = _edge_decisions(environment.host)
    if decisions:
        minted = sum(n for (outcome, _), n in decisions.items() if outcome == "minted")
        sent = sum(n for (outcome, _), n in decisions.items() if outcome == "origin")
        edge_share = minted / (minted + sent) if minted + sent else 0.0
        print(f"  the edge's own count:    {minted:.0f} minted at the edge ({edge_share:.1%}),")
        print(f"                           {sent:.0f} sent to the origin")


def _edge_decisions(host: str | None) -> dict[tuple[str, str], float]:
    """`session_minter_refresh_decisions_total` by (outcome, reason), or {} if not served."""
    if not host:
        return {}
    try:
        with urllib.request.urlopen(f"{host}/metrics", timeout=5) as answer:  # noqa: S310
            text = answer.read().decode()
    except (OSError, ValueError):
        return {}
    return {(outcome, reason): float(value) for outcome, reason, value in _DECISION.findall(text)}


# One sample of the edge's text exposition. Parsed here rather than with
# prometheus_client, which the locust image (docker-compose.yml) does not hold.
_DECISION = re.compile(
    r'^session_minter_refresh_decisions_total\{outcome="([^"]*)",reason="([^"]*)"\} (\S+)$',
    re.MULTILINE,
)
