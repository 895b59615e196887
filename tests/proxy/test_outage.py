"""Origin outages: the edge keeps users signed in, within a bound, and never signs anyone out.

The reference origin really fails here: stopped (port closed), answering
503, hanging past the edge's timeout, or answering slowly. Time moves with
the shared FakeClock; the only real waiting is the edge's own (short)
origin timeout in the hang case and the origin's added latency in the slow
case.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from multidict import CIMultiDict

from origin.faults import FAULTS
from origin.stats import STATS
from proxy import create_app
from proxy.config import AdminSettings, LimitSettings
from proxy.cookieguard import clears_session_cookie, without_sign_out_cookies
from proxy.health import BreakerState, OriginHealth
from proxy.keygen import write_key
from proxy.services import SERVICES
from tests.proxy.raw_origin import GUARD_S, exchange, parse_answer, slow_sign_ins
from tests.proxy.served import until
from tests.stack import (
    ALICE,
    Answer,
    Browser,
    FakeClock,
    Stack,
    decode,
    listening_socket,
    running_stack,
    url_of,
    with_tokens,
)

MAX_AGE = 60
OUTAGE_AGE = 600
STEP = 50  # seconds between refreshes in a long outage
ADMIN_SECRET = "admin-secret-for-tests"
TOKENS = with_tokens(max_claims_age_s=MAX_AGE, outage_max_claims_age_s=OUTAGE_AGE)
BREAKER = {
    "breaker_failures": 2,
    "breaker_window_s": 120.0,
    "breaker_open_s": 120.0,
    "timeout_s": 0.5,
    "connect_timeout_s": 0.5,
    "slow_answer_s": 5.0,
}
MODES = ("stopped", "error503", "hang")


def sent(health: OriginHealth) -> float:
    """A request sent now, as `attempt()` lets it go (it must)."""
    sent_at = health.attempt()
    assert sent_at is not None
    return sent_at


def health_of(stack: Stack) -> OriginHealth:
    return stack.edge_app[SERVICES].health


def checked(answer: Answer) -> Answer:
    """What no answer of the token route may ever be, outage or not."""
    assert answer.status not in (401, 403), answer.body
    if answer.status == 200:
        assert answer.jwt  # Browser checks it too: never an empty token
    for cookie in answer.headers.getall("Set-Cookie", ()):
        assert not clears_session_cookie(cookie, now=0), cookie
    return answer


async def fail_origin(stack: Stack, mode: str) -> None:
    if mode == "stopped":
        await stack.stop_origin()
    else:
        await stack.origin_faults(mode)


async def heal_origin(stack: Stack, mode: str) -> None:
    if mode == "stopped":
        await stack.start_origin()
    else:
        await stack.origin_faults("ok")


@pytest.fixture
async def outage_stack(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path, clock, tokens=TOKENS, origin=BREAKER) as stack:
        yield stack


@pytest.mark.parametrize("mode", MODES)
async def test_outage_keeps_minting_with_original_oiat_until_the_outage_bound(
    outage_stack: Stack, mode: str
) -> None:
    stack, clock = outage_stack, outage_stack.clock
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        first = checked(await browser.refresh(sid)).jwt
        oiat = decode(first)[0]["oiat"]
        await fail_origin(stack, mode)

        # Past max_claims_age: sent to the origin, which fails; stale-if-error mints.
        clock.advance(MAX_AGE + 10)
        token = checked(await browser.refresh(sid, token=first)).jwt
        assert decode(token)[0]["oiat"] == oiat
        assert health_of(stack).state is BreakerState.CLOSED, "one failure is not an outage"
        clock.advance(10)
        token = checked(await browser.refresh(sid, token=token)).jwt
        assert health_of(stack).state is BreakerState.OPEN, "the second failure opens it"

        # Open: what needs the origin is refused, never answered with a token.
        forced = checked(await browser.refresh(sid, token=token, force_origin=True))
        assert (forced.status, forced.error_code) == (503, "origin_unavailable")
        assert forced.headers["Retry-After"]
        template = checked(await browser.refresh(sid, template="integration_demo"))
        assert (template.status, template.error_code) == (503, "origin_unavailable")
        assert template.headers["Retry-After"]
        # No token: 422, and the legacy retry (query or body) is minted.
        bare = checked(await browser.refresh(sid))
        assert (bare.status, bare.error_code) == (422, "missing_expired_token")
        in_query = checked(await browser.refresh(sid, query=f"expired_token={token}")).jwt
        in_body = checked(await browser.refresh(sid, extra={"expired_token": token})).jwt
        assert decode(in_query)[0]["oiat"] == decode(in_body)[0]["oiat"] == oiat

        # A long outage: minted with the original oiat until the outage bound, then 503.
        minted = 0
        while True:
            clock.advance(STEP)
            answer = checked(await browser.refresh(sid, token=token))
            if answer.status != 200:
                break
            header, claims = decode(answer.jwt)
            assert header["oiat"] == oiat
            assert claims["exp"] <= oiat + OUTAGE_AGE
            assert clock.now - oiat <= OUTAGE_AGE
            token, minted = answer.jwt, minted + 1
        assert (answer.status, answer.error_code) == (503, "origin_unavailable")
        assert answer.headers["Retry-After"]
        assert clock.now - oiat > OUTAGE_AGE - 10, "refused only at the outage bound"
        assert minted >= (OUTAGE_AGE - 2 * MAX_AGE) // STEP

        # The origin is back: after breaker_open_s the next refresh is the probe that
        # closes the breaker, and claims past max_claims_age come from the origin again.
        await heal_origin(stack, mode)
        clock.advance(BREAKER["breaker_open_s"])
        fresh = checked(await browser.refresh(sid, token=token)).jwt
        assert health_of(stack).state is BreakerState.CLOSED
        assert decode(fresh)[0]["oiat"] == int(clock.now) > oiat
        clock.advance(MAX_AGE + 5)
        again = checked(await browser.refresh(sid, token=fresh)).jwt
        assert decode(again)[0]["oiat"] == int(clock.now)

    decisions = stack.decisions()
    assert decisions[("minted", "outage")] == 4 + minted
    assert decisions[("refused", "force_origin")] == 1
    assert decisions[("refused", "template")] == 1
    assert decisions[("refused", "no_token")] == 1
    assert decisions[("origin", "too_old")] == 2
    stats = await stack.origin_stats()
    if mode != "stopped":  # a restarted origin counts from zero
        assert stats["tokens"] >= 3


async def test_a_slow_origin_trips_the_breaker_and_the_probe_closes_it(
    tmp_path: Path, clock: FakeClock
) -> None:
    origin = {**BREAKER, "slow_answer_s": 0.05, "breaker_open_s": 200.0}
    async with (
        running_stack(tmp_path, clock, tokens=TOKENS, origin=origin) as stack,
        Browser(stack.fapi) as browser,
    ):
        sid = await browser.sign_in()
        token = checked(await browser.refresh(sid)).jwt
        await stack.origin_faults("slow", 150)
        for _ in range(2):  # slow answers are still used, but count against the origin
            clock.advance(MAX_AGE + 5)
            answer = checked(await browser.refresh(sid, token=token))
            assert decode(answer.jwt)[0]["oiat"] == int(clock.now), "the origin's own token"
            token = answer.jwt
        assert health_of(stack).state is BreakerState.OPEN
        origin_mints = (await stack.origin_stats())["tokens"]

        clock.advance(MAX_AGE + 5)  # too old for normal times; the breaker is open
        outage = checked(await browser.refresh(sid, token=token)).jwt
        assert decode(outage)[0]["oiat"] == decode(token)[0]["oiat"]
        assert (await stack.origin_stats())["tokens"] == origin_mints, "not sent on"

        # Fast again: no user traffic; the background probe (GET of the JWKS) closes it.
        await stack.origin_faults("ok")
        clock.advance(origin["breaker_open_s"])
        await asyncio.wait_for(health_of(stack).wait_for(BreakerState.CLOSED), 10)
        assert (await stack.origin_stats())["tokens"] == origin_mints
        back = checked(await browser.refresh(sid, token=outage)).jwt
        assert decode(back)[0]["oiat"] == int(clock.now)
    assert stack.decisions()[("minted", "outage")] == 1


async def test_bodies_held_back_by_clients_neither_starve_refreshes_nor_open_the_breaker(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A client can hold a forwarded request open for free by sending its body slowly:
    as many of them as the forwarding pool has connections must not keep refreshes
    from the origin, nor make their wait count as origin failures (outage mode would
    widen what a stolen token buys). Many clients, here: the per-IP cap is lifted."""
    async with running_stack(
        tmp_path, clock, tokens=TOKENS, origin=BREAKER, limits=LimitSettings(per_ip_forwards=1000)
    ) as stack:
        await _hold_the_forwarding_pool_and_refresh(stack, clock)
    assert health_of(stack).state is BreakerState.CLOSED
    assert stack.decisions()[("origin", "too_old")] == BREAKER["breaker_failures"]


