"""The token this edge signed last for each session, remembered by digest.

Nearly every refresh posts the token that the edge minted for that session a
minute earlier. Its signature, encoding and header were settled when the
edge produced those exact bytes, so a token found here is verified by
`minter.verify_signed_here` from the header and claims JSON it was signed
from (its key still accepted, its claims checked against now and the path):
no signature check, no base64, no strict JSON parse. Anything not found
here, including every token the origin signed and any older token of the
session, is verified in full.

One entry per session, packed in one bytes object: the SHA-256 digest of
the whole token (a different token cannot match it), then the two JSON
documents that were signed; about 1 KB in all with the table's own
(`bench/memory.py`). A later mint for the session replaces it. An entry
is held `ttl_s` after signing (the token's lifetime plus the time it may be
posted after it expired) in a table bounded by `max_entries` sessions: past
that, the least recently used go first, and their tokens are then simply
verified in full. With several edges behind a balancer that is not sticky,
a token comes back to the edge that signed it one time in N; the others
verify it in full. `tokens.remember_signed = 0` turns this off.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from .expiring import ExpiringTable

__all__ = ["SignedHere"]

_DIGEST_BYTES = 32
_LENGTH_BYTES = 2  # of the header JSON (about 110 bytes; a longer one is not remembered)
_HEADER_AT = _DIGEST_BYTES + _LENGTH_BYTES


class SignedHere:
    def __init__(self, *, max_entries: int, ttl_s: float, clock: Callable[[], float]) -> None:
        self._latest: ExpiringTable[str, bytes] | None = (
            ExpiringTable(max_entries=max_entries, ttl_s=ttl_s, clock=clock)
            if max_entries
            else None
        )

    def __len__(self) -> int:
        return len(self._latest) if self._latest is not None else 0

    def add(self, session_id: str, token: str, header_json: bytes, claims_json: bytes) -> None:
        """Remember `token`, just signed here for `session_id` from these JSON documents."""
        if self._latest is not None and len(header_json) < 1 << (8 * _LENGTH_BYTES):
            length = len(header_json).to_bytes(_LENGTH_BYTES, "big")
            self._latest.set(session_id, _digest(token) + length + header_json + claims_json)

    def recall(self, session_id: str, token: str) -> tuple[bytes, bytes] | None:
        """The header and claims JSON of `token`, if it is the last one signed here
        for `session_id`."""
        entry = None if self._latest is None else self._latest.get(session_id)
        if entry is None or not entry.startswith(_digest(token)):
            return None
        claims_at = _HEADER_AT + int.from_bytes(entry[_DIGEST_BYTES:_HEADER_AT], "big")
        return entry[_HEADER_AT:claims_at], entry[claims_at:]

    def knows(self, session_id: str, token: str) -> bool:
        return self.recall(session_id, token) is not None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
