"""Metrics and health, read the way Prometheus and an orchestrator read them: over HTTP.

Each refresh decision moves exactly its own counter; requests are counted
by route and status; the latency histograms, breaker gauges, store errors
and JWKS fetches move when their event happens; `/readyz` answers 503
while the origin's JWKS is unknown, and 200 "degraded" while Redis is down
(every edge shares it, and each still forwards).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from minter import SESSION_TOKEN_CAT, sign_compact
from proxy import Settings, create_app
from proxy.config import KeysSettings, OriginSettings, StoreSettings
from proxy.keygen import write_key
from tests.redis_server import RedisServer
from tests.stack import (
    Answer,
    Browser,
    FakeClock,
    Stack,
    decode,
    listening_socket,
    running_stack,
    url_of,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
READY_TIMEOUT_S = 15.0


async def scrape(base: str) -> Samples:
    async with aiohttp.ClientSession() as client, client.get(base + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: Samples, after: Samples) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Counters and histogram counts that changed, by how much (gauges and sums left out)."""
    changed = {}
    for key, now in after.items():
        name = key[0]
        if not name.endswith(("_total", "_count")):
            continue
        delta = now - before.get(key, 0.0)
        if delta:
            changed[key] = delta
    return changed


def decisions_moved(before: Samples, after: Samples) -> dict[tuple[str, str], float]:
    return {
        (dict(labels)["outcome"], dict(labels)["reason"]): delta
        for (name, labels), delta in moved(before, after).items()
        if name == "session_minter_refresh_decisions_total"
    }


