"""Tabs that refresh together share one signature."""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlencode

import orjson
from yarl import URL

from proxy.limits import LIMITS
from proxy.services import SERVICES
from tests.proxy.raw_origin import GUARD_S, host_port, parse_answer
from tests.stack import Browser, Stack, decode


async def test_concurrent_refreshes_of_one_session_share_one_signature(stack: Stack) -> None:
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        first = (await browser.refresh(sid)).jwt
        stack.clock.advance(20)
        answers = await asyncio.gather(*(browser.refresh(sid, token=first) for _ in range(10)))
    tokens = {answer.jwt for answer in answers}
    assert len(tokens) == 1, "ten tabs, one token"
    # Tabs whose refreshes wait for the same signing batch share its call;
    # later ones in that second find the token kept.
    coalesced = stack.edge_app[SERVICES].coalescer.hits + stack.edge_app[LIMITS].signs.batch.shared
    assert coalesced == 9
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


async def test_tabs_waiting_for_one_signing_batch_share_its_signature(stack: Stack) -> None:
    """Five tabs' refreshes read by the edge in one loop turn reach their signature
    together: one call signs, and the token it answers is remembered as signed."""
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        first = (await browser.refresh(sid)).jwt
        cookies = browser.client.cookie_jar.filter_cookies(URL(stack.fapi))
    stack.clock.advance(20)
    body = urlencode({"organization_id": "", "token": first}).encode()
    request = (
        f"POST /v1/client/sessions/{sid}/tokens HTTP/1.1\r\nHost: edge\r\n"
        f"Cookie: {'; '.join(f'{name}={c.value}' for name, c in cookies.items())}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
    # Blocking on purpose: the connections wait in the listening socket's queue
    # and the requests in theirs, all before the edge's loop takes its next turn.
    tabs = [socket.create_connection(host_port(stack.fapi)) for _ in range(5)]
    for tab in tabs:
        tab.sendall(request)
        tab.setblocking(False)
    answers = [parse_answer(raw) for raw in await asyncio.gather(*map(read_to_close, tabs))]
    tokens = {orjson.loads(answer.body)["jwt"] for answer in answers}
    assert [answer.status for answer in answers] == [200] * 5
    assert len(tokens) == 1, "five tabs, one token"
    batch = stack.edge_app[LIMITS].signs.batch
    assert (batch.calls, batch.shared) == (1, 4), "one signature for five tabs"
    token = tokens.pop()
    remembered = stack.edge_app[SERVICES].signed.recall(sid, token)
    assert remembered is not None
    assert tuple(map(orjson.loads, remembered)) == decode(token), "remembered as signed"
    assert stack.decisions()[("minted", "edge")] == 5


async def read_to_close(tab: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    received = bytearray()
    try:
        while chunk := await asyncio.wait_for(loop.sock_recv(tab, 65536), GUARD_S):
            received += chunk
    finally:
        tab.close()
    return bytes(received)
