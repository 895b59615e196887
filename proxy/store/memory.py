"""The in-process store: bounded TTL caches (cachetools), one event loop, no locks needed.

Each table is bounded by `max_entries`; when full, the least recently used
entry goes first. Records live as long as claims can be minted from them
(the outage bound); tombstones and stale marks as long as `revocation_ttl_s`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from cachetools import TTLCache

from minter import ClaimsRecord, SessionState

__all__ = ["MemoryStore"]

_MAX_SESSIONS_PER_CLIENT = 64


class MemoryStore:
    def __init__(
        self,
        *,
        max_entries: int,
        record_ttl_s: float,
        revocation_ttl_s: float,
        timer: Callable[[], float],
    ) -> None:
        self._records: TTLCache[tuple[str, str], ClaimsRecord] = TTLCache(
            max_entries, record_ttl_s, timer
        )
        self._revoked: TTLCache[str, bool] = TTLCache(max_entries, revocation_ttl_s, timer)
        self._stale_sessions: TTLCache[str, int] = TTLCache(max_entries, revocation_ttl_s, timer)
        self._stale_users: TTLCache[str, int] = TTLCache(max_entries, revocation_ttl_s, timer)
        self._client_sessions: TTLCache[str, tuple[str, ...]] = TTLCache(
            max_entries, revocation_ttl_s, timer
        )
        self._session_clients: TTLCache[str, str] = TTLCache(max_entries, revocation_ttl_s, timer)

    async def state(self, session_id: str, organization_id: str, user_id: str) -> SessionState:
        marks = [
            mark
            for mark in (self._stale_sessions.get(session_id), self._stale_users.get(user_id))
            if mark is not None
        ]
        return SessionState(
            revoked=session_id in self._revoked,
            stale_mark=max(marks) if marks else None,
            freshest=self._records.get((session_id, organization_id)),
            client_key=self._session_clients.get(session_id),
        )

    async def remember(self, session_id: str, organization_id: str, record: ClaimsRecord) -> bool:
        key = (session_id, organization_id)
        current = self._records.get(key)
        if current is not None and current.oiat > record.oiat:
            return False
        self._records[key] = record
        return True

    async def settle(
        self, session_id: str, organization_id: str, record: ClaimsRecord | None
    ) -> bool:
        if session_id in self._revoked:
            return True
        if record is not None:
            await self.remember(session_id, organization_id, record)
        return False

    async def is_revoked(self, session_id: str) -> bool:
        return session_id in self._revoked

    async def revoke(self, session_ids: Iterable[str]) -> None:
        for session_id in session_ids:
            self._revoked[session_id] = True

    async def mark_stale(
        self, *, session_ids: Iterable[str], user_ids: Iterable[str], mark: int
    ) -> None:
        for session_id in session_ids:
            self._stale_sessions[session_id] = max(mark, self._stale_sessions.get(session_id, mark))
        for user_id in user_ids:
            self._stale_users[user_id] = max(mark, self._stale_users.get(user_id, mark))

    async def note_client_session(self, client_key: str, session_id: str) -> None:
        self._session_clients[session_id] = client_key
        known = self._client_sessions.get(client_key, ())
        if session_id not in known:
            self._client_sessions[client_key] = (*known, session_id)[-_MAX_SESSIONS_PER_CLIENT:]

    async def client_sessions(self, client_key: str) -> set[str]:
        return set(self._client_sessions.get(client_key, ()))

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
