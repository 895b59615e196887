"""Tabs that refresh together share one signature."""

from __future__ import annotations

import asyncio

from proxy.services import SERVICES
from tests.stack import Browser, Stack, decode


async def test_concurrent_refreshes_of_one_session_share_one_signature(stack: Stack) -> None:
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        first = (await browser.refresh(sid)).jwt
        stack.clock.advance(20)
        answers = await asyncio.gather(*(browser.refresh(sid, token=first) for _ in range(10)))
    tokens = {answer.jwt for answer in answers}
    assert len(tokens) == 1, "ten tabs, one token"
    assert stack.edge_app[SERVICES].coalescer.hits == 9
    assert stack.decisions()[("minted", "edge")] == 10


async def test_clones_that_differ_are_signed_each(stack: Stack) -> None:
    async with Browser(stack.fapi) as alice, Browser(stack.fapi) as other_tab:
        sid = await alice.sign_in()
        personal = (await alice.refresh(sid)).jwt
        other_sid = await other_tab.sign_in()
        other = (await other_tab.refresh(other_sid)).jwt
        stack.clock.advance(20)
        same_second = [
            (await alice.refresh(sid, token=personal)).jwt,
            (await other_tab.refresh(other_sid, token=other)).jwt,
        ]
        stack.clock.advance(1)
        next_second = (await alice.refresh(sid, token=personal)).jwt
    assert stack.edge_app[SERVICES].coalescer.hits == 0
    assert len({*same_second, next_second}) == 3
    assert decode(next_second)[1]["iat"] == decode(same_second[0])[1]["iat"] + 1
