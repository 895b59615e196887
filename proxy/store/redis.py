"""The shared store: Redis (or Valkey, or any Redis-protocol server) behind several edges.

Keys (`{sid}` is a Redis Cluster hash tag, so all keys of a session live in
one slot and every script touches one slot only):

    sm:{sid}:rec:<org>   hash  o = highest oiat, d = orjson [cat, origin_lifetime_s, claims]
                               TTL outage_max_claims_age_s + lifetime_s
    sm:{sid}:revoked     "1"   TTL revocation_ttl_s
    sm:{sid}:stale       mark  TTL revocation_ttl_s
    sm:{sid}:client      the client credential hash the origin last served it to,
                               TTL revocation_ttl_s
    sm:{u:<user>}:stale  mark  TTL revocation_ttl_s (its own slot: keyed by user)
    sm:{c:<client>}:sids list  the last 64 session ids seen, TTL revocation_ttl_s
    sm:born              mark  the second before this data set began; no TTL

Every key but `sm:born` expires. `sm:born` is written (SET NX) when an edge
starts, and by the first `state` that finds it missing: on a new Redis, and
on one that lost its data (restarted without persistence, flushed). Claims assembled before it are
stale (`base.py`), so the sign-outs such a Redis forgot cannot be minted
past: each session's next refresh goes to the origin once. It cannot see a
partial loss (the last second of an AOF, a failover to a lagging replica),
and under an `allkeys-*` eviction policy an evicted `sm:born` costs every
session one refresh at the origin.

Writes that compare are Lua scripts (atomic on the server): raising a
record is a compare-and-set on `oiat` (equal allowed, lower refused), a
stale mark only ever rises. `state` is one pipelined round trip (HMGET,
MGET, GET, GET); `settle` after an edge mint is one more (a script over the
session's keys). The user's
stale mark sits in another slot, so on Cluster that pipeline fans out to two
nodes in parallel; no script ever spans slots.

Failure: connect and command timeouts are explicit (`connect_timeout_s`,
`socket_timeout_s`); a broken connection is retried once at once on a
fresh one (that is how the edge reconnects after Redis restarts), a
timeout is not retried. Every Redis or socket error becomes
`StoreUnavailable`. A Redis that answers reads but refuses writes (out of
memory, a read-only replica) refuses `settle` too (its script declares that
it may write; Redis 7 or later), so no edge mints past a sign-out another
edge could not write. Sign-outs that could not be written wait in
`PendingRevocations` and are answered as revoked by this edge meanwhile;
`ping` is False while any wait (`/readyz` says "degraded"). Once some were
dropped from the full queue, the store answers `StoreUnavailable` until the
new data set that covers them has begun.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from minter import ClaimRejected, ClaimsRecord, SessionState
from minter.verify import MAX_TIME, check_kept_claims

from .base import Settled, StoreUnavailable
from .pending import PendingRevocations

__all__ = ["RedisStore", "too_old_for_script_flags"]

log = logging.getLogger(__name__)

_MAX_SESSIONS_PER_CLIENT = 64
_BORN_KEY = "sm:born"

_REMEMBER = """
local current = redis.call('HGET', KEYS[1], 'o')
if current and tonumber(current) > tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'o', ARGV[1], 'd', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS: record, revoked, session stale mark. ARGV: the minted oiat, the posted record
# to keep ("" for none) and its TTL. 0 kept, 1 revoked, 2 superseded.
# The shebang (no flags: may write) makes Redis refuse the script whenever it refuses
# writes (out of memory, a read-only replica), even when it would write nothing: a
# sign-out another edge could not write then stops this edge's mints too.
_SETTLE = """#!lua
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 1
end
local oiat = tonumber(ARGV[1])
local mark = tonumber(redis.call('GET', KEYS[3]))
local current = tonumber(redis.call('HGET', KEYS[1], 'o'))
if (mark and mark >= oiat) or (current and current > oiat) then
  return 2
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'o', ARGV[1], 'd', ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return 0
"""
_SETTLED = (Settled.KEPT, Settled.REVOKED, Settled.SUPERSEDED)

# KEYS: the mark. ARGV: the new mark and its TTL (0: no expiry, for `sm:born`).
_RAISE_MARK = """
local current = tonumber(redis.call('GET', KEYS[1]))
if not current or current < tonumber(ARGV[1]) then
  if tonumber(ARGV[2]) > 0 then
    redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  else
    redis.call('SET', KEYS[1], ARGV[1])
  end
end
return 1
"""

