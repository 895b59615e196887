"""`POST {prefix}/__minter/push`: the origin tells the edge what changed.

The real edge and the real reference origin, which pushes on its backend
revoke and membership calls; plus direct pushes with and without the secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from proxy.config import PushSettings, ServerSettings
from proxy.services import SERVICES
from tests.proxy.raw_origin import RawOrigin, edge_in_front, exchange, parse_answer
from tests.stack import PUSH_SECRET, Browser, FakeClock, Stack, decode, running_stack


def minted(stack: Stack) -> float:
    return sum(n for (outcome, _), n in stack.decisions().items() if outcome == "minted")


async def push(
    stack: Stack, body: bytes | Any, authorization: str | None = f"Bearer {PUSH_SECRET}"
) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    async with (
        aiohttp.ClientSession() as client,
        client.post(stack.fapi + "/__minter/push", data=data, headers=headers) as answer,
    ):
        return answer.status, orjson.loads(await answer.read())


async def edge_minted(stack: Stack, browser: Browser, org: str = "") -> tuple[str, str]:
    sid = await browser.sign_in()
    first = (await browser.refresh(sid, organization_id=org)).jwt
    stack.clock.advance(10)
    before = minted(stack)
    token = (await browser.refresh(sid, organization_id=org, token=first)).jwt
    assert minted(stack) == before + 1
    stack.clock.advance(10)
    return sid, token


async def test_push_with_the_secret_revokes(stack: Stack) -> None:
    async with Browser(stack.fapi) as browser:
        sid, token = await edge_minted(stack, browser)
        status, body = await push(stack, {"revoked_sessions": [sid]})
        assert (status, body["revoked_sessions"]) == (200, 1)
        before = minted(stack)
        answer = await browser.refresh(sid, token=token)
    assert minted(stack) == before
    assert stack.decisions()[("origin", "revoked")] == 1
    assert answer.status == 200, "the origin never heard of this revocation and answers"


async def test_origin_backend_revoke_is_pushed_and_honoured(stack: Stack) -> None:
    async with Browser(stack.fapi) as browser:
        sid, token = await edge_minted(stack, browser)
        status, _ = await stack.origin_admin("POST", f"/backend/v1/sessions/{sid}/revoke")
        assert status == 200
        assert (await stack.origin_stats())["push_ok"] == 1
        before = minted(stack)
        answer = await browser.refresh(sid, token=token)
    assert minted(stack) == before
    assert stack.decisions()[("origin", "revoked")] == 1
    assert answer.status != 200, "the origin revoked the session too"


async def test_stale_session_goes_to_origin_once_then_mints_again(stack: Stack) -> None:
    async with Browser(stack.fapi) as browser:
        sid, token = await edge_minted(stack, browser)
        status, body = await push(stack, {"stale_sessions": [sid]})
        assert (status, body["stale_sessions"]) == (200, 1)
        stack.clock.advance(6)  # past the mark's allowance for clock skew (5 s)
        fresh = (await browser.refresh(sid, token=token)).jwt
        assert stack.decisions()[("origin", "stale")] == 1
        assert decode(fresh)[0]["oiat"] == int(stack.clock.now)
        before = minted(stack)
        stack.clock.advance(10)
        await browser.refresh(sid, token=fresh)
    assert minted(stack) == before + 1, "claims newer than the mark are minted again"


async def test_a_stale_mark_covers_claims_from_an_origin_clock_ahead_of_the_edges(
    stack: Stack,
) -> None:
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        first = (await browser.refresh(sid)).jwt  # assembled at the origin's `now`
        stack.clock.advance(-3)  # the edge's clock runs 3 s behind the origin's
        status, _ = await push(stack, {"stale_sessions": [sid]})
        assert status == 200
        before = minted(stack)
        answer = await browser.refresh(sid, token=first)
    assert answer.status == 200
    assert minted(stack) == before, "claims assembled before the change were cloned"
    assert stack.decisions()[("origin", "stale")] == 1


async def test_membership_change_pushes_stale_user_and_new_role_arrives(stack: Stack) -> None:
    async with Browser(stack.fapi) as browser:
        sid, token = await edge_minted(stack, browser, org="org_acme")
        assert decode(token)[1]["o"]["rol"] == "admin"
        stack.clock.advance(1)
        status, _ = await stack.origin_admin(
            "PATCH",
            "/backend/v1/organizations/org_acme/memberships/user_alice",
            {"role": "org:member"},
        )
        assert status == 200
        answer = await browser.refresh(sid, organization_id="org_acme", token=token)
    assert stack.decisions()[("origin", "stale")] == 1
    assert decode(answer.jwt)[1]["o"]["rol"] == "member"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong-secret",
        f"Bearer {PUSH_SECRET}x",
        f"Bearer {PUSH_SECRET[:-1]}",
        f"Basic {PUSH_SECRET}",
        PUSH_SECRET,
    ],
)
async def test_push_without_the_right_secret_is_401_and_changes_nothing(
    stack: Stack, authorization: str | None
) -> None:
    async with Browser(stack.fapi) as browser:
        sid, token = await edge_minted(stack, browser)
        status, body = await push(stack, {"revoked_sessions": [sid]}, authorization)
        assert status == 401
        assert body["errors"][0]["code"] == "unauthorized"
        before = minted(stack)
        await browser.refresh(sid, token=token)
    assert minted(stack) == before + 1, "still minted at the edge"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'"revoked_sessions"',
        b'{"revoked_sessions": "sess_1"}',
        b'{"revoked_sessions": [1]}',
        b'{"revoked_sessions": [""]}',
        b'{"revoked_sessions": ["' + b"s" * 129 + b'"]}',
        b'{"stale_users": [null]}',
        b'{"revoked_sessions": [], "drop_tables": []}',
        b'{"revoked_sessions": ["sess_1"], "revoked_sessions": ["sess_1"',
    ],
)
async def test_malformed_push_is_400_and_changes_nothing(stack: Stack, body: bytes) -> None:
    async with Browser(stack.fapi) as browser:
        sid, token = await edge_minted(stack, browser)
        status, answer = await push(stack, body.replace(b"sess_1", sid.encode()))
        assert status == 400
        assert set(answer["errors"][0]) == {"code", "message", "long_message", "meta"}
        before = minted(stack)
        await browser.refresh(sid, token=token)
    assert minted(stack) == before + 1


async def test_push_is_off_when_no_secret_is_configured(tmp_path: Path) -> None:
    async with (
        RawOrigin() as origin,
        edge_in_front(origin.url, tmp_path, push=PushSettings(secret="")) as (edge, app),
    ):
        for authorization in ("Bearer ", "Bearer", ""):
            raw = await exchange(
                edge,
                b"POST /__minter/push HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"
                b"Authorization: " + authorization.encode() + b"\r\n"
                b'Content-Length: 32\r\n\r\n{"revoked_sessions": ["sess_x"]}',
            )
            assert parse_answer(raw).status == 401
        assert not await app[SERVICES].store.is_revoked("sess_x")
    assert origin.forwarded() == []


async def test_push_lives_under_the_prefix(tmp_path: Path, clock: FakeClock) -> None:
    server = ServerSettings(prefix="/__clerk")
    async with running_stack(tmp_path, clock, server=server) as stack:
        status, body = await push(stack, {"revoked_sessions": ["sess_x"]})
        assert (status, body["revoked_sessions"]) == (200, 1)
        assert await stack.edge_app[SERVICES].store.is_revoked("sess_x")
        async with (
            aiohttp.ClientSession() as client,
            client.post(
                stack.edge_url + "/__minter/push",
                json={"revoked_sessions": ["sess_y"]},
                headers={"Authorization": f"Bearer {PUSH_SECRET}"},
            ) as outside,
        ):
            assert outside.status == 404, "outside the prefix it is the origin's path"
        assert not await stack.edge_app[SERVICES].store.is_revoked("sess_y")
