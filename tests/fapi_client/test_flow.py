"""The SDK-like client's behaviour, driven with scripted answers (no I/O)."""

from __future__ import annotations

import base64
import dataclasses
import email.utils
import json
from collections.abc import Iterable
from typing import Any

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
)


def fake_jwt(*, iat: int, oiat: int | None = None, org: str = "", sid: str = "sess_1") -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    header: dict[str, Any] = {"alg": "RS256", "kid": "k"}
    if oiat is not None:
        header["oiat"] = oiat
    claims: dict[str, Any] = {"iat": iat, "exp": iat + 60, "sid": sid}
    if org:
        claims["o"] = {"id": org}
    return f"{part(header)}.{part(claims)}.c2ln"


def drive(flow: Any, answers: Iterable[HttpAnswer]) -> tuple[RefreshOutcome, list[Any]]:
    """Run a flow against scripted answers; return its result and what it yielded."""
    seen: list[Any] = []
    replies = iter(answers)
    step = next(flow)
    while True:
        seen.append(step)
        reply = None if isinstance(step, Wait) else next(replies)
        try:
            step = flow.send(reply)
        except StopIteration as done:
            return done.value, seen


def token_answer(jwt: str) -> HttpAnswer:
    return HttpAnswer(200, {"object": "token", "jwt": jwt})


def test_refresh_posts_last_token_and_organization() -> None:
    box = TokenBox()
    old = fake_jwt(iat=100, oiat=100)
    box.offer(old)
    new = fake_jwt(iat=150, oiat=100)
    outcome, seen = drive(refresh_flow(box, "sess_1"), [token_answer(new)])
    request = seen[0]
    assert isinstance(request, HttpRequest)
    assert request.path == "/v1/client/sessions/sess_1/tokens"
    assert request.form == {"organization_id": "", "token": old}
    assert outcome.jwt == new
    assert outcome.accepted


def test_skip_cache_sends_force_origin_and_debug_query() -> None:
    box = TokenBox()
    box.offer(fake_jwt(iat=100, oiat=100))
    _, seen = drive(
        refresh_flow(box, "sess_1", skip_cache=True), [token_answer(fake_jwt(iat=200, oiat=200))]
    )
    assert seen[0].form["force_origin"] == "true"
    assert seen[0].query == {"debug": "skip_cache"}


def test_network_errors_keep_the_token_and_back_off() -> None:
    box = TokenBox()
    held = fake_jwt(iat=100, oiat=100)
    box.offer(held)
    answers = [HttpAnswer(0), HttpAnswer(503), HttpAnswer(200, {"jwt": ""}), token_answer(held)]
    outcome, seen = drive(refresh_flow(box, "sess_1"), answers)
    waits = [step.seconds for step in seen if isinstance(step, Wait)]
    assert waits == [3.0, 3.0 * 1.55, 3.0 * 1.55**2]
    assert outcome.failures == 3
    assert outcome.jwt == held


def test_gives_up_after_eight_retries_but_keeps_its_token() -> None:
    box = TokenBox()
    held = fake_jwt(iat=100, oiat=100)
    box.offer(held)
    outcome, seen = drive(refresh_flow(box, "sess_1"), [HttpAnswer(503)] * 9)
    assert sum(isinstance(step, Wait) for step in seen) == Backoff().max_retries
    assert outcome.attempts == 9
    assert outcome.jwt == held


def test_429_waits_for_retry_after() -> None:
    box = TokenBox()
    box.offer(fake_jwt(iat=100, oiat=100))
    answers = [HttpAnswer(429, retry_after_s=7.0), token_answer(fake_jwt(iat=110, oiat=100))]
    _, seen = drive(refresh_flow(box, "sess_1"), answers)
    assert [step.seconds for step in seen if isinstance(step, Wait)] == [7.0]


def test_missing_expired_token_is_retried_once_with_expired_token() -> None:
    box = TokenBox()
    held = fake_jwt(iat=100, oiat=100)
    box.offer(held)
    refused = HttpAnswer(422, {"errors": [{"code": "missing_expired_token"}]})
    outcome, seen = drive(
        refresh_flow(box, "sess_1", skip_cache=True),
        [refused, token_answer(fake_jwt(iat=120, oiat=100))],
    )
    retry = seen[1]
    assert retry.query == {"expired_token": held}
    assert outcome.used_expired_token
    assert outcome.accepted


def test_other_4xx_is_not_retried() -> None:
    box = TokenBox()
    outcome, seen = drive(refresh_flow(box, "sess_1"), [HttpAnswer(401)])
    assert len(seen) == 1
    assert outcome.jwt is None
    assert outcome.final_status == 401