async def _hold_the_forwarding_pool_and_refresh(stack: Stack, clock: FakeClock) -> None:
    held_open = stack.edge_app[SERVICES].origin.session.connector
    assert held_open is not None
    arrivals = stack.origin_app[STATS].counts
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        token = checked(await browser.refresh(sid)).jwt
        expected = arrivals["sign_ins"] + held_open.limit
        async with slow_sign_ins(stack.edge_url, held_open.limit):

            async def all_at_the_origin() -> bool:
                return arrivals["sign_ins"] >= expected

            await until(all_at_the_origin, "the held requests to reach the origin")
            for _ in range(BREAKER["breaker_failures"]):
                clock.advance(MAX_AGE + 5)
                answer = checked(await browser.refresh(sid, token=token))
                assert decode(answer.jwt)[0]["oiat"] == int(clock.now), "the origin's own token"
                token = answer.jwt
            # Another forward waits for a pooled connection no longer than the origin's
            # timeout: a 504, not a request that hangs until a held one ends.
            async with asyncio.timeout(GUARD_S):
                starved = await browser.request("GET", "/v1/environment")
            assert (starved.status, starved.error_code) == (504, "origin_unavailable")


async def test_a_token_that_expired_during_a_long_sleep_is_minted_only_in_an_outage(
    outage_stack: Stack,
) -> None:
    stack, clock = outage_stack, outage_stack.clock
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        token = checked(await browser.refresh(sid)).jwt
        clock.advance(400)  # the laptop slept: its token expired 340 s ago (max_expired_s 300)
        assert checked(await browser.refresh(sid, token=token)).status == 200
        assert stack.decisions()[("origin", "invalid:expired")] == 1, "normal times: the origin"
        await stack.stop_origin()
        clock.advance(100)  # asleep again, and now the origin is down
        outage = checked(await browser.refresh(sid, token=token))
    assert outage.status == 200
    assert stack.decisions()[("minted", "outage")] == 1
    assert decode(outage.jwt)[0]["oiat"] > decode(token)[0]["oiat"], "the freshest stored claims"


