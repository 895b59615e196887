"""One signature for identical clones asked for in the same second.

Tabs of one session refresh together, and each posts the same token: their
clones are identical but for the fresh `jti` (every claim, `iat` included,
and the header are equal), so the first one is signed and the others, for
the rest of that second, receive the same token. A clone differing in any
claim (another `oiat`, another organization, an `fva` that aged) is signed
on its own. Entries live one second and the table is bounded. Clones that
are still waiting for the same signing batch when they arrive share its
one call instead (`batch.py`, under the same identity); this table serves
the ones asked for after that token was signed.
"""

from __future__ import annotations

from collections.abc import Callable

from minter import Clone, SigningKey

from .expiring import ExpiringTable

__all__ = ["Coalescer"]


class Coalescer:
    def __init__(self, *, clock: Callable[[], float], max_entries: int = 65536) -> None:
        self._recent: ExpiringTable[tuple[str, bytes], str] = ExpiringTable(
            max_entries=max_entries, ttl_s=1.0, clock=clock
        )
        self.hits = 0

    def recent(self, clone: Clone, key: SigningKey) -> tuple[tuple[str, bytes], str | None]:
        """The identity of this clone, and a token already signed for it, if any."""
        identity = (key.kid, clone.identity())
        jwt = self._recent.get(identity)
        if jwt is not None:
            self.hits += 1
        return identity, jwt

    def keep(self, identity: tuple[str, bytes], jwt: str) -> None:
        self._recent.set(identity, jwt)
