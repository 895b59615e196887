"""The in-process store: bounded expiring tables, one event loop, no locks needed.

Each table (`proxy/expiring.py`) is bounded by `max_entries`; when full, the
least recently used entry goes first. Records live as long as claims can be
minted from them (`record_ttl_s`, the outage bound); tombstones, stale marks,
client bindings and client session lists as long as `revocation_ttl_s`.

Kept compact, for a million sessions in well under 1.5 GB (`bench/memory.py`):

- What a session's refreshes read and write together (its claims records, one
  per organization, and the client it was served to) lives in one small
  tuple in one table keyed by session id, instead of one table per
  fact with its own keys and cache links. Each fact carries its own expiry,
  so the lifetimes above hold exactly; the table's entry lives as long as the
  longest of them from the session's last write, so it never outlives what
  it holds by more than that.
- A record is kept as bytes: its expiry, `oiat`, `origin_lifetime_s` and
  the length of its `cat` in a fixed header, then `cat`, then the orjson
  encoding of the claims, a third of the size of the parsed claims dict.
  `remember` compares `oiat` from the header without decoding; the claims
  that `state` returns are decoded on first use (about 2 us for a Clerk v2
  payload), which a refresh posting claims as fresh as these never needs.

Revocation tombstones and stale marks keep tables of their own: under memory
pressure, evicting a busy session's records must never evict a sign-out.
Those tables have the same bound. Should more sign-outs (or stale marks)
arrive within `revocation_ttl_s` than they hold, the oldest are pushed out;
until the last of those would have expired, the store cannot say that a
session was not signed out, so it answers `StoreUnavailable`, as Redis does
when it is down: refreshes go to the origin (the edge mints none) and a
warning is logged. `ping` (and so `/readyz`) stays true meanwhile: the edge
still forwards and sends refreshes to the origin, and taking it out of a
balancer would turn a flood of sign-outs into an outage.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import orjson

from minter import ClaimsRecord, SessionState

from ..expiring import ExpiringTable
from .base import Settled, StoreUnavailable

__all__ = ["MemoryStore"]

log = logging.getLogger(__name__)

_MAX_SESSIONS_PER_CLIENT = 64

# The record's expiry (timer seconds), oiat, origin lifetime (-1: unknown), cat length
# (-1: no cat).
_HEADER = struct.Struct("<dqqh")


def _pack(record: ClaimsRecord, expires: float) -> bytes:
    claims = record.claims if isinstance(record.claims, dict) else dict(record.claims)
    cat = b"" if record.cat is None else record.cat.encode("utf-8")
    lifetime = -1 if record.origin_lifetime_s is None else record.origin_lifetime_s
    cat_length = -1 if record.cat is None else len(cat)
    header = _HEADER.pack(expires, record.oiat, lifetime, cat_length)
    return header + cat + orjson.dumps(claims)


def _unpack(packed: bytes) -> ClaimsRecord:
    _, oiat, lifetime, cat_length = _HEADER.unpack_from(packed)
    start = _HEADER.size + max(cat_length, 0)
    return ClaimsRecord(
        oiat=oiat,
        cat=None if cat_length < 0 else packed[_HEADER.size : start].decode("utf-8"),
        claims=_PackedClaims(packed, start),
        origin_lifetime_s=None if lifetime < 0 else lifetime,
    )


class _PackedClaims(Mapping[str, Any]):
    """A record's claims, decoded from its bytes the first time they are read."""

    __slots__ = ("_decoded", "_packed", "_start")

    def __init__(self, packed: bytes, start: int) -> None:
        self._packed, self._start = packed, start
        self._decoded: dict[str, Any] | None = None

    def _claims(self) -> dict[str, Any]:
        if self._decoded is None:
            self._decoded = orjson.loads(memoryview(self._packed)[self._start :])
        return self._decoded

    def __getitem__(self, name: str) -> Any:
        return self._claims()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._claims())

    def __len__(self) -> int:
        return len(self._claims())


