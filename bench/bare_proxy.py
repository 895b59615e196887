"""A bare aiohttp reverse proxy: what forwarding costs with none of the edge's work.

    python bench/bare_proxy.py PORT ORIGIN_URL

One shared client session, hop-by-hop headers dropped, both bodies streamed:
the floor under the edge's forwarding in `bench/instructions.py`.
"""

from __future__ import annotations

import sys

import aiohttp
from aiohttp import web

ORIGIN = sys.argv[2]
_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host"})
SESSION = web.AppKey("session", aiohttp.ClientSession)


async def open_session(app: web.Application) -> None:
    app[SESSION] = aiohttp.ClientSession(auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar())


async def forward(request: web.Request) -> web.StreamResponse:
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP]
    async with request.app[SESSION].request(
        request.method, ORIGIN + request.raw_path, headers=headers, allow_redirects=False
    ) as answer:
        reply = web.StreamResponse(status=answer.status, reason=answer.reason)
        reply.headers.extend((k, v) for k, v in answer.headers.items() if k.lower() not in _HOP)
        if answer.content_length is not None:
            reply.content_length = answer.content_length
        await reply.prepare(request)
        async for chunk in answer.content.iter_chunked(64 * 1024):
            await reply.write(chunk)
        await reply.write_eof()
        return reply


app = web.Application()
app.on_startup.append(open_session)
app.router.add_route("*", "/{tail:.*}", forward)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
