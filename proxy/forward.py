"""Forwarding to the origin: streamed both ways, headers by `headers.py`.

Two `ClientSession`s (no cookie jar, no automatic decompression, no
redirects followed; `Upstream` says which serves what) are injected. The
raw path and query reach the origin exactly as the client sent them, minus
the edge's `{prefix}` (the target is built from the raw string with
`encoded=True`, so nothing decodes or normalises `%2F`, `..` or `//`).
Connection failures become 502 and timeouts 504, in the Clerk error shape.

Request bodies are never read whole here: they are streamed, and when the
client framed the body with a Content-Length, the origin gets that same
length (the integer aiohttp's parser validated, which also bounds the stream),
so a known-length body is not turned into a chunked one. Bodies whose length
is unknown go on chunked. On the answer, `Content-Length` is taken from the
parsed answer; aiohttp drops it where a body is forbidden (1xx, 204) and
keeps it for HEAD and 304, as the origin sent it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .errors import clerk_error
from .headers import forwarded_request_headers, forwarded_response_headers
from .reading import BODY_IDLE_S, BodyStalled, next_piece, send_continue

__all__ = [
    "SKIP_AUTO_HEADERS",
    "OriginAnswer",
    "OriginFailure",
    "Upstream",
    "fetch_buffered",
    "forward_streaming",
]

_CHUNK = 64 * 1024
# Headers aiohttp would add on its own: the client's (or none) go on instead.
# Set once on the session (in app.py), not per request.
SKIP_AUTO_HEADERS = frozenset({"Accept", "Accept-Encoding", "User-Agent", "Content-Type"})
_NO_BODY_STATUSES = frozenset({204, 304})


class OriginFailure(Exception):
    """The origin could not be reached, timed out, or broke the connection."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind  # "connect" | "timeout" | "broken"


@dataclass(frozen=True, slots=True)
class Upstream:
    """How to reach the origin: the two client sessions, base URL and header policy.

    `session` streams forwarded requests, whose connections a client can hold
    open for as long as it dribbles its body; `buffered_session` carries the
    edge's own calls (refreshes and sign-outs read whole first, JWKS, probes),
    from a pool of its own, so that such clients can neither starve them nor
    make their wait for a connection count as origin failures.
    """

    session: aiohttp.ClientSession
    buffered_session: aiohttp.ClientSession
    base_url: str
    prefix: str
    preserve_host: bool
    trusted_proxies: frozenset[str]
    token_timeout: aiohttp.ClientTimeout
    stream_timeout: aiohttp.ClientTimeout

    def target(self, raw_target: str) -> URL:
        path, mark, query = raw_target.partition("?")
        if self.prefix and (path == self.prefix or path.startswith(self.prefix + "/")):
            path = path[len(self.prefix) :] or "/"
        return URL(self.base_url + path + mark + query, encoded=True)

    def request_headers(self, request: web.Request) -> CIMultiDict[str]:
        peer = request.remote or ""
        return forwarded_request_headers(
            request.headers,
            peer=peer,
            scheme=request.scheme,
            host=request.headers.get("Host"),
            trust_forwarded=peer in self.trusted_proxies,
            origin_host=None if self.preserve_host else _authority(self.base_url),
        )


@functools.lru_cache(maxsize=16)
def _authority(base_url: str) -> str:
    return URL(base_url).raw_authority


@dataclass(frozen=True, slots=True)
class OriginAnswer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


_BODY_STALLED = web.RequestKey("body_stalled", bool)
_CLIENT_GONE = web.RequestKey("client_gone", bool)


async def _stream_body(request: web.Request) -> AsyncIterator[bytes]:
    """The client's body, piece by piece. Its failures are the client's fault,
    whatever aiohttp's client makes of them: they are noted on the request."""
    idle_s = request.app.get(BODY_IDLE_S)
    try:
        while chunk := await next_piece(request.content, _CHUNK, idle_s):
            yield chunk
    except BodyStalled:
        request[_BODY_STALLED] = True
        raise
    except ConnectionResetError:
        request[_CLIENT_GONE] = True
        raise


def _streamed_request(
    upstream: Upstream, request: web.Request
) -> tuple[CIMultiDict[str], AsyncIterator[bytes] | None]:
    headers = upstream.request_headers(request)
    if not request.body_exists:
        return headers, None
    if request.content_length is not None:
        # The client stream is bounded to this length by the parser; aiohttp
        # then sends exactly these bytes instead of chunking them.
        headers["Content-Length"] = str(request.content_length)
    return headers, _stream_body(request)


def _failure(exc: BaseException) -> OriginFailure:
    if isinstance(exc, asyncio.TimeoutError):
        return OriginFailure("timeout")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return OriginFailure("connect")
    return OriginFailure("broken")


async def fetch_buffered(
    upstream: Upstream,
    request: web.Request,
    *,
    raw_path: str,
    body: bytes,
) -> OriginAnswer:
    """Send a (small, already read) request to the origin and read the whole answer.

    The edge reads these answers (a token, a sign-out's sessions), so it asks
    for them uncompressed, whatever the client accepts.
    """
    headers = upstream.request_headers(request)
    headers["Accept-Encoding"] = "identity"
    try:
        async with upstream.buffered_session.request(
            request.method,
            upstream.target(raw_path),
            headers=headers,
            data=body,
            allow_redirects=False,
            timeout=upstream.token_timeout,
        ) as response:
            content = await response.read()
            return OriginAnswer(response.status, response.headers, content)
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise _failure(exc) from exc


async def forward_streaming(upstream: Upstream, request: web.Request) -> web.StreamResponse:
    """Forward any request as it came, streaming both bodies."""
    reply: web.StreamResponse | None = None
    headers, body = _streamed_request(upstream, request)
    await send_continue(request)  # before the origin is asked: no 100 may follow its answer
    try:
        async with upstream.session.request(
            request.method,
            upstream.target(request.raw_path),
            headers=headers,
            data=body,
            allow_redirects=False,
            timeout=upstream.stream_timeout,
        ) as response:
            reply = web.StreamResponse(status=response.status, reason=response.reason)
            reply.headers.extend(forwarded_response_headers(response.headers))
            no_body = request.method == "HEAD" or response.status in _NO_BODY_STATUSES
            if response.content_length is not None:
                reply.content_length = response.content_length
            await reply.prepare(request)
            if not no_body:
                async for chunk in response.content.iter_chunked(_CHUNK):
                    await reply.write(chunk)
            await reply.write_eof()
            return reply
    except (TimeoutError, aiohttp.ClientError) as exc:
        if reply is not None and reply.prepared:
            # The status line is gone already: all that is left is to cut the answer short.
            if request.transport is not None:
                request.transport.close()
            return reply
        if request.get(_BODY_STALLED):
            raise BodyStalled from exc
        if request.get(_CLIENT_GONE):
            # Answered as on the token route: a 499, not an origin failure.
            raise ConnectionResetError("the client hung up mid-body") from exc
        failure = _failure(exc)
        status = 504 if failure.kind == "timeout" else 502
        message = "the origin timed out" if status == 504 else "the origin could not be reached"
        return clerk_error(request, status, "origin_unavailable", message)