async def _refresh_while_the_origin_takes(
    stack: Stack, browser: Browser, sid: str, token: str, seconds: int
) -> Answer:
    """A refresh that the origin holds for `seconds` (on the shared clock), then fails."""
    await stack.origin_faults("hang")
    pending = asyncio.ensure_future(browser.refresh(sid, token=token))
    await stack.origin_app[FAULTS].wait_held(1)
    stack.clock.advance(seconds)
    await stack.origin_faults("error503")
    return checked(await pending)


async def _fallback_after_a_held_refresh(
    tmp_path: Path, clock: FakeClock, *, age_s: int, held_s: int
) -> tuple[Stack, str, Answer]:
    """Sign in and refresh at the origin; `age_s` later, refresh while the origin holds
    the request `held_s` seconds and then fails: (stack, first token, that answer)."""
    origin = {**BREAKER, "timeout_s": GUARD_S}
    async with (
        running_stack(tmp_path, clock, tokens=TOKENS, origin=origin) as stack,
        Browser(stack.fapi) as browser,
    ):
        sid = await browser.sign_in()
        first = checked(await browser.refresh(sid)).jwt
        clock.advance(age_s)
        answer = await _refresh_while_the_origin_takes(stack, browser, sid, first, held_s)
    return stack, first, answer


async def test_a_fallback_mint_is_dated_when_the_origin_failed(
    tmp_path: Path, clock: FakeClock
) -> None:
    # Too old for normal times: sent to the origin.
    stack, first, answer = await _fallback_after_a_held_refresh(
        tmp_path, clock, age_s=MAX_AGE + 10, held_s=8
    )
    header, claims = decode(answer.jwt)
    assert stack.decisions()[("minted", "outage")] == 1
    assert header["oiat"] == decode(first)[0]["oiat"]
    assert claims["iat"] == int(clock.now), "dated when it leaves, not when the request came"
    assert claims["exp"] == int(clock.now) + 60


async def test_a_fallback_never_mints_a_token_that_the_wait_for_the_origin_aged_past_the_bound(
    tmp_path: Path, clock: FakeClock
) -> None:
    # 15 s of the outage bound left when it arrives; the origin holds it 20 s.
    stack, _, answer = await _fallback_after_a_held_refresh(
        tmp_path, clock, age_s=OUTAGE_AGE - 15, held_s=20
    )
    assert (answer.status, answer.error_code) == (503, "origin_unavailable")
    assert ("minted", "outage") not in stack.decisions()


