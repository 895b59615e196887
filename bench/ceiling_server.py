"""The ceiling's HTTP half: a bare aiohttp handler answering the same bytes as an edge mint."""

from __future__ import annotations

import sys

from aiohttp import web

BODY = b'{"object":"token","jwt":"' + b"x" * int(sys.argv[2]) + b'"}'


async def answer(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(
        body=BODY,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


app = web.Application()
app.router.add_route("*", "/{tail:.*}", answer)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
