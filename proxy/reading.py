"""Reading a whole body, up to a cap.

`StreamReader.read(n)` answers with whatever has arrived so far, not with
`n` bytes: a body split over several TCP segments (browsers often send a
POST's headers and body apart, and a large JWKS spans several reads) comes
back in pieces, so it is read until EOF.
"""

from __future__ import annotations

import asyncio

from aiohttp import StreamReader, web

__all__ = ["BODY_IDLE_S", "BodyStalled", "next_piece", "read_capped_stream"]

# `server.body_timeout_s`, on the app: how long a request body may stop arriving.
BODY_IDLE_S = web.AppKey("body_idle_s", float)


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
