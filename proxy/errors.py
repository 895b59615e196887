"""Clerk-shaped error answers: the one place where failures become HTTP.

`{"errors": [{"code", "message", "long_message", "meta"}]}`, with
`Retry-After` on 429/503 (exposed to a browser's script, so that clerk-js
can wait as long as asked) and the token route's CORS headers. The token
route never answers 401 or 403 (clients sign the user out on those); only
the push and admin endpoints answer 401, to a caller without their secret.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from aiohttp import web

__all__ = ["clerk_error", "cors_headers", "json_response"]


_NO_ORIGIN = {"Vary": "Origin"}  # an answer that depends on Origin says so, sent or not


def cors_headers(request: web.Request) -> dict[str, str]:
    """The CORS headers the origin sends on FAPI answers: echo Origin, allow
    credentials, expose `Authorization` (native and dev-browser clients read it)."""
    origin = request.headers.get("Origin")
    if not origin:
        return _NO_ORIGIN
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Expose-Headers": "Authorization",
        "Vary": "Origin",
    }


def json_response(
    request: web.Request,
    status: int,
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    response = web.Response(
        status=status,
        body=body,
        content_type="application/json",
        headers={"Cache-Control": "no-store", **cors_headers(request), **(headers or {})},
    )
    return response


def clerk_error(
    request: web.Request,
    status: int,
    code: str,
    message: str,
    *,
    long_message: str | None = None,
    retry_after_s: int | None = None,
) -> web.Response:
    body = orjson.dumps(
        {
            "errors": [
                {
                    "code": code,
                    "message": message,
                    "long_message": long_message or message,
                    "meta": {},
                }
            ]
        }
    )
    headers: dict[str, str] | None = None
    if retry_after_s is not None:
        headers = {"Retry-After": str(retry_after_s)}
        if "Origin" in request.headers:  # else a browser's script cannot read it
            headers["Access-Control-Expose-Headers"] = "Authorization, Retry-After"
    return json_response(request, status, body, headers=headers)
