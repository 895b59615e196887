"""Bodies that arrive in pieces are read whole: `proxy/reading.py` and the routes on it.

`StreamReader.read(n)` answers with what has arrived so far. Browsers often
send a POST's headers and body apart, so a token refresh read with one
`read(n)` would be parsed from part of its form.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import orjson
import pytest
from aiohttp import StreamReader, web
from aiohttp.base_protocol import BaseProtocol

from proxy.keygen import write_key
from proxy.keyring import KeyRing
from proxy.reading import read_capped_stream
from tests.proxy.raw_origin import host_port, parse_answer
from tests.stack import Browser, FakeClock, Stack, decode, listening_socket, url_of


@pytest.fixture
async def stream() -> AsyncIterator[StreamReader]:
    """aiohttp's own reader, on a connected socket."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    transport, protocol = await loop.create_connection(lambda: BaseProtocol(loop), sock=ours)
    yield StreamReader(protocol, 2**16, loop=loop)
    transport.close()
    theirs.close()


def finish(stream: StreamReader, rest: bytes) -> None:
    stream.feed_data(rest)
    stream.feed_eof()


async def test_the_rest_that_arrives_after_the_first_read_is_part_of_the_body(
    stream: StreamReader,
) -> None:
    stream.feed_data(b"organization_id=&tok")
    reading = asyncio.ensure_future(read_capped_stream(stream, 1024))
    # Runs after the reader's first step, which finds only the first piece.
    asyncio.get_running_loop().call_soon(finish, stream, b"en=abc")
    assert await reading == b"organization_id=&token=abc"


async def test_a_body_over_the_cap_across_pieces_is_refused(stream: StreamReader) -> None:
    stream.feed_data(b"a" * 600)
    reading = asyncio.ensure_future(read_capped_stream(stream, 1000))
    asyncio.get_running_loop().call_soon(finish, stream, b"b" * 600)
    assert await reading is None


async def test_a_body_of_exactly_the_cap_is_read(stream: StreamReader) -> None:
    finish(stream, b"a" * 1000)
    assert await read_capped_stream(stream, 1000) == b"a" * 1000


async def test_an_empty_body_is_empty(stream: StreamReader) -> None:
    stream.feed_eof()
    assert await read_capped_stream(stream, 1000) == b""


async def test_a_refresh_sent_as_headers_then_two_pieces_of_body_is_minted_at_the_edge(
    stack: Stack,
) -> None:
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        first = (await browser.refresh(sid, organization_id="org_acme")).jwt
        cookies = "; ".join(f"{c.key}={c.value}" for c in browser.client.cookie_jar)
    stack.clock.advance(30)
    body = urlencode({"organization_id": "org_acme", "token": first}).encode()
    head = (
        f"POST /v1/client/sessions/{sid}/tokens HTTP/1.1\r\nHost: edge\r\n"
        f"Origin: {browser.origin}\r\nCookie: {cookies}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection(*host_port(stack.edge_url))
    try:
        writer.write(head)
        # The handler is waiting for the body once the edge says to go on.
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100 ")
        writer.write(body[: len(body) // 2])
        await writer.drain()
        # The first piece was in the edge's socket before this request was sent,
        # so the edge (on this loop) has read it by the time this is answered.
        async with Browser(stack.edge_url) as other:
            assert (await other.request("GET", "/healthz")).status == 200
        writer.write(body[len(body) // 2 :])
        await writer.drain()
        answer = parse_answer(await reader.read())
    finally:
        writer.close()
    assert answer.status == 200, answer.body
    _, claims = decode(orjson.loads(answer.body)["jwt"])
    assert claims["sid"] == sid
    assert claims["o"]["id"] == "org_acme"
    assert stack.decisions()[("minted", "edge")] == 1


async def test_an_origin_jwks_that_arrives_in_two_pieces_is_adopted(tmp_path: Path) -> None:
    origin_key = write_key(tmp_path / "origin.pem")
    document = orjson.dumps({"keys": [origin_key.public.jwk()]})
    origin_url = ""

    async def ping(request: web.Request) -> web.Response:
        return web.Response(text="pong")

    async def jwks(request: web.Request) -> web.StreamResponse:
        reply = web.StreamResponse(headers={"Content-Type": "application/json"})
        reply.content_length = len(document)
        await reply.prepare(request)
        await reply.write(document[:40])
        # The first piece is in the edge's socket before this round trip starts,
        # so the edge (on this loop) has read it by the time the ping is answered.
        async with aiohttp.ClientSession() as client, client.get(origin_url + "/ping") as pong:
            assert await pong.read() == b"pong"
        await reply.write(document[40:])
        return reply

    origin_app = web.Application()
    origin_app.router.add_get("/v1/jwks", jwks)
    origin_app.router.add_get("/ping", ping)
    runner, sock = web.AppRunner(origin_app), listening_socket()
    origin_url = url_of(sock)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    keyring = KeyRing(
        [write_key(tmp_path / "edge.pem")],
        jwks_url=origin_url + "/v1/jwks",
        min_refetch_s=0,
        clock=FakeClock(1_700_000_000),
    )
    try:
        async with aiohttp.ClientSession() as session:
            assert await keyring.refresh(session)
    finally:
        await runner.cleanup()
    assert origin_key.kid in keyring.keys
