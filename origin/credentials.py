"""How a FAPI request names its client: the `__client` cookie (browsers) or the
`authorization` header (native apps, also flagged by `_is_native=1`).

The credential is an opaque random string; the database keeps only its SHA-256.
"""

from __future__ import annotations

import hashlib
import secrets

from aiohttp import web

from origin.state import OriginState, new_id
from origin.store import Client

CLIENT_COOKIE = "__client"
COOKIE_MAX_AGE_S = 365 * 24 * 3600


def is_native(request: web.Request) -> bool:
    flag = request.query.get("_is_native", "").lower()
    return flag in ("1", "true") or "Authorization" in request.headers


def credential_of(request: web.Request) -> str | None:
    if is_native(request):
        value = request.headers.get("Authorization", "").strip()
        if value[:7].lower() == "bearer ":
            value = value[7:].strip()
        return value or None
    return request.cookies.get(CLIENT_COOKIE) or None


def credential_hash(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()


def find_client(state: OriginState, request: web.Request) -> Client | None:
    credential = credential_of(request)
    if credential is None:
        return None
    return state.store.client_by_token_hash(credential_hash(credential))


def create_client(state: OriginState) -> tuple[Client, str]:
    credential = secrets.token_urlsafe(32)
    client = state.store.create_client(
        new_id("client"), credential_hash(credential), state.now_ms()
    )
    return client, credential


def find_or_create_client(state: OriginState, request: web.Request) -> tuple[Client, str | None]:
    """The request's client, and the new credential when one had to be created."""
    client = find_client(state, request)
    if client is not None:
        return client, None
    return create_client(state)


def hand_out(request: web.Request, response: web.StreamResponse, credential: str | None) -> None:
    """Give the client its credential: a cookie for browsers, a header for native apps.

    Native apps get the header on every answer that concerns their client, as
    Clerk's FAPI does; browsers get the cookie only when it is new.
    """
    if is_native(request):
        current = credential or credential_of(request)
        if current:
            response.headers["Authorization"] = current
    elif credential is not None:
        response.set_cookie(
            CLIENT_COOKIE,
            credential,
            path="/",
            httponly=True,
            samesite="Lax",
            max_age=COOKIE_MAX_AGE_S,
        )