_NOTE_CLIENT = """
redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


def _record_key(session_id: str, organization_id: str) -> str:
    return f"sm:{{{session_id}}}:rec:{organization_id}"


def _revoked_key(session_id: str) -> str:
    return f"sm:{{{session_id}}}:revoked"


def _stale_key(session_id: str) -> str:
    return f"sm:{{{session_id}}}:stale"


def _bound_client_key(session_id: str) -> str:
    return f"sm:{{{session_id}}}:client"


def _user_stale_key(user_id: str) -> str:
    return f"sm:{{u:{user_id}}}:stale"


def _client_key(client_key: str) -> str:
    return f"sm:{{c:{client_key}}}:sids"


def _pack(record: ClaimsRecord) -> bytes:
    return orjson.dumps([record.cat, record.origin_lifetime_s, dict(record.claims)])


def _unpack(oiat: bytes | None, data: bytes | None) -> ClaimsRecord | None:
    """The record as `_pack` wrote it; ValueError for anything else."""
    if oiat is None or data is None:
        return None
    packed = orjson.loads(data)
    if not isinstance(packed, list) or len(packed) != 3:
        raise ValueError("a claims record that is not [cat, lifetime, claims]")
    cat, origin_lifetime_s, claims = packed
    if (
        not isinstance(claims, dict)
        or not isinstance(cat, str | None)
        or not (origin_lifetime_s is None or type(origin_lifetime_s) is int)
    ):
        raise ValueError("a claims record with members of the wrong type")
    kept_oiat = int(oiat)
    if not 0 <= kept_oiat < MAX_TIME or not 0 <= (origin_lifetime_s or 0) < MAX_TIME:
        raise ValueError("a claims record with a time out of range")
    # The claims the edge keeps passed the verifier; a clone reads `iat` and ages `fva`,
    # and the compiled `age_fva` refuses a float with a TypeError (a 500).
    try:
        check_kept_claims(claims)
    except ClaimRejected as exc:
        raise ValueError(f"a claims record with {exc.reason}") from exc
    return ClaimsRecord(oiat=kept_oiat, cat=cat, claims=claims, origin_lifetime_s=origin_lifetime_s)


class RedisStore:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        record_ttl_s: int,
        revocation_ttl_s: int,
        clock: Callable[[], float],
        max_pending: int = 100_000,
    ) -> None:
        self._redis = client
        self._clock = clock
        self._record_ttl_s = record_ttl_s
        self._revocation_ttl_s = revocation_ttl_s
        self._remember = client.register_script(_REMEMBER)
        self._settle = client.register_script(_SETTLE)
        self._raise_mark = client.register_script(_RAISE_MARK)
        self._note_client = client.register_script(_NOTE_CLIENT)
        self.pending = PendingRevocations(
            self._write_tombstones, begin_again=self._begin_again, max_pending=max_pending
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        connect_timeout_s: float,
        socket_timeout_s: float,
        record_ttl_s: int,
        revocation_ttl_s: int,
        clock: Callable[[], float],
    ) -> RedisStore:
        """A store on a new client; nothing connects until the first command."""
        client = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=connect_timeout_s,
            socket_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
            decode_responses=False,
        )
        return cls(
            client, record_ttl_s=record_ttl_s, revocation_ttl_s=revocation_ttl_s, clock=clock
        )

    def _vouch(self) -> None:
        """Refuse to answer between a dropped sign-out and the new data set that covers it."""
        if self.pending.dropped:
            raise StoreUnavailable("queued sign-outs were dropped; the store has not begun again")

    async def state(self, session_id: str, organization_id: str, user_id: str) -> SessionState:
        self._vouch()
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hmget(_record_key(session_id, organization_id), ["o", "d"])
                pipe.mget(
                    [
                        _revoked_key(session_id),
                        _stale_key(session_id),
                        _bound_client_key(session_id),
                    ]
                )
                pipe.get(_user_stale_key(user_id))
                pipe.get(_BORN_KEY)
                answers = await pipe.execute()
            (oiat, data), (revoked, session_mark, bound), user_mark, born = answers
            if born is None:
                born = await self._mark_birth()
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        try:
            marks = [
                int(born),
                *(int(mark) for mark in (session_mark, user_mark) if mark is not None),
            ]
            return SessionState(
                revoked=revoked is not None or session_id in self.pending,
                stale_mark=max(marks),
                freshest=_unpack(oiat, data),
                client_key=None if bound is None else bound.decode("utf-8"),
            )
        except ValueError as exc:  # JSON and UTF-8 errors too: not what this store wrote
            raise StoreUnavailable(f"unreadable data for {session_id}: {exc}") from exc

    async def start(self) -> None:
        try:
            await self._mark_birth()
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        try:
            version = str((await self._redis.info("server")).get("redis_version", ""))
        except (RedisError, OSError):  # INFO may be renamed or refused: not ours to judge
            return
        if too_old_for_script_flags(version):
            log.error(
                "Redis %s cannot run settle's script (it needs Redis 7 or later, or Valkey):"
                " every refresh will go to the origin",
                version,
            )

    async def _mark_birth(self) -> bytes:
        """Start a data set: the first edge to find none sets its mark, all read it."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(_BORN_KEY, int(self._clock()) - 1, nx=True)
            pipe.get(_BORN_KEY)
            created, born = await pipe.execute()
        if created:
            log.warning("a new Redis data set: claims assembled before now go to the origin once")
        return born  # type: ignore[no-any-return]

    async def _begin_again(self) -> None:
        """Sign-outs were lost on the way (`pending.py`): a new data set begins now."""
        await self._run(self._raise_mark(keys=[_BORN_KEY], args=[int(self._clock()) - 1, 0]))
        log.warning("a new data set begins: claims assembled before now go to the origin once")

    async def remember(self, session_id: str, organization_id: str, record: ClaimsRecord) -> bool:
        kept = await self._run(
            self._remember(
                keys=[_record_key(session_id, organization_id)],
                args=[record.oiat, _pack(record), self._record_ttl_s],
            )
        )
        return bool(kept)

    async def settle(
        self, session_id: str, organization_id: str, *, oiat: int, record: ClaimsRecord | None
    ) -> Settled:
        self._vouch()
        if session_id in self.pending:
            return Settled.REVOKED
        outcome = await self._run(
            self._settle(
                keys=[
                    _record_key(session_id, organization_id),
                    _revoked_key(session_id),
                    _stale_key(session_id),
                ],
                args=[oiat, b"" if record is None else _pack(record), self._record_ttl_s],
            )
        )
        return _SETTLED[int(outcome)]

    async def is_revoked(self, session_id: str) -> bool:
        self._vouch()
        if session_id in self.pending:
            return True
        return bool(await self._run(self._redis.exists(_revoked_key(session_id))))

    async def revoke(self, session_ids: Iterable[str]) -> None:
        ids = list(session_ids)
        if not ids:
            return
        try:
            await self._write_tombstones(ids)
        except StoreUnavailable:
            self.pending.add(ids)
            log.error("%d sign-outs queued: the store is unavailable", len(ids))
            raise

    async def _write_tombstones(self, session_ids: list[str]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for session_id in session_ids:
                pipe.set(_revoked_key(session_id), b"1", ex=self._revocation_ttl_s)
            await self._run(pipe.execute())

    async def mark_stale(
        self, *, session_ids: Iterable[str], user_ids: Iterable[str], mark: int
    ) -> None:
        keys = [_stale_key(s) for s in session_ids] + [_user_stale_key(u) for u in user_ids]
        if not keys:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                await self._raise_mark(keys=[key], args=[mark, self._revocation_ttl_s], client=pipe)
            await self._run(pipe.execute())

    async def note_client_session(self, client_key: str, session_id: str) -> None:
        # Two slots (the session's and the client's): two commands, one round trip.
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(_bound_client_key(session_id), client_key, ex=self._revocation_ttl_s)
            await self._note_client(
                keys=[_client_key(client_key)],
                args=[session_id, _MAX_SESSIONS_PER_CLIENT, self._revocation_ttl_s],
                client=pipe,
            )
            await self._run(pipe.execute())

    async def client_sessions(self, client_key: str) -> set[str]:
        ids = await self._run(self._redis.lrange(_client_key(client_key), 0, -1))
        try:
            return {item.decode("utf-8") for item in ids}
        except UnicodeDecodeError as exc:  # not what this store wrote
            raise StoreUnavailable(f"unreadable session list for a client: {exc}") from exc

    async def ping(self) -> bool:
        """Reachable, no sign-out waiting to be written, and none dropped uncovered."""
        try:
            await self._run(self._redis.ping())
        except StoreUnavailable:
            return False
        return await self.pending.flush()

    async def close(self) -> None:
        await self.pending.close()
        await self._redis.aclose()

    @staticmethod
    async def _run(command: Any) -> Any:
        """Await one Redis call, translating its failures into `StoreUnavailable`."""
        try:
            return await command
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc


def too_old_for_script_flags(version: str) -> bool:
    """Is this `redis_version` before 7, which refuses a script with a `#!lua` line?"""
    major = version.split(".", 1)[0]
    return major.isdigit() and int(major) < 7
