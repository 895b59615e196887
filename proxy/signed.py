"""The tokens this edge signed lately, remembered by digest.

Nearly every refresh posts the token that the edge minted a minute earlier.
Its signature, encoding and header were settled when the edge produced those
exact bytes, so a token found here is verified by `minter.verify_signed_here`
(its key still accepted, its claims checked against now and the path) without
a signature check or a strict JSON parse. Anything not found here, including
every token the origin signed, is verified in full.

Entries are SHA-256 digests of whole tokens (a different token cannot match
one), held `ttl_s` after signing (the token's lifetime plus the time it may
be posted after it expired) in a bounded table: past `max_entries` the
oldest go first, and their tokens are then simply verified in full. With
several edges behind a balancer that is not sticky, a token comes back to
the edge that signed it one time in N; the others verify it in full.
`tokens.remember_signed = 0` turns this off.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from .expiring import ExpiringTable

__all__ = ["SignedHere"]


class SignedHere:
    def __init__(self, *, max_entries: int, ttl_s: float, clock: Callable[[], float]) -> None:
        self._digests: ExpiringTable[bytes, bool] | None = (
            ExpiringTable(max_entries=max_entries, ttl_s=ttl_s, clock=clock)
            if max_entries
            else None
        )

    def __len__(self) -> int:
        return len(self._digests) if self._digests is not None else 0

    def add(self, token: str) -> None:
        if self._digests is not None:
            self._digests.set(_digest(token), True)

    def __contains__(self, token: str) -> bool:
        return self._digests is not None and _digest(token) in self._digests


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
