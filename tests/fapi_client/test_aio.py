"""The asyncio transport against the real edge and reference origin."""

from __future__ import annotations

from fapi_client.aio import AioBrowser
from tests.stack import Stack, decode


async def test_tabs_share_tokens_and_refreshes_are_minted_at_the_edge(stack: Stack) -> None:
    async with AioBrowser(stack.fapi, time_scale=0) as browser:
        sid = await browser.sign_in("alice@example.com", "correct-horse")
        first = await browser.get_token(sid, organization_id="org_acme")
        stack.clock.advance(43)
        second = await browser.get_token(sid, organization_id="org_acme")
        forced = await browser.get_token(sid, organization_id="org_acme", skip_cache=True)
    assert first.jwt is not None
    assert second.jwt is not None
    assert forced.jwt is not None
    assert decode(second.jwt)[0]["oiat"] == decode(first.jwt)[0]["oiat"]
    assert decode(forced.jwt)[0]["oiat"] > decode(first.jwt)[0]["oiat"]
    decisions = stack.decisions()
    # the sign-in answer carried a personal-workspace token: switching to org_acme is
    # the origin's job, and the next refresh within org_acme is minted at the edge
    assert decisions[("origin", "org")] == 1
    assert decisions[("minted", "edge")] == 1
    assert decisions[("origin", "force_origin")] == 1


async def test_outage_keeps_the_user_signed_in(stack: Stack) -> None:
    async with AioBrowser(stack.fapi, time_scale=0) as browser:
        sid = await browser.sign_in("alice@example.com", "correct-horse")
        first = await browser.get_token(sid)
        await stack.origin_faults("error503")
        stack.clock.advance(43)
        during = await browser.get_token(sid)
    assert during.jwt is not None
    assert during.accepted
    assert during.failures == 0
    assert first.jwt is not None
    assert decode(during.jwt)[0]["oiat"] == decode(first.jwt)[0]["oiat"]