def _live(packed: bytes | None, now: float) -> bytes | None:
    if packed is None or not now < _HEADER.unpack_from(packed)[0]:
        return None
    return packed


# One session's records (packed, per organization) and its client binding:
# (organization_id, record, others, client_key, client_expires). The first
# organization's record sits in a field of its own; a session that has been
# refreshed in several organizations keeps the others as (organization_id,
# record) pairs.
#
# Plain tuples of strings, bytes and numbers, replaced on each write, rather
# than an object with slots: CPython's garbage collector stops tracking such a
# tuple after its first pass (a dict or any other object inside would keep it
# tracked), so a full collection does not walk a million sessions. With a
# slotted object per session it did, stopping the event loop for about half a
# second each time (`bench/memory.py` prints the pause).
_Others = tuple[tuple[str, bytes], ...]
_Session = tuple[str, bytes | None, _Others, str | None, float]
_NO_SESSION: _Session = ("", None, (), None, 0.0)


def _record_for(session: _Session, organization_id: str, now: float) -> bytes | None:
    first_organization, record, others, _, _ = session
    if organization_id == first_organization:
        return _live(record, now)
    for other, kept in others:
        if other == organization_id:
            return _live(kept, now)
    return None


def _with_record(session: _Session, organization_id: str, packed: bytes, now: float) -> _Session:
    first_organization, record, others, client_key, client_expires = session
    if organization_id == first_organization or _live(record, now) is None:
        others = tuple((org, kept) for org, kept in others if org != organization_id)
        return organization_id, packed, others, client_key, client_expires
    others = tuple(
        (org, kept) for org, kept in others if org != organization_id and _live(kept, now)
    )
    return (
        first_organization,
        record,
        (*others, (organization_id, packed)),
        client_key,
        client_expires,
    )


def _with_client(session: _Session, client_key: str, client_expires: float) -> _Session:
    first_organization, record, others, _, _ = session
    return first_organization, record, others, client_key, client_expires


def _client_at(session: _Session, now: float) -> str | None:
    _, _, _, client_key, client_expires = session
    return client_key if now < client_expires else None


