"""The tokens this edge signed lately, remembered by digest with what they say.

Nearly every refresh posts the token that the edge minted a minute earlier.
Its signature, encoding and header were settled when the edge produced those
exact bytes, so a token found here is verified by `minter.verify_signed_here`
from the header and claims that were signed (its key still accepted, its
claims checked against now and the path): no signature check, no base64, no
JSON. Anything not found here, including every token the origin signed, is
verified in full.

Entries map the SHA-256 digest of a whole token (a different token cannot
match one) to the header and claims dicts it was signed from, which nobody
changes after signing: about 1.5 KB each, so 150 MB at the default bound.
They are held `ttl_s` after signing (the token's lifetime plus the time it
may be posted after it expired) in a bounded table: past `max_entries` the
least recently used go first, and their tokens are then simply verified in
full. With several edges behind a balancer that is not sticky, a token comes
back to the edge that signed it one time in N; the others verify it in full.
`tokens.remember_signed = 0` turns this off.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from .expiring import ExpiringTable

__all__ = ["SignedHere", "SignedParts"]

SignedParts = tuple[Mapping[str, Any], Mapping[str, Any]]  # (header, claims) as signed


class SignedHere:
    def __init__(self, *, max_entries: int, ttl_s: float, clock: Callable[[], float]) -> None:
        self._digests: ExpiringTable[bytes, SignedParts] | None = (
            ExpiringTable(max_entries=max_entries, ttl_s=ttl_s, clock=clock)
            if max_entries
            else None
        )

    def __len__(self) -> int:
        return len(self._digests) if self._digests is not None else 0

    def add(self, token: str, header: Mapping[str, Any], claims: Mapping[str, Any]) -> None:
        """Remember `token`, signed here from `header` and `claims`."""
        if self._digests is not None:
            self._digests.set(_digest(token), (header, claims))

    def recall(self, token: str) -> SignedParts | None:
        """The header and claims `token` was signed from, if this edge signed it lately."""
        return None if self._digests is None else self._digests.get(_digest(token))

    def __contains__(self, token: str) -> bool:
        return self.recall(token) is not None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
