"""Reading a whole body, up to a cap.

`StreamReader.read(n)` answers with whatever has arrived so far, not with
`n` bytes: a body split over several TCP segments (browsers often send a
POST's headers and body apart, and a large JWKS spans several reads) comes
back in pieces, so it is read until EOF.

`Expect: 100-continue` is answered when the body is first read
(`send_continue`), not when the request arrives: an answer that the
headers already decide (a 413 for a `Content-Length` over the cap, a 429)
goes out instead of the `100`, and the client is not asked for a body that
would be thrown away (RFC 9110 10.1.1). Any other expectation is ignored,
as RFC 9110 allows, rather than answered with aiohttp's plain-text 417.
"""

from __future__ import annotations

import asyncio

from aiohttp import HttpVersion11, StreamReader, web

__all__ = [
    "BODY_IDLE_S",
    "BodyStalled",
    "expect_continue",
    "next_piece",
    "read_capped",
    "read_capped_stream",
    "send_continue",
]

# `server.body_timeout_s`, on the app: how long a request body may stop arriving.
BODY_IDLE_S = web.AppKey("body_idle_s", float)


_CONTINUE_OWED = web.RequestKey("continue_owed", bool)


async def expect_continue(request: web.Request) -> None:
    """The route's expect handler: note a `100-continue` expectation, send nothing yet."""
    members = request.headers.get("Expect", "").lower().split(",")
    if request.version == HttpVersion11 and "100-continue" in (m.strip() for m in members):
        request[_CONTINUE_OWED] = True


async def send_continue(request: web.Request) -> None:
    """Send the `100 Continue` a request expects, once, before its body is read."""
    # The header first: a request without it (nearly all) costs no failed lookup.
    if "Expect" in request.headers and request.pop(_CONTINUE_OWED, False):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer's own size is counted from here


class BodyStalled(Exception):
    """The client stopped sending its body: nothing arrived for `server.body_timeout_s`."""


async def next_piece(stream: StreamReader, size: int, idle_s: float | None) -> bytes:
    """Up to `size` bytes; BodyStalled when none arrive within `idle_s` (None: no limit).
    A body already received whole is read without a timer."""
    if idle_s is None or stream.is_eof():
        return await stream.read(size)
    try:
        async with asyncio.timeout(idle_s):
            return await stream.read(size)
    except TimeoutError:
        raise BodyStalled from None


async def read_capped_stream(
    stream: StreamReader, limit: int, *, idle_s: float | None = None
) -> bytes | None:
    """The whole stream, or None as soon as it is longer than `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while not stream.at_eof():
        chunk = await next_piece(stream, limit + 1 - size, idle_s)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return None
    return b"".join(chunks)


async def read_capped(request: web.Request, limit: int) -> bytes | None:
    """The whole request body, or None when it is longer than `limit` bytes;
    BodyStalled when it stops arriving for `server.body_timeout_s`."""
    if request.content_length is not None and request.content_length > limit:
        return None
    await send_continue(request)
    return await read_capped_stream(request.content, limit, idle_s=request.app.get(BODY_IDLE_S))
