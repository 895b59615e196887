"""The SessionStore protocol: what the edge remembers about sessions.

Per session and organization: the freshest claims record (highest `oiat`).
Per session: a revocation tombstone and a stale mark; per user: a stale mark
(claims whose `oiat` is at or before the mark must come from the origin).
Per client credential: the session ids seen on its token requests, so a
`DELETE /v1/client` (which names no session) can be turned into revocations.

A store only knows the sign-outs it was told since its data began: a memory
store since the edge started, Redis since its data set was created (a Redis
that restarted empty starts a new one). Claims assembled before that may
belong to a session signed out meanwhile, and are older than the highest
`oiat` the edge may have issued, so `state` folds the store's own birth into
the stale mark: such claims go to the origin once, which answers for the
session as it is now, and edge mints resume from that answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Protocol

from minter import ClaimsRecord, SessionState

__all__ = ["SessionStore", "Settled", "StoreUnavailable"]


class StoreUnavailable(Exception):
    """The store cannot be read or written right now (e.g. Redis is down)."""


class Settled(StrEnum):
    """What the store says of a token signed at the edge, before it leaves."""

    KEPT = "kept"  # nothing changed meanwhile: it may leave
    REVOKED = "revoked"  # the session was signed out while it was being signed
    SUPERSEDED = "superseded"  # fresher claims or a stale mark of the session arrived


class SessionStore(Protocol):
    async def start(self) -> None:
        """When the edge starts: a store whose data set has not begun begins it now.
        StoreUnavailable when it cannot be reached (the first `state` then does it)."""

    async def state(self, session_id: str, organization_id: str, user_id: str) -> SessionState:
        """Revocation, stale mark and freshest record for one session and organization.

        The stale mark is the highest of the session's, the user's and the
        second before the store's data began."""

    async def remember(self, session_id: str, organization_id: str, record: ClaimsRecord) -> bool:
        """Keep `record` unless one with a higher `oiat` is stored; True when kept."""

    async def settle(
        self, session_id: str, organization_id: str, *, oiat: int, record: ClaimsRecord | None
    ) -> Settled:
        """After an edge mint of claims as of `oiat`, in one round trip over the
        session's own keys: REVOKED when the session is signed out, SUPERSEDED when
        claims fresher than `oiat` are stored for the session and organization (no
        token with a lower `oiat` than one already issued may leave) or the
        session's stale mark is at or after `oiat`, else keep `record` as
        `remember` would (when given) and answer KEPT.

        A user's stale mark (in Redis, a key in another slot) is read by `state`
        before signing only: a membership change that lands while a token is
        being signed counts as landing just after it, and the next refresh goes
        to the origin."""

    async def is_revoked(self, session_id: str) -> bool: ...

    async def revoke(self, session_ids: Iterable[str]) -> None: ...

    async def mark_stale(
        self, *, session_ids: Iterable[str], user_ids: Iterable[str], mark: int
    ) -> None:
        """Claims with `oiat <= mark` for these sessions or users go to the origin."""

    async def note_client_session(self, client_key: str, session_id: str) -> None:
        """The origin served `session_id` to this client: bind it, and list it for the client."""

    async def client_sessions(self, client_key: str) -> set[str]: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...
