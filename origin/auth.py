"""Bearer secret checks for the backend and `/__origin` admin APIs."""

from __future__ import annotations

import hmac

from aiohttp import web

from origin.errors import Unauthorized


def require_bearer(request: web.Request, secret: str) -> None:
    """401 unless the request carries `Authorization: Bearer <secret>` (constant-time)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    presented = value.strip().encode() if scheme.lower() == "bearer" else b""
    if not hmac.compare_digest(presented, secret.encode()):
        raise Unauthorized(
            "The provided secret key is invalid or missing",
            code="authentication_invalid",
        )
