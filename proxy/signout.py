"""Learning sign-outs from the traffic the edge forwards.

Recognised shapes (on the raw path, after the prefix):
`POST /v1/client/sessions/{sid}/end`, `POST .../remove`, `POST .../revoke`,
`POST /v1/me/sessions/{sid}/revoke` (the user ending a session on another
device, from their session list),
`DELETE /v1/client/sessions/{sid}` (or `POST` with `_method=DELETE`), and
`DELETE /v1/client` and `DELETE /v1/client/sessions` (what clerk-js's
`signOut()` sends, as `POST ?_method=DELETE`), which name no session:
then every session id the edge saw on that client's token requests, every
one in the origin's answer, and the session of each `__session` cookie the
request carried (`__session` or clerk-js's suffixed `__session_<suffix>`)
is revoked. A sign-out is recorded only after the origin answered it with
2xx, so nobody can knock someone else's session off the edge with an
unauthenticated request.

The path is matched as servers route it, not as written: escapes of
unreserved characters decoded (`%65nd` is `end`; the reference origin's
router decodes them) and dot segments removed (`.../tokens/../end` is
`.../end`, as nginx passes it on), both equivalences of RFC 3986 (6.2.2.2,
5.2.4), and runs of slashes merged (nginx's `merge_slashes`), so a sign-out
the origin carried out is not missed for its spelling.
On an action path (`/end`, `/remove`, `/revoke`) a `POST` is a sign-out
whatever `_method` says: an origin that answered it 2xx ended the session.
Reading more requests as sign-outs is the safe direction, since the origin
has vouched for each with its 2xx.

A `__session` cookie counts only when it holds a token that verifies
against the edge's key set (signature, issuer, and its `sid`): a forged
cookie names no session. Its expiry may be long past (the cookie outlives
its 60-second token, and sign-outs come late); a genuine old token of
someone else still only sends that session's refreshes to the origin,
which is the safe direction.
"""

from __future__ import annotations

import dataclasses
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

import orjson

from minter import PublicKey, TokenRejected, VerifyRules, verify_session_token
from minter.jws import b64url_decode, split_compact

__all__ = ["SignOut", "session_ids_in", "session_ids_in_cookies", "sign_out_of"]

_SESSION_SIGN_OUT = re.compile(
    r"/v1/(?:client|me)/sessions/(?P<sid>[A-Za-z0-9_]{1,128})(?P<action>/end|/remove|/revoke)?"
)
_WHOLE_CLIENT = frozenset({"/v1/client", "/v1/client/sessions"})
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_SLASHES = re.compile(r"/{2,}")
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_MAX_ANSWER_BYTES = 1024 * 1024
_SESSION_COOKIE = re.compile(r"__session(?:_[A-Za-z0-9_-]{1,64})?")
_MAX_SESSION_COOKIES = 8
_ANY_AGE = 2**53  # expiry is not what makes a sign-out cookie trustworthy


@dataclass(frozen=True, slots=True)
class SignOut:
    session_id: str | None  # None: the whole client


def _effective_method(method: str, query: str) -> str:
    if method == "POST":
        override = parse_qs(query).get("_method")
        if override and override[0].upper() == "DELETE":
            return "DELETE"
    return method


def _as_routed(path: str) -> str:
    """`path` with unreserved escapes decoded, runs of slashes merged and dot
    segments removed."""
    if "%" in path:
        path = _ESCAPE.sub(_unreserved_or_kept, path)
    if "//" in path:
        path = _SLASHES.sub("/", path)
    if "/." not in path:
        return path
    kept: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    ends_in_dot = path.endswith(("/.", "/.."))
    return "/" + "/".join(kept) + ("/" if ends_in_dot and kept else "")


def _unreserved_or_kept(escape: re.Match[str]) -> str:
    character = chr(int(escape[1], 16))
    return character if character in _UNRESERVED else escape[0]


def sign_out_of(method: str, path: str, query: str) -> SignOut | None:
    """Is this request a sign-out, and of which session?"""
    path = _as_routed(path)
    method = method.upper()
    if path in _WHOLE_CLIENT:
        return SignOut(None) if _effective_method(method, query) == "DELETE" else None
    match = _SESSION_SIGN_OUT.fullmatch(path)
    if match is None:
        return None
    if match["action"] is not None:
        return SignOut(match["sid"]) if method == "POST" else None
    return SignOut(match["sid"]) if _effective_method(method, query) == "DELETE" else None


def session_ids_in(body: bytes) -> set[str]:
    """Session ids listed in a Clerk client/session answer (`{"response": ...}`);
    a part not shaped as Clerk shapes it names none."""
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
        sessions = part.get("sessions")
        for session in sessions if isinstance(sessions, list) else ():
            if isinstance(session, dict) and isinstance(session.get("id"), str):
                found.add(session["id"])
    return found


def _claimed_sid(token: str, rules: VerifyRules) -> str | None:
    """The `sid` a token claims, unverified: only to know what to verify it against."""
    try:
        _, payload, _ = split_compact(token, max_bytes=rules.max_token_bytes)
        claims = orjson.loads(b64url_decode(payload, what="payload"))
    except (TokenRejected, orjson.JSONDecodeError):
        return None
    sid = claims.get("sid") if isinstance(claims, dict) else None
    return sid if isinstance(sid, str) and sid else None


def session_ids_in_cookies(
    cookies: Mapping[str, str],
    *,
    keys: Mapping[str, PublicKey],
    rules: VerifyRules,
    now: int,
) -> set[str]:
    """Session ids of the `__session` cookies whose tokens verify (expiry ignored)."""
    lenient = dataclasses.replace(rules, max_expired_s=_ANY_AGE)
    found: set[str] = set()
    names = [name for name in cookies if _SESSION_COOKIE.fullmatch(name)]
    for name in names[:_MAX_SESSION_COOKIES]:
        token = cookies[name]
        sid = _claimed_sid(token, rules)
        if sid is None:
            continue
        try:
            verify_session_token(token, session_id=sid, keys=keys, rules=lenient, now=now)
        except TokenRejected:
            continue
        found.add(sid)
    return found
