"""Reading a request's form or JSON body: a body that cannot be read is a 400, never a 500."""

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
    except (ValueError, LookupError) as exc:
        raise BadRequest("The request body is not a readable form") from exc


async def read_json(request: web.Request) -> Any:
    """The body as strict JSON (RFC 8259: UTF-8, whatever charset the request names).

    Lone surrogates, `NaN` and numbers that overflow to infinity are refused:
    once stored they could be written into no JSON answer or token again.
    """
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise BadRequest("The body is not valid JSON", code="request_body_invalid") from exc