class MemoryStore:
    def __init__(
        self,
        *,
        max_entries: int,
        record_ttl_s: float,
        revocation_ttl_s: float,
        timer: Callable[[], float],
    ) -> None:
        self._timer = timer
        self._record_ttl_s = record_ttl_s
        self._revocation_ttl_s = revocation_ttl_s
        self._sessions: ExpiringTable[str, _Session] = ExpiringTable(
            max_entries=max_entries, ttl_s=max(record_ttl_s, revocation_ttl_s), clock=timer
        )
        self._revoked: ExpiringTable[str, bool] = ExpiringTable(
            max_entries=max_entries, ttl_s=revocation_ttl_s, clock=timer
        )
        self._stale_sessions: ExpiringTable[str, int] = ExpiringTable(
            max_entries=max_entries, ttl_s=revocation_ttl_s, clock=timer
        )
        self._stale_users: ExpiringTable[str, int] = ExpiringTable(
            max_entries=max_entries, ttl_s=revocation_ttl_s, clock=timer
        )
        self._client_sessions: ExpiringTable[str, tuple[str, ...]] = ExpiringTable(
            max_entries=max_entries, ttl_s=revocation_ttl_s, clock=timer
        )
        self._forgotten_until = 0.0  # a pushed-out sign-out or stale mark lived until then
        # Claims assembled before this store began are stale (`base.py`): an edge that
        # restarted has forgotten the sign-outs and the freshest claims it knew.
        self._born_mark = int(timer()) - 1

    def _vouch(self) -> None:
        """Refuse to answer while a sign-out or stale mark pushed out by the bound still lives."""
        if self._forgotten_until and self._timer() < self._forgotten_until:
            raise StoreUnavailable("sign-outs were pushed out of the memory store's bound")

    def _keep_mark(self, table: ExpiringTable[str, Any], key: str, value: Any) -> None:
        pushed_out_until = table.set(key, value)
        if pushed_out_until > self._forgotten_until:
            if not self._forgotten_until or self._timer() >= self._forgotten_until:
                log.warning(
                    "more sign-outs or stale marks than store.max_sessions within their"
                    " lifetime: no edge mints for %.0f s",
                    pushed_out_until - self._timer(),
                )
            self._forgotten_until = pushed_out_until

    async def start(self) -> None:
        return None  # its data set began when it was built

    async def state(self, session_id: str, organization_id: str, user_id: str) -> SessionState:
        self._vouch()
        marks = [
            mark
            for mark in (self._stale_sessions.get(session_id), self._stale_users.get(user_id))
            if mark is not None
        ]
        marks.append(self._born_mark)
        session = self._sessions.get(session_id)
        freshest = client_key = None
        if session is not None:
            now = self._timer()
            packed = _record_for(session, organization_id, now)
            freshest = None if packed is None else _unpack(packed)
            client_key = _client_at(session, now)
        return SessionState(
            revoked=session_id in self._revoked,
            stale_mark=max(marks),
            freshest=freshest,
            client_key=client_key,
        )

    async def remember(self, session_id: str, organization_id: str, record: ClaimsRecord) -> bool:
        now = self._timer()
        session = self._sessions.get(session_id) or _NO_SESSION
        current = _record_for(session, organization_id, now)
        if current is not None and _HEADER.unpack_from(current)[1] > record.oiat:
            return False
        packed = _pack(record, now + self._record_ttl_s)
        # The entry lives on from this write.
        self._sessions.set(session_id, _with_record(session, organization_id, packed, now))
        return True

    async def settle(
        self, session_id: str, organization_id: str, *, oiat: int, record: ClaimsRecord | None
    ) -> Settled:
        self._vouch()
        if session_id in self._revoked:
            return Settled.REVOKED
        mark = self._stale_sessions.get(session_id)
        if mark is not None and mark >= oiat:
            return Settled.SUPERSEDED
        session = self._sessions.get(session_id)
        stored = None if session is None else _record_for(session, organization_id, self._timer())
        if stored is not None and _HEADER.unpack_from(stored)[1] > oiat:
            return Settled.SUPERSEDED
        if record is not None:
            await self.remember(session_id, organization_id, record)
        return Settled.KEPT

    async def is_revoked(self, session_id: str) -> bool:
        self._vouch()
        return session_id in self._revoked

    async def revoke(self, session_ids: Iterable[str]) -> None:
        for session_id in session_ids:
            self._keep_mark(self._revoked, session_id, True)

    async def mark_stale(
        self, *, session_ids: Iterable[str], user_ids: Iterable[str], mark: int
    ) -> None:
        for table, keys in ((self._stale_sessions, session_ids), (self._stale_users, user_ids)):
            for key in keys:
                self._keep_mark(table, key, max(mark, table.get(key) or mark))

    async def note_client_session(self, client_key: str, session_id: str) -> None:
        session = self._sessions.get(session_id) or _NO_SESSION
        expires = self._timer() + self._revocation_ttl_s
        self._sessions.set(session_id, _with_client(session, client_key, expires))
        # Written on every note, as Redis does, so the list lives on while in use; a
        # session noted again moves to the end, so the latest noted are the ones kept.
        known = self._client_sessions.get(client_key) or ()
        if not known or known[-1] != session_id:
            others = (noted for noted in known if noted != session_id)
            known = (*others, session_id)[-_MAX_SESSIONS_PER_CLIENT:]
        self._client_sessions.set(client_key, known)

    async def client_sessions(self, client_key: str) -> set[str]:
        return set(self._client_sessions.get(client_key) or ())

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
