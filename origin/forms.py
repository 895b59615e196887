"""Reading a request's form: a body that is not a readable form is a 400, never a 500."""

from __future__ import annotations

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