async def test_client_errors_and_rate_limits_from_the_origin_are_not_failures(
    outage_stack: Stack,
) -> None:
    async with Browser(outage_stack.fapi) as browser:
        await browser.sign_in()
        for _ in range(4):
            answer = checked(await browser.refresh("sess_not_mine"))
            assert answer.status == 404
    assert health_of(outage_stack).state is BreakerState.CLOSED
    health = OriginHealth(clock=FakeClock(0), failure_threshold=1)
    assert health.record_answer(429, 0.01, sent_at=sent(health)) is None
    assert health.record_answer(400, 0.01, sent_at=sent(health)) is None
    assert health.state is BreakerState.CLOSED
    assert health.record_answer(504, 0.01, sent_at=sent(health)) == "status_504"
    assert health.state is BreakerState.OPEN
    fresh = OriginHealth(clock=FakeClock(0))
    assert fresh.record_answer(500, 0.01, sent_at=sent(fresh)) == "status_500"


async def test_an_origin_answering_500_is_passed_on_and_opens_the_breaker(
    outage_stack: Stack,
) -> None:
    stack, clock = outage_stack, outage_stack.clock
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        token = checked(await browser.refresh(sid)).jwt
        await stack.origin_faults("error500")
        clock.advance(MAX_AGE + 5)  # too old to mint in normal times: sent to the origin
        for _ in range(BREAKER["breaker_failures"]):
            answer = checked(await browser.refresh(sid, token=token))
            assert (answer.status, answer.error_code) == (500, "internal_clerk_error")
        assert health_of(stack).state is BreakerState.OPEN
        outage = checked(await browser.refresh(sid, token=token)).jwt
        assert decode(outage)[0]["oiat"] == decode(token)[0]["oiat"]
    assert stack.decisions()[("minted", "outage")] == 1


async def test_answers_to_requests_sent_before_it_opened_leave_the_probe_to_decide() -> None:
    clock = FakeClock(1000)
    health = OriginHealth(clock=clock, failure_threshold=2, window_s=10, open_for_s=5)
    early, late = sent(health), sent(health)  # sent while it was closed
    health.record_failure("timeout", sent_at=sent(health))
    health.record_failure("timeout", sent_at=sent(health))
    assert health.state is BreakerState.OPEN
    assert health.record_answer(200, 0.01, sent_at=early) is None
    assert health.state is BreakerState.OPEN, "a late success does not close it"
    clock.advance(5)
    probe = health.attempt()
    assert probe is not None
    health.record_failure("timeout", sent_at=late)  # a timeout landing during the probe
    assert health.state is BreakerState.HALF_OPEN, "it was not the probe that failed"
    assert health.record_answer(200, 0.01, sent_at=probe) is None
    assert health.state is BreakerState.CLOSED
    assert health.record_answer(200, 0.01, sent_at=sent(health)) is None  # closed: counted
    assert health.state is BreakerState.CLOSED


async def test_failures_outside_the_window_do_not_open_the_breaker() -> None:
    clock = FakeClock(1000)
    health = OriginHealth(clock=clock, failure_threshold=3, window_s=10, open_for_s=5)
    for _ in range(5):
        health.record_failure("connect", sent_at=sent(health))
        clock.advance(6)  # never three within ten seconds
    assert health.state is BreakerState.CLOSED
    health.record_failure("connect", sent_at=sent(health))
    clock.advance(1)
    health.record_failure("timeout", sent_at=sent(health))
    assert health.state is BreakerState.OPEN
    assert not health.available
    clock.advance(5)
    assert health.state is BreakerState.HALF_OPEN
    assert health.available
    probe = health.attempt()
    assert probe is not None  # one probe at a time
    assert not health.available
    assert health.attempt() is None, "a second request, which saw it available, is held back"
    health.record_failure("connect", sent_at=probe)
    assert health.state is BreakerState.OPEN
    clock.advance(5)
    probe = health.attempt()
    assert probe is not None
    health.record_success(sent_at=probe)
    assert health.state is BreakerState.CLOSED
    assert health.available


