"""Learning sign-outs from the traffic the edge forwards.

Recognised shapes (on the raw path, after the prefix):
`POST /v1/client/sessions/{sid}/end`, `POST .../remove`,
`DELETE /v1/client/sessions/{sid}` (or `POST` with `_method=DELETE`), and
`DELETE /v1/client` and `DELETE /v1/client/sessions` (what clerk-js's
`signOut()` sends, as `POST ?_method=DELETE`), which name no session:
then every session id the edge saw on that client's token requests, and
every one in the origin's answer, is revoked. A sign-out is recorded only
after the origin answered it with 2xx, so nobody can knock someone else's
session off the edge with an unauthenticated request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs

import orjson

__all__ = ["SignOut", "session_ids_in", "sign_out_of"]

_SESSION_SIGN_OUT = re.compile(
    r"/v1/client/sessions/(?P<sid>[A-Za-z0-9_]{1,128})(?P<action>/end|/remove)?"
)
_WHOLE_CLIENT = frozenset({"/v1/client", "/v1/client/sessions"})
_MAX_ANSWER_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SignOut:
    session_id: str | None  # None: the whole client


def _effective_method(method: str, query: str) -> str:
    if method == "POST":
        override = parse_qs(query).get("_method")
        if override and override[0].upper() == "DELETE":
            return "DELETE"
    return method


def sign_out_of(method: str, path: str, query: str) -> SignOut | None:
    """Is this request a sign-out, and of which session?"""
    method = _effective_method(method.upper(), query)
    if path in _WHOLE_CLIENT:
        return SignOut(None) if method == "DELETE" else None
    match = _SESSION_SIGN_OUT.fullmatch(path)
    if match is None:
        return None
    if match["action"] is not None:
        return SignOut(match["sid"]) if method == "POST" else None
    return SignOut(match["sid"]) if method == "DELETE" else None


def session_ids_in(body: bytes) -> set[str]:
    """Session ids listed in a Clerk client/session answer (`{"response": ...}`)."""
    if len(body) > _MAX_ANSWER_BYTES:
        return set()
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return set()
    found: set[str] = set()
    for part in (
        (document.get("response"), document.get("client")) if isinstance(document, dict) else ()
    ):
        if not isinstance(part, dict):
            continue
        if part.get("object") == "session" and isinstance(part.get("id"), str):
            found.add(part["id"])
        for session in part.get("sessions") or ():
            if isinstance(session, dict) and isinstance(session.get("id"), str):
                found.add(session["id"])
    return found
