"""Abuse limits on the token route, through the real edge in front of the real origin."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from minter import sign_compact
from origin.stats import STATS
from proxy.config import ConfigError, LimitSettings, ServerSettings
from proxy.keygen import write_key
from proxy.limits import LIMITS, QUEUE_FACTOR, TokenBuckets, _ip_key
from proxy.services import SERVICES
from tests.proxy.raw_origin import slow_sign_ins
from tests.proxy.served import until
from tests.stack import (
    BOB,
    BROWSER_ORIGIN,
    Answer,
    Browser,
    FakeClock,
    Stack,
    decode,
    running_stack,
)

GENEROUS = LimitSettings(per_ip_per_s=1000.0, per_ip_burst=1000)
# Two refreshes per session (and client), then none for 100 s.
TWO_PER_SESSION = LimitSettings(
    per_ip_per_s=1000.0, per_ip_burst=1000, per_session_per_s=0.01, per_session_burst=2
)


def limited(stack: Stack) -> dict[str, float]:
    registry = stack.edge_app[SERVICES].metrics.registry
    return {
        sample.labels["limit"]: sample.value
        for metric in registry.collect()
        if metric.name == "session_minter_limited"
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


def minted(stack: Stack) -> float:
    return sum(n for (outcome, _), n in stack.decisions().items() if outcome == "minted")


def assert_clerk_429(answer: Answer, retry_after: int) -> None:
    assert answer.status == 429
    assert answer.headers["Retry-After"] == str(retry_after)
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Access-Control-Allow-Origin"] == BROWSER_ORIGIN
    assert answer.headers["Access-Control-Allow-Credentials"] == "true"
    # Else a browser's script cannot read how long to wait.
    assert answer.headers["Access-Control-Expose-Headers"] == "Authorization, Retry-After"
    [error] = answer.body["errors"]
    assert set(error) == {"code", "message", "long_message", "meta"}
    assert error["code"] == "too_many_requests"
    assert error["message"]
    assert error["meta"] == {}


async def test_per_ip_limit_answers_before_anything_is_verified(
    tmp_path: Path, clock: FakeClock
) -> None:
    limits = LimitSettings(per_ip_per_s=0.5, per_ip_burst=3)
    async with (
        running_stack(tmp_path, clock, limits=limits) as stack,
        Browser(stack.fapi) as browser,
    ):
        sid = await browser.sign_in()
        token = (await browser.refresh(sid)).jwt
        for _ in range(2):
            assert (await browser.refresh(sid, token=token)).status == 200
        # A token naming an unknown kid would make a verifier refetch the origin's JWKS.
        stranger = write_key(tmp_path / "stranger.pem")
        header, claims = decode(token)
        unknown_kid = sign_compact({**header, "kid": stranger.kid}, claims, stranger)
        fetches = stack.edge_app[SERVICES].keyring.fetches
        decisions = stack.decisions()
        origin_tokens = (await stack.origin_stats())["tokens"]
        answer = await browser.refresh(sid, token=unknown_kid)
        assert_clerk_429(answer, retry_after=2)
        assert stack.edge_app[SERVICES].keyring.fetches == fetches, "nothing was verified"
        assert stack.decisions() == decisions, "no decision was taken"
        assert (await stack.origin_stats())["tokens"] == origin_tokens
        assert limited(stack) == {"ip": 1}
        clock.advance(2)
        assert (await browser.refresh(sid, token=token)).status == 200


async def token_statuses(
    folder: Path, clock: FakeClock, headers: list[dict[str, str]], **sections: Any
) -> list[int]:
    """One signed-in browser's token requests, one per header set: their statuses."""
    async with running_stack(folder, clock, **sections) as stack, Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        path = f"/v1/client/sessions/{sid}/tokens"
        return [(await browser.request("POST", path, headers=h)).status for h in headers]


SPOOFED = [{"X-Forwarded-For": f"203.0.113.{n}"} for n in range(3)]


@pytest.mark.parametrize(
    ("trusted", "headers", "expected"),
    [
        # An untrusted peer is keyed by its own address, whatever it claims.
        ((), SPOOFED, [200, 429, 429]),
        # Behind a trusted proxy the last hop names the client: the fourth is 203.0.113.0.
        (
            ("127.0.0.1",),
            [*SPOOFED, {"X-Forwarded-For": "198.51.100.7, 203.0.113.0"}],
            [200, 200, 200, 429],
        ),
        # Behind a CDN (192.0.2.9) and a balancer, both trusted: the hop before the CDN.
        (
            ("127.0.0.1", "192.0.2.9"),
            [{"X-Forwarded-For": f"198.51.100.{n}, 192.0.2.9"} for n in (1, 2, 1)],
            [200, 200, 429],
        ),
    ],
    ids=["untrusted", "trusted", "chained"],
)
async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
    tmp_path: Path,
    clock: FakeClock,
    trusted: tuple[str, ...],
    headers: list[dict[str, str]],
    expected: list[int],
) -> None:
    statuses = await token_statuses(
        tmp_path,
        clock,
        headers,
        limits=LimitSettings(per_ip_per_s=0.01, per_ip_burst=1),
        server=ServerSettings(trusted_proxies=trusted),
    )
    assert statuses == expected