async def test_outage_forced_by_config_mints_without_asking_the_origin(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with (
        running_stack(tmp_path, clock, tokens=TOKENS, origin={**BREAKER, "outage": "on"}) as stack,
        Browser(stack.fapi) as browser,
    ):
        signed_in = await browser.request(
            "POST",
            "/v1/client/sign_ins",
            data={"identifier": ALICE[0], "password": ALICE[1], "strategy": "password"},
        )
        session = signed_in.body["client"]["sessions"][0]
        sid, token = session["id"], session["last_active_token"]["jwt"]
        bare = checked(await browser.refresh(sid))
        assert (bare.status, bare.error_code) == (422, "missing_expired_token")
        clock.advance(MAX_AGE + 5)
        minted = checked(await browser.refresh(sid, query=f"expired_token={token}")).jwt
        assert decode(minted)[0]["oiat"] == decode(token)[0]["oiat"]
        assert (await stack.origin_stats()).get("tokens", 0) == 0, "never asked"
        async with browser.client.get(stack.edge_url + "/metrics") as response:
            assert b"session_minter_origin_breaker_open 1.0" in await response.read()
    assert stack.decisions()[("minted", "outage")] == 1


async def admin(stack: Stack, secret: str | None, body: Any, method: str = "POST") -> Answer:
    headers = {"Authorization": f"Bearer {secret}"} if secret is not None else {}
    async with (
        aiohttp.ClientSession() as client,
        client.request(
            method,
            stack.fapi + "/__minter/admin/outage",
            data=json.dumps(body) if body is not None else None,
            headers=headers,
        ) as response,
    ):
        return Answer(response.status, await response.json(), response.headers)


async def test_admin_call_forces_outage_on_off_and_back_to_auto(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with (
        running_stack(
            tmp_path, clock, tokens=TOKENS, origin=BREAKER, admin=AdminSettings(ADMIN_SECRET)
        ) as stack,
        Browser(stack.fapi) as browser,
    ):
        assert (await admin(stack, None, {"mode": "on"})).status == 401
        assert (await admin(stack, "wrong", {"mode": "on"})).status == 401
        assert (await admin(stack, ADMIN_SECRET[:-1], {"mode": "on"})).status == 401
        for bad in ({"mode": "maybe"}, {"mode": "on", "x": 1}, ["on"], "on"):
            refused = await admin(stack, ADMIN_SECRET, bad)
            assert (refused.status, refused.error_code) == (400, "invalid_outage_mode")
        assert health_of(stack).forced == "auto"

        sid = await browser.sign_in()
        token = checked(await browser.refresh(sid)).jwt
        answer = await admin(stack, ADMIN_SECRET, {"mode": "on"})
        assert answer.status == 200
        assert answer.body == {
            "object": "outage",
            "mode": "on",
            "breaker": "closed",
            "outage": True,
            "recent_failures": 0,
        }
        clock.advance(MAX_AGE + 5)
        minted = checked(await browser.refresh(sid, token=token)).jwt
        assert decode(minted)[0]["oiat"] == decode(token)[0]["oiat"]
        assert (await stack.origin_stats())["tokens"] == 1

        assert (await admin(stack, ADMIN_SECRET, {"mode": "off"})).body["outage"] is False
        await stack.origin_faults("error503")
        for _ in range(3):  # forced off: the breaker never opens, each failure falls back
            clock.advance(5)
            checked(await browser.refresh(sid, token=minted))
        assert health_of(stack).available
        assert (await admin(stack, ADMIN_SECRET, {"mode": "auto"})).body["outage"] is True
        read = await admin(stack, ADMIN_SECRET, None, method="GET")
        assert read.body["mode"] == "auto"
        assert read.body["breaker"] == "open"
    assert stack.decisions()[("minted", "outage")] == 4


async def test_admin_and_push_refuse_a_secret_that_is_not_utf8_with_a_401(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with running_stack(
        tmp_path, clock, tokens=TOKENS, origin=BREAKER, admin=AdminSettings(ADMIN_SECRET)
    ) as stack:
        for path in ("/__minter/admin/outage", "/__minter/push"):
            raw = await exchange(
                stack.edge_url,
                f"POST {path} HTTP/1.1\r\nHost: edge\r\n".encode()
                + b"Authorization: Bearer \xff\xfe\r\nContent-Length: 2\r\n"
                + b"Connection: close\r\n\r\n{}",
            )
            answer = parse_answer(raw)
            assert answer.status == 401, (path, answer.body)
            assert orjson.loads(answer.body)["errors"][0]["code"] == "unauthorized"
        assert health_of(stack).forced == "auto"


async def test_admin_route_is_off_without_a_secret(outage_stack: Stack) -> None:
    answer = await admin(outage_stack, "", {"mode": "on"})
    assert (answer.status, answer.error_code) == (404, "resource_not_found")
    assert health_of(outage_stack).forced == "auto"


async def _edge(stack: Stack, folder: Path, cache_file: Path | None) -> tuple[web.AppRunner, str]:
    """Another edge on the same origin, signing with its own key (not the instance key)."""
    settings = stack.edge_app[SERVICES].settings
    origin = dataclasses.replace(settings.origin, jwks_cache_file=cache_file)
    own_key = write_key(folder / "edge.pem", overwrite=True)
    app = create_app(
        dataclasses.replace(settings, origin=origin), clock=stack.clock, signing_keys=[own_key]
    )
    runner = web.AppRunner(app)
    await runner.setup()
    sock = listening_socket()
    await web.SockSite(runner, sock).start()
    return runner, url_of(sock)


async def test_restart_during_an_outage_still_verifies_tokens_from_the_jwks_cache(
    tmp_path: Path, clock: FakeClock
) -> None:
    cache = tmp_path / "cache" / "origin-jwks.json"
    async with running_stack(tmp_path, clock, tokens=TOKENS, origin=BREAKER) as stack:
        first, _ = await _edge(stack, tmp_path, cache)  # writes the cache at start
        await first.cleanup()
        cached = json.loads(cache.read_text())
        assert [key["kid"] for key in cached["keys"]] == [stack.key.kid]
        assert not list(cache.parent.glob("*.tmp")), "written atomically, nothing left over"

        async with Browser(stack.fapi) as browser:
            sid = await browser.sign_in()
            token = checked(await browser.refresh(sid)).jwt
            await stack.stop_origin()
            outcomes = {}
            for name, cache_file in (("cached", cache), ("uncached", None)):
                runner, url = await _edge(stack, tmp_path, cache_file)
                try:
                    async with Browser(url) as restarted:
                        answer = await restarted.refresh(sid, token=token)
                finally:
                    await runner.cleanup()
                outcomes[name] = checked(answer)
    cached_answer, uncached = outcomes["cached"], outcomes["uncached"]
    assert decode(cached_answer.jwt)[0]["oiat"] == decode(token)[0]["oiat"]
    assert decode(cached_answer.jwt)[0]["kid"] != stack.key.kid, "signed by the new edge"
    assert (uncached.status, uncached.error_code) == (503, "origin_unavailable")


async def test_handshake_and_legacy_tokens_in_the_query_are_forwarded_but_never_logged(
    outage_stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with Browser(outage_stack.fapi) as browser:
        sid = await browser.sign_in()
        token = checked(await browser.refresh(sid)).jwt
        query = f"__session={token}&__clerk_api_version=2025-11-10"
        forwarded = checked(await browser.refresh(sid, query=query))
        assert forwarded.status == 200
        last = (await outage_stack.origin_stats())["last_token_request"]
        assert last["query"]["__session"] == token
        await outage_stack.origin_faults("error503")
        outage_stack.clock.advance(MAX_AGE + 5)
        legacy = checked(await browser.refresh(sid, query=f"expired_token={token}&{query}"))
        assert legacy.status == 200
    assert "redacted:" in caplog.text, "the access log line was written, redacted"
    for part in token.split("."):
        assert part not in caplog.text


async def test_a_failing_origin_never_passes_on_a_cookie_that_signs_out() -> None:
    headers = CIMultiDict(
        [
            ("Set-Cookie", "__session=; Path=/; Max-Age=0"),
            ("Set-Cookie", "__client=abc; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
            ("Set-Cookie", "__client_uat=0; Path=/"),
            ("Set-Cookie", "__client_uat_Xy12=0; Path=/"),
            ("Set-Cookie", "__client_uat=1700000000; Path=/"),
            ("Set-Cookie", "__session_Xy12=; Path=/"),
            ("Set-Cookie", "__client=kept; Max-Age=31536000"),
            ("Set-Cookie", "theme=; Max-Age=0"),
            ("Retry-After", "1"),
        ]
    )
    kept = without_sign_out_cookies(headers, now=1_700_000_000)
    assert kept.getall("Set-Cookie") == [
        "__client_uat=1700000000; Path=/",
        "__client=kept; Max-Age=31536000",
        "theme=; Max-Age=0",
    ]
    assert kept["Retry-After"] == "1"