def test_freshness_higher_oiat_wins_then_iat_and_no_oiat_loses() -> None:
    box = TokenBox()
    assert box.offer(fake_jwt(iat=100))
    assert box.offer(fake_jwt(iat=90, oiat=90)), "a token with oiat beats one without"
    assert not box.offer(fake_jwt(iat=200)), "one without oiat never wins back"
    assert box.offer(fake_jwt(iat=95, oiat=90)), "same oiat, higher iat"
    assert box.offer(fake_jwt(iat=95, oiat=90)), "a full tie: the newer answer wins"
    assert not box.offer(fake_jwt(iat=94, oiat=90)), "same oiat, lower iat"
    assert not box.offer(fake_jwt(iat=500, oiat=80)), "lower oiat loses whatever its iat"
    assert box.rejected_staler == 3
    assert box.get("") is not None
    assert box.get("").iat == 95  # type: ignore[union-attr]


def test_empty_and_garbage_tokens_are_never_kept() -> None:
    box = TokenBox()
    assert not box.offer("")
    assert not box.offer("not.a.jwt")
    assert box.get("") is None
    assert facts_of("") is None


def test_tokens_are_kept_per_organization() -> None:
    box = TokenBox()
    box.offer(fake_jwt(iat=100, oiat=100, org="org_acme"))
    box.offer(fake_jwt(iat=101, oiat=101))
    assert box.get("org_acme") is not None
    assert box.get("org_acme").organization_id == "org_acme"  # type: ignore[union-attr]
    assert box.last_active is not None
    assert box.last_active.iat == 101


def test_each_retry_posts_what_the_tabs_hold_then() -> None:
    """A sibling tab refreshed while this one waited: the retry posts its token."""
    box = TokenBox()
    old, newer = fake_jwt(iat=100, oiat=100), fake_jwt(iat=140, oiat=140)
    box.offer(old)
    flow = refresh_flow(box, "sess_1")
    first = next(flow)
    assert first.form["token"] == old
    assert isinstance(flow.send(HttpAnswer(503)), Wait)
    box.offer(newer)  # the sibling tab's answer, shared over the BroadcastChannel
    retry = flow.send(None)
    assert retry.form["token"] == newer


def test_empty_and_undecodable_tokens_are_counted_and_retried() -> None:
    box = TokenBox()
    good = fake_jwt(iat=100, oiat=100)
    answers = [HttpAnswer(200, {"jwt": ""}), token_answer("garbage.x.y"), token_answer(good)]
    outcome, seen = drive(refresh_flow(box, "sess_1"), answers)
    assert (outcome.empty_tokens, outcome.undecodable_tokens, outcome.failures) == (1, 1, 2)
    assert sum(isinstance(step, Wait) for step in seen) == 2
    assert (outcome.answered, outcome.jwt) == (True, good)


def test_a_refresh_that_gives_up_counts_every_failure_and_did_not_answer() -> None:
    box = TokenBox()
    box.offer(fake_jwt(iat=100, oiat=100))
    outcome, _ = drive(refresh_flow(box, "sess_1"), [HttpAnswer(200, {"jwt": ""})] * 9)
    assert (outcome.attempts, outcome.failures, outcome.empty_tokens) == (9, 9, 9)
    assert not outcome.answered


def test_a_long_retry_after_is_waited_at_most_the_bound() -> None:
    box = TokenBox()
    box.offer(fake_jwt(iat=100, oiat=100))
    answers = [HttpAnswer(429, retry_after_s=86400.0), token_answer(fake_jwt(iat=110, oiat=100))]
    _, seen = drive(refresh_flow(box, "sess_1"), answers)
    assert [step.seconds for step in seen if isinstance(step, Wait)] == [60.0]


NOW_UNIX = 1_750_000_000.0


def test_retry_after_reads_seconds_and_http_dates_and_nothing_else() -> None:
    assert retry_after_s("7", now=NOW_UNIX) == 7.0
    assert retry_after_s(" 0 ", now=NOW_UNIX) == 0.0
    date = email.utils.formatdate(NOW_UNIX + 5, usegmt=True)
    assert retry_after_s(date, now=NOW_UNIX) == 5.0
    past = email.utils.formatdate(NOW_UNIX - 50, usegmt=True)
    assert retry_after_s(past, now=NOW_UNIX) == 0.0
    assert retry_after_s("86400", now=NOW_UNIX) == 86400.0, "the flow bounds the wait"
    for junk in (None, "", "-30", "2.5", "nan", "inf", "1e9", "\u00b2", "9" * 320, "soon"):
        assert retry_after_s(junk, now=NOW_UNIX) is None, junk


def test_the_sdk_refreshes_17_s_before_the_token_expires() -> None:
    sixty = facts_of(fake_jwt(iat=100, oiat=100))
    assert sixty is not None
    assert refresh_delay_s(sixty) == 43.0
    short = dataclasses.replace(sixty, exp=sixty.iat + 30)
    assert refresh_delay_s(short) == 13.0
    assert refresh_delay_s(dataclasses.replace(sixty, exp=sixty.iat + 5)) == 0.0
