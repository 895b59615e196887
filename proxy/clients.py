"""Which client a request comes from, as a hash of its credential.

A session's edge mints are bound to the client that the origin last issued
its token to through this edge (`minter.policy`): a browser's `__client`
cookie, or a native client's `authorization` header. Only a hash of it is
kept: 128 bits of SHA-256 (`credential_digest`). Not the 48-bit hint the
logs use (`tokenlog.token_hint`): whoever can read the store (Redis) and
holds a stolen token could search 2^48 values for a cookie with the bound
hash, and have the token cloned from the victim's fresher claims.
"""

from __future__ import annotations

import hashlib
import re

from aiohttp import web

__all__ = ["client_key", "credential_digest"]


def client_key(request: web.Request) -> str | None:
    """The hash naming the client: of its `__client` cookie or native `authorization`."""
    credential = _client_cookie(request) or request.headers.get("Authorization")
    return credential_digest(credential) if credential else None


def credential_digest(credential: str) -> str:
    """32 hex characters (128 bits) of SHA-256 of a client credential."""
    return hashlib.sha256(credential.encode("utf-8", "surrogatepass")).hexdigest()[:32]


# RFC 6265 section 4.2.1: cookie-pair *( "; " cookie-pair ), no quotes, no spaces.
_PLAIN_PAIR = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+=[!#-+\--:<-\[\]-~]*"
_PLAIN_COOKIES = re.compile(f"{_PLAIN_PAIR}(?:; {_PLAIN_PAIR})*")


def _client_cookie(request: web.Request) -> str | None:
    """`request.cookies.get("__client")`, without building a Morsel per cookie.

    A browser's Cookie header is a plain RFC 6265 cookie-string, which reads
    one way only: there the last `__client=` pair is the value, as aiohttp's
    parser has it. Anything else (quotes, stray spaces, pairs without `=`)
    is left to aiohttp's parser. `tests/proxy/test_client_key.py` checks the
    two against each other.
    """
    header = request.headers.get("Cookie")
    if not header or "__client" not in header:
        return None
    if not _PLAIN_COOKIES.fullmatch(header):
        return request.cookies.get("__client")
    value = None
    for pair in header.split("; "):
        if pair.startswith("__client="):
            value = pair[9:]
    return value
