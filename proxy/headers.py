"""Header rules for forwarding, pure functions over multidicts.

Hop-by-hop headers (RFC 9110 section 7.6.1, plus the legacy Keep-Alive,
Proxy-Connection and Trailer) and every header named in `Connection` are
dropped in both directions, and `Expect` from requests (the edge answers
it); `Content-Length` is never copied (the client
library recomputes it from the body it sends). Duplicate headers keep their
order, so several `Set-Cookie` lines all reach the client.
"""

from __future__ import annotations

from multidict import CIMultiDict, CIMultiDictProxy

__all__ = [
    "HOP_BY_HOP",
    "connection_tokens",
    "forwarded_request_headers",
    "forwarded_response_headers",
    "has_unsupported_transfer_coding",
]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_NEVER_COPIED = frozenset({"content-length", "host"})
_FORWARDED = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"})
# The same claims (client address, scheme, host) in other spellings: passed on
# only from a trusted proxy, never rewritten.
_OTHER_FORWARDED = frozenset({"forwarded", "x-real-ip"})

Headers = CIMultiDict[str] | CIMultiDictProxy[str]


def connection_tokens(headers: Headers) -> frozenset[str]:
    """Header names listed in every `Connection` header, lower-cased."""
    names: set[str] = set()
    for value in headers.getall("Connection", ()):
        names.update(token.strip().lower() for token in value.split(",") if token.strip())
    return frozenset(names)


# What the server's parser undoes on a request body. Any other transfer coding
# would reach the origin still applied, with no header left to say so.
_UNDONE_TRANSFER_CODINGS = frozenset({"chunked", "identity"})


def has_unsupported_transfer_coding(headers: Headers) -> bool:
    """Is the body in a transfer coding besides `chunked`? (RFC 9112 6.1: answer 501.)"""
    if "Transfer-Encoding" not in headers:  # nearly every request: no generator built
        return False
    codings = (
        coding.strip().lower()
        for value in headers.getall("Transfer-Encoding", ())
        for coding in value.split(",")
    )
    return any(coding and coding not in _UNDONE_TRANSFER_CODINGS for coding in codings)


# The edge itself answered `Expect: 100-continue` and holds the body: the origin,
# asked to send a 100 first, might never, and the request would hang.
_ANSWERED_BY_THE_EDGE = frozenset({"expect"})
_ALWAYS_DROPPED = HOP_BY_HOP | _NEVER_COPIED
_DROPPED_FROM_REQUESTS = _ALWAYS_DROPPED | _FORWARDED | _ANSWERED_BY_THE_EDGE
_DROPPED_FROM_UNTRUSTED = _DROPPED_FROM_REQUESTS | _OTHER_FORWARDED


def _end_to_end_pairs(headers: Headers, drop: frozenset[str]) -> list[tuple[str, str]]:
    if "Connection" in headers:
        drop = drop | connection_tokens(headers)
    return [(name, value) for name, value in headers.items() if name.lower() not in drop]


def forwarded_request_headers(
    incoming: Headers,
    *,
    peer: str,
    scheme: str,
    host: str | None,
    trust_forwarded: bool,
    origin_host: str | None,
) -> CIMultiDict[str]:
    """Headers for the origin: end-to-end ones, X-Forwarded-*, and Host.

    `trust_forwarded`: the peer is a trusted proxy, so incoming X-Forwarded-*
    values are kept (and the peer appended); otherwise they are replaced, and
    `Forwarded` and `X-Real-IP` are dropped.
    `origin_host`: the Host to send, or None to pass the client's through.
    """
    # X-Forwarded-* and Host are among the dropped names: each is added once, below.
    drop = _DROPPED_FROM_REQUESTS if trust_forwarded else _DROPPED_FROM_UNTRUSTED
    pairs = _end_to_end_pairs(incoming, drop)
    prior_for = ", ".join(incoming.getall("X-Forwarded-For", ())) if trust_forwarded else ""
    pairs.append(("X-Forwarded-For", f"{prior_for}, {peer}" if prior_for else peer))
    proto = incoming.get("X-Forwarded-Proto") if trust_forwarded else None
    pairs.append(("X-Forwarded-Proto", proto or scheme))
    forwarded_host = incoming.get("X-Forwarded-Host") if trust_forwarded else None
    if forwarded_host or host:
        pairs.append(("X-Forwarded-Host", forwarded_host or host or ""))
    sent_host = origin_host if origin_host is not None else host
    if sent_host:
        pairs.append(("Host", sent_host))
    return CIMultiDict(pairs)


def forwarded_response_headers(upstream: Headers) -> CIMultiDict[str]:
    return CIMultiDict(_end_to_end_pairs(upstream, _ALWAYS_DROPPED))
