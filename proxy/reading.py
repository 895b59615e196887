"""Reading a whole body, up to a cap.

`StreamReader.read(n)` answers with whatever has arrived so far, not with
`n` bytes: a body split over several TCP segments (browsers often send a
POST's headers and body apart, and a large JWKS spans several reads) comes
back in pieces, so it is read until EOF.
"""

from __future__ import annotations

from aiohttp import StreamReader

__all__ = ["read_capped_stream"]


async def read_capped_stream(stream: StreamReader, limit: int) -> bytes | None:
    """The whole stream, or None as soon as it is longer than `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while not stream.at_eof():
        chunk = await stream.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return None
    return b"".join(chunks)
