"""The bearer secret of the edge's own endpoints (push, admin)."""

from __future__ import annotations

import hmac

from aiohttp import web

__all__ = ["bearer_matches"]


def bearer_matches(request: web.Request, secret: str) -> bool:
    """`Authorization: Bearer <secret>`, compared in constant time; never with no secret.

    Header bytes that are not UTF-8 reach here as surrogate escapes: they are
    compared as the bytes they were (and match nothing), never an error.
    """
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    return (
        bool(secret)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(
            presented.strip().encode("utf-8", "surrogateescape"), secret.encode("utf-8")
        )
    )