async def test_garbage_on_a_victims_path_does_not_drain_the_victims_session_budget(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with (
        running_stack(tmp_path, clock, limits=TWO_PER_SESSION) as stack,
        Browser(stack.fapi) as victim,
        Browser(stack.fapi) as attacker,
    ):
        sid = await victim.sign_in()
        token = (await victim.refresh(sid)).jwt
        attacker_sid = await attacker.sign_in(BOB)
        attacker_token = (await attacker.refresh(attacker_sid)).jwt
        header, payload, signature = token.split(".")
        garbage = [
            "not-a-token",
            f"{header}.{payload}.{signature[:-4]}AAAA",  # the victim's claims, a broken signature
            attacker_token,  # correctly signed, but for another session
            f"{header}.{payload}",
        ]
        for n in range(30):
            answer = await attacker.refresh(sid, token=garbage[n % len(garbage)])
            assert answer.status != 429
        assert "session" not in limited(stack)
        for _ in range(2):
            answer = await victim.refresh(sid, token=token)
            assert answer.status == 200
        assert minted(stack) == 2
        assert_clerk_429(await victim.refresh(sid, token=token), retry_after=100)
        assert limited(stack) == {"session": 1}


async def test_a_stolen_token_does_not_drain_its_owners_session_budget(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Whoever holds a copy of a valid token (not its owner's `__client` cookie)
    spends a budget of its own, not the owner's: else it could keep the owner's
    refreshes at 429 until the token expires."""
    async with (
        running_stack(tmp_path, clock, limits=TWO_PER_SESSION) as stack,
        Browser(stack.fapi) as owner,
        Browser(stack.fapi) as thief,
    ):
        sid = await owner.sign_in()
        token = (await owner.refresh(sid)).jwt
        statuses = [(await thief.refresh(sid, token=token)).status for _ in range(3)]
        assert statuses[-1] == 429, "the thief's own budget runs out"
        for _ in range(2):
            answer = await owner.refresh(sid, token=token)
            assert answer.status == 200
            assert decode(answer.jwt)[1]["sid"] == sid


async def test_session_limit_answers_429_in_clerk_shape_with_retry_after(
    tmp_path: Path, clock: FakeClock
) -> None:
    limits = LimitSettings(
        per_ip_per_s=1000.0, per_ip_burst=1000, per_session_per_s=0.25, per_session_burst=1
    )
    async with (
        running_stack(tmp_path, clock, limits=limits) as stack,
        Browser(stack.fapi) as browser,
    ):
        sid = await browser.sign_in()
        token = (await browser.refresh(sid)).jwt
        clock.advance(10)
        assert (await browser.refresh(sid, token=token)).status == 200
        clock.advance(1)
        assert_clerk_429(await browser.refresh(sid, token=token), retry_after=3)
        clock.advance(3)
        again = await browser.refresh(sid, token=token)
    assert decode(again.jwt)[1]["sid"] == sid
    assert minted(stack) == 2


async def test_signature_bound_leaves_other_routes_answering(
    tmp_path: Path, clock: FakeClock
) -> None:
    limits = LimitSettings(
        per_ip_per_s=1000.0,
        per_ip_burst=1000,
        per_session_per_s=1000.0,
        per_session_burst=1000,
        max_concurrent_signs=1,
    )
    flood = 20
    queued = QUEUE_FACTOR * limits.max_concurrent_signs
    async with (
        running_stack(tmp_path, clock, limits=limits) as stack,
        Browser(stack.fapi) as browser,
    ):
        sid = await browser.sign_in()
        token = (await browser.refresh(sid)).jwt
        gate = stack.edge_app[LIMITS].signs
        async with gate.slot():  # one signature in flight, for as long as the test says
            tasks = {asyncio.create_task(browser.refresh(sid, token=token)) for _ in range(flood)}
            turned_away: list[Answer] = []
            pending = tasks
            while len(turned_away) < flood - queued:
                done, pending = await asyncio.wait(
                    pending, timeout=60, return_when=asyncio.FIRST_COMPLETED
                )
                assert done, "refreshes past the waiting line must be answered at once"
                turned_away.extend(task.result() for task in done)
            health = await browser.request("GET", "/healthz")
            jwks = await browser.request("GET", "/.well-known/jwks.json")
            forwarded = await browser.request("GET", "/v1/environment")
            assert (health.status, jwks.status, forwarded.status) == (200, 200, 200)
            assert gate.waiting == queued
            assert len(pending) == queued
            assert not any(task.done() for task in pending)
        answers = await asyncio.gather(*pending)
    for answer in turned_away:
        assert answer.status == 503
        assert answer.headers["Retry-After"] == "1"
        assert answer.error_code == "edge_busy"
    assert [answer.status for answer in answers] == [200] * queued
    assert minted(stack) == queued
    assert limited(stack) == {"signing": flood - queued}


async def test_one_client_holding_forwards_open_gets_429_past_its_share(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Forwards whose bodies arrive slowly each hold an origin connection: past
    `per_ip_forwards` at once, that client gets 429; token requests still go on."""
    limits = LimitSettings(per_ip_per_s=1000.0, per_ip_burst=1000, per_ip_forwards=2)
    async with running_stack(tmp_path, clock, limits=limits) as stack:
        arrivals = stack.origin_app[STATS].counts
        forwards = stack.edge_app[LIMITS].forwards
        async with Browser(stack.fapi) as browser:
            sid = await browser.sign_in()
            expected = arrivals["sign_ins"] + 2
            async with slow_sign_ins(stack.edge_url, 2):

                async def both_at_the_origin() -> bool:
                    return arrivals["sign_ins"] >= expected

                await until(both_at_the_origin, "the held requests to reach the origin")
                refused = await browser.request("GET", "/v1/environment")
                assert refused.status == 429
                assert refused.headers["Retry-After"] == "1"
                assert refused.body["errors"][0]["code"] == "too_many_requests"
                assert (await browser.refresh(sid)).status == 200, "the token route is apart"

            async def released() -> bool:
                return len(forwards) == 0

            await until(released, "the held forwards to end")
            assert (await browser.request("GET", "/v1/environment")).status == 200
    assert limited(stack) == {"forwards": 1.0}


async def test_signing_in_threads_mints_tokens_the_edge_remembers(
    tmp_path: Path, clock: FakeClock
) -> None:
    limits = LimitSettings(per_ip_per_s=1000.0, per_ip_burst=1000, sign_in_threads=True)
    async with (
        running_stack(tmp_path, clock, limits=limits) as stack,
        Browser(stack.fapi) as browser,
    ):
        sid = await browser.sign_in()
        token = (await browser.refresh(sid)).jwt
        clock.advance(20)
        answers = await asyncio.gather(*(browser.refresh(sid, token=token) for _ in range(3)))
        again = await browser.refresh(sid, token=answers[-1].jwt)
    assert [answer.status for answer in answers] == [200] * 3
    assert again.status == 200
    edge_kid = stack.edge_app[SERVICES].keyring.active.kid
    for answer in (*answers, again):
        header, claims = decode(answer.jwt)
        assert (header["kid"], claims["sid"]) == (edge_kid, sid)
    assert stack.edge_app[LIMITS].signs.batch.calls == 0, "signed in threads, not on the loop"
    assert stack.edge_app[SERVICES].signed.knows(sid, again.jwt)
    assert minted(stack) == 4


def test_buckets_refill_and_stay_bounded() -> None:
    clock = FakeClock(1_750_000_000)
    buckets = TokenBuckets(rate=2.0, burst=2, clock=clock, max_keys=8)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.5]
    clock.advance(0.5)
    assert buckets.take("a") == 0.0
    for n in range(100):
        buckets.take(f"10.0.0.{n}")
        assert len(buckets) <= 8
    clock.advance(-60)  # a clock stepping back refills nothing
    assert buckets.take("b") == 0.0
    assert buckets.take("b") == 0.0
    assert buckets.take("b") == 0.5


@pytest.mark.parametrize(
    "field",
    ["per_ip_per_s", "per_ip_burst", "per_session_per_s", "per_session_burst", "per_ip_forwards"],
)
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ConfigError, match=f"limits.{field}"):
        LimitSettings(**{field: 0})


@pytest.mark.parametrize(
    ("hop", "key"),
    [
        ("203.0.113.7:51000", "203.0.113.7"),
        ("203.0.113.7", "203.0.113.7"),
        ("[2001:db8::1]:443", "2001:db8::/64"),
        ("2001:db8::1", "2001:db8::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_a_hop_written_with_its_port_is_keyed_by_its_address(hop: str, key: str) -> None:
    """Some proxies write `ip:port`: a new connection must not mean a new, full bucket."""
    assert _ip_key(hop) == key
