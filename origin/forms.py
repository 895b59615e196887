"""Reading a request's form or JSON body: a body that cannot be read is a 400, never a 500.

A body that does not decode from its `Content-Encoding` raises aiohttp's
RequestPayloadError; it is the client's fault like any other unreadable body.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from multidict import MultiDictProxy

from origin.errors import BadRequest


async def read_form(
    request: web.Request,
) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    """`request.post()`, with aiohttp's ValueError (a multipart body without its
    boundary, bytes that are not the declared charset) and LookupError (a charset
    Python does not know) as Clerk's 400."""
    try:
        return await request.post()
    except (ValueError, LookupError, web.RequestPayloadError) as exc:
        raise BadRequest("The request body is not a readable form") from exc


async def read_json(request: web.Request) -> Any:
    """The body as strict JSON (RFC 8259: UTF-8, whatever charset the request names).

    Lone surrogates, `NaN` and numbers that overflow to infinity are refused:
    once stored they could be written into no JSON answer or token again.
    """
    try:
        body = await request.read()
    except web.RequestPayloadError as exc:
        raise BadRequest("The request body could not be read", code="request_body_invalid") from exc
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("The body is not valid JSON", code="request_body_invalid") from exc