async def get(base: str, path: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as client, client.get(base + path) as response:
        return response.status, await response.json()


# -- decisions --------------------------------------------------------------------------------


async def test_each_decision_moves_its_own_counter_once(stack: Stack) -> None:
    base = stack.edge_url

    async def step(
        expected: tuple[str, str], status: int, action: Coroutine[Any, Any, Answer]
    ) -> Answer:
        before = await scrape(base)
        answer = await action
        after = await scrape(base)
        assert answer.status == status, answer.body
        assert decisions_moved(before, after) == {expected: 1}, expected
        route = "template_token" if expected[1] == "template" else "token"
        assert value(after, "session_minter_requests_total", route=route, status=str(status)) == (
            value(before, "session_minter_requests_total", route=route, status=str(status)) + 1
        )
        return answer

    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        first = await step(("origin", "no_token"), 200, browser.refresh(sid))
        token = first.jwt
        await step(("minted", "edge"), 200, browser.refresh(sid, token=token))
        await step(
            ("origin", "force_origin"), 200, browser.refresh(sid, token=token, force_origin=True)
        )
        await step(
            ("origin", "template"),
            200,
            browser.refresh(sid, token=token, template="integration_demo"),
        )
        await step(
            ("origin", "org"), 200, browser.refresh(sid, token=token, organization_id="org_acme")
        )
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        await step(("origin", "invalid:signature"), 200, browser.refresh(sid, token=forged))
        stack.clock.advance(301)  # past max_claims_age_s, within max_expired_s
        await step(("origin", "too_old"), 200, browser.refresh(sid, token=token))
        fresh = (await browser.refresh(sid)).jwt
        status, _ = await stack.origin_admin("POST", f"/backend/v1/sessions/{sid}/revoke")
        assert status == 200
        revoked = await browser.refresh(sid, token=fresh)
        assert revoked.status != 200
    after = await scrape(base)
    assert (
        value(after, "session_minter_refresh_decisions_total", outcome="origin", reason="revoked")
        == 1
    )
    assert value(after, "session_minter_revocations_total", source="push") == 1


async def test_refusals_and_outage_mints_are_counted(stack: Stack) -> None:
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        token = (await browser.refresh(sid)).jwt
        await stack.origin_faults("error503")
        before = await scrape(stack.edge_url)
        refused = await browser.refresh(sid)  # no token, origin down: 422
        stack.clock.advance(301)  # too old for the normal bound: the origin is asked, fails
        outage = await browser.refresh(
            sid, token=token
        )  # and the edge mints under the outage bound
        after = await scrape(stack.edge_url)
    assert (refused.status, refused.error_code) == (422, "missing_expired_token")
    assert outage.status == 200
    assert decisions_moved(before, after) == {("refused", "no_token"): 1, ("minted", "outage"): 1}
    assert value(after, "session_minter_origin_failures_total", kind="status_503") == (
        value(before, "session_minter_origin_failures_total", kind="status_503") + 2
    )
    assert value(after, "session_minter_requests_total", route="token", status="422") == 1


# -- requests, latency -------------------------------------------------------------------------


async def test_requests_are_counted_by_route_and_status(stack: Stack) -> None:
    base = stack.edge_url
    before = await scrape(base)
    async with aiohttp.ClientSession() as client:
        for method, path, data in [
            ("GET", "/healthz", None),
            ("GET", "/readyz", None),
            ("GET", "/.well-known/jwks.json", None),
            ("GET", "/v1/environment", None),
            ("POST", "/__minter/push", b"{}"),
            ("POST", "/v1/client/sessions/sess_x/tokens", b"\xff" * 70_000),
            ("DELETE", "/v1/client/sessions/sess_x", None),
        ]:
            async with client.request(method, base + path, data=data) as response:
                await response.read()
    after = await scrape(base)
    requests = {
        tuple(dict(labels)[k] for k in ("route", "status")): delta
        for (name, labels), delta in moved(before, after).items()
        if name == "session_minter_requests_total"
    }
    assert requests == {
        ("healthz", "200"): 1,
        ("readyz", "200"): 1,
        ("jwks", "200"): 1,
        ("forward", "200"): 1,
        ("push", "401"): 1,
        ("token", "413"): 1,
        ("sign_out", "401"): 1,  # the origin's answer: no client cookie
        ("metrics", "200"): 1,  # the first scrape
    }
    assert value(after, "session_minter_request_seconds_count", route="forward") == 1


async def test_mint_and_origin_latency_are_observed(stack: Stack) -> None:
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        before = await scrape(stack.edge_url)
        token = (await browser.refresh(sid)).jwt
        middle = await scrape(stack.edge_url)
        await browser.refresh(sid, token=token)
        after = await scrape(stack.edge_url)
    assert value(middle, "session_minter_origin_seconds_count") == (
        value(before, "session_minter_origin_seconds_count") + 1
    )
    assert value(middle, "session_minter_mint_seconds_count") == value(
        before, "session_minter_mint_seconds_count"
    )
    assert value(after, "session_minter_mint_seconds_count") == (
        value(middle, "session_minter_mint_seconds_count") + 1
    )
    assert value(after, "session_minter_mint_seconds_bucket", le="+Inf") == value(
        after, "session_minter_mint_seconds_count"
    )


# -- breaker, JWKS, keys ----------------------------------------------------------------------


async def test_breaker_state_is_a_gauge_per_state(tmp_path: Path, clock: FakeClock) -> None:
    async with running_stack(
        tmp_path, clock, origin={"breaker_failures": 1, "breaker_open_s": 30.0}
    ) as stack:
        closed = await scrape(stack.edge_url)
        async with Browser(stack.fapi) as browser:
            sid = await browser.sign_in()
            token = (await browser.refresh(sid)).jwt
            await stack.origin_faults("error503")
            assert (await browser.refresh(sid, token=token, force_origin=True)).status == 503
        opened = await scrape(stack.edge_url)
        clock.advance(31)
        half_open = await scrape(stack.edge_url)
    gauge = "session_minter_origin_breaker_state"
    assert [value(closed, gauge, state=s) for s in ("closed", "open", "half_open")] == [1, 0, 0]
    assert [value(opened, gauge, state=s) for s in ("closed", "open", "half_open")] == [0, 1, 0]
    assert [value(half_open, gauge, state=s) for s in ("closed", "open", "half_open")] == [0, 0, 1]
    assert value(closed, "session_minter_origin_breaker_open") == 0
    assert value(opened, "session_minter_origin_breaker_open") == 1


async def test_jwks_fetches_are_counted_at_start_and_on_an_unknown_kid(stack: Stack) -> None:
    start = await scrape(stack.edge_url)
    assert value(start, "session_minter_jwks_refreshes_total", result="ok") == 1
    assert value(start, "session_minter_signing_keys", state="published") == 1
    stranger = write_key(stack.key_path.with_name("stranger.pem"))
    stack.clock.advance(11)  # past jwks_min_refetch_s since the fetch at start
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        _, claims = decode((await browser.refresh(sid)).jwt)
        forged = sign_compact(
            {"alg": "RS256", "kid": stranger.kid, "typ": "JWT", "cat": SESSION_TOKEN_CAT},
            claims,
            stranger,
        )
        answer = await browser.refresh(sid, token=forged)
    after = await scrape(stack.edge_url)
    assert answer.status == 200
    assert value(after, "session_minter_jwks_refreshes_total", result="ok") == 2
    assert decisions_moved(start, after)[("origin", "invalid:unknown_kid")] == 1


# -- health --------------------------------------------------------------------------------------


async def test_healthz_answers_with_the_pid(stack: Stack) -> None:
    status, body = await get(stack.edge_url, "/healthz")
    assert (status, body) == (200, {"status": "ok", "pid": os.getpid()})


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_health_checks_answer_head_at_the_edge(stack: Stack, path: str) -> None:
    """Some balancers check with HEAD: the edge answers it (the origin has no such path)."""
    async with aiohttp.ClientSession() as client, client.head(stack.edge_url + path) as response:
        assert (response.status, response.content_type) == (200, "application/json")


async def wait_for_status(base: str, path: str, status: int) -> dict[str, object]:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        got, body = await get(base, path)
        if got == status:
            return body
        assert time.monotonic() < deadline, (got, body)
        await asyncio.sleep(0.05)


@pytest.fixture
async def edge_without_origin(stack: Stack) -> AsyncIterator[tuple[Stack, str]]:
    """A second edge whose origin is down when it starts: it never saw the origin's JWKS."""
    await stack.stop_origin()
    sock = listening_socket()
    settings = Settings(
        origin=OriginSettings(url=stack.origin_url),
        keys=KeysSettings(signing=(stack.key_path,)),
    )
    runner = web.AppRunner(create_app(settings, signing_keys=[stack.key]))
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield stack, url_of(sock)
    finally:
        await runner.cleanup()


async def test_readyz_fails_until_the_origin_jwks_is_known(
    edge_without_origin: tuple[Stack, str],
) -> None:
    stack, base = edge_without_origin
    status, body = await get(base, "/readyz")
    assert status == 503
    assert body == {
        "status": "not_ready",
        "checks": {"keys": True, "origin_jwks": False, "store": True},
    }
    assert (await get(base, "/healthz"))[0] == 200, "alive, only not ready"
    await stack.start_origin()
    ready = await wait_for_status(base, "/readyz", 200)  # the background refresh retries
    assert ready["checks"] == {"keys": True, "origin_jwks": True, "store": True}


async def test_readyz_says_degraded_while_redis_is_down_and_store_errors_are_counted(
    tmp_path: Path, clock: FakeClock, own_redis: RedisServer
) -> None:
    store = StoreSettings(backend="redis", redis_url=own_redis.url)
    async with running_stack(tmp_path, clock, store=store) as stack:
        assert (await get(stack.edge_url, "/readyz"))[0] == 200
        async with Browser(stack.fapi) as browser:
            sid = await browser.sign_in()
            token = (await browser.refresh(sid)).jwt
            await asyncio.to_thread(own_redis.stop)
            status, body = await get(stack.edge_url, "/readyz")
            # Still in the balancer: every edge shares the store, and each still forwards.
            assert (status, body) == (
                200,
                {
                    "status": "degraded",
                    "checks": {"keys": True, "origin_jwks": True, "store": False},
                },
            )
            before = await scrape(stack.edge_url)
            answer = await browser.refresh(sid, token=token)
            after = await scrape(stack.edge_url)
            assert answer.status == 200, "the origin answered"
            assert value(after, "session_minter_store_errors_total") > value(
                before, "session_minter_store_errors_total"
            )
            assert decisions_moved(before, after) == {("origin", "store"): 1}
            await asyncio.to_thread(own_redis.start)
            status, body = await get(stack.edge_url, "/readyz")
            assert (status, body["status"]) == (200, "ready")


async def test_a_client_hanging_up_mid_body_is_a_499_without_a_traceback(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = stack.edge_url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /v1/client/sessions/sess_x/tokens HTTP/1.1\r\nHost: edge\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
        b"organization_id="
    )
    await writer.drain()
    writer.close()  # 984 bytes short
    await writer.wait_closed()
    # Each scrape is a round trip through the edge's loop, which saw the hang-up first.
    for _ in range(20):
        samples = await scrape(stack.edge_url)
        if value(samples, "session_minter_requests_total", route="token", status="499"):
            break
    assert value(samples, "session_minter_requests_total", route="token", status="499") == 1
    assert value(samples, "session_minter_requests_total", route="token", status="500") == 0
    assert not [r for r in caplog.records if r.exc_info or "Error handling" in r.getMessage()]
