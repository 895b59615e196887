"""What only the Redis store has: expiry, Cluster slots, timeouts, outages and reconnection."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import redis.asyncio
from redis.crc import key_slot

from minter import ClaimsRecord
from proxy.config import Settings, StoreSettings
from proxy.store import RedisStore, StoreUnavailable, open_store
from proxy.store.redis import too_old_for_script_flags
from tests.redis_server import RedisServer, free_port
from tests.stack import Browser, FakeClock, decode, running_stack

SETTINGS = Settings()
RECORD_TTL = SETTINGS.tokens.outage_max_claims_age_s + SETTINGS.tokens.lifetime_s
REVOCATION_TTL = SETTINGS.tokens.revocation_ttl_s


def record(oiat: int) -> ClaimsRecord:
    claims = {"sub": "user_1", "iat": oiat}  # as kept from a verified token
    return ClaimsRecord(oiat=oiat, cat=None, claims=claims, origin_lifetime_s=60)


def redis_store(url: str, *, socket_timeout_s: float = 0.5) -> RedisStore:
    settings = dataclasses.replace(
        SETTINGS,
        store=StoreSettings(backend="redis", redis_url=url, socket_timeout_s=socket_timeout_s),
    )
    store = open_store(settings, FakeClock(0))
    assert isinstance(store, RedisStore)
    return store


def store_with_a_short_queue(url: str, clock: FakeClock, *, max_pending: int) -> RedisStore:
    """A store whose queue of unwritten sign-outs holds `max_pending` sessions."""
    client = redis.asyncio.Redis.from_url(url, socket_timeout=0.5)
    return RedisStore(
        client,
        record_ttl_s=RECORD_TTL,
        revocation_ttl_s=REVOCATION_TTL,
        clock=clock,
        max_pending=max_pending,
    )


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    opened = redis_store(redis_url)
    yield opened
    await opened.close()


async def write_everything(store: RedisStore) -> None:
    await store.remember("sess_1", "org_acme", record(100))
    await store.settle("sess_1", "", oiat=100, record=record(100))
    await store.revoke(["sess_1"])
    await store.mark_stale(session_ids=["sess_1"], user_ids=["user_1"], mark=100)
    await store.note_client_session("client_a", "sess_1")


def key_ttls(redis: RedisServer) -> dict[str, int]:
    """Every key in the server, with its time to live."""
    client = redis.client()
    try:
        return {key.decode(): client.ttl(key) for key in client.keys("*")}
    finally:
        client.close()


async def test_every_key_expires_within_its_bound(
    store: RedisStore, shared_redis: RedisServer
) -> None:
    await write_everything(store)
    ttls = key_ttls(shared_redis)
    # two records, tombstone, two marks, client list, the session's client binding
    assert len(ttls) == 7, ttls
    for key, ttl in ttls.items():
        bound = RECORD_TTL if ":rec:" in key else REVOCATION_TTL
        assert 0 < ttl <= bound, (key, ttl)


async def test_keys_of_a_session_share_one_cluster_slot(
    store: RedisStore, shared_redis: RedisServer
) -> None:
    await write_everything(store)
    session_keys = [key for key in key_ttls(shared_redis) if "{sess_1}" in key]
    assert len(session_keys) == 5
    assert len({key_slot(key.encode()) for key in session_keys}) == 1


async def test_nothing_listening_is_store_unavailable_everywhere() -> None:
    store = redis_store(f"redis://127.0.0.1:{free_port()}/0")
    try:
        calls = [
            store.state("sess_1", "", "user_1"),
            store.remember("sess_1", "", record(1)),
            store.settle("sess_1", "", oiat=1, record=record(1)),
            store.settle("sess_1", "", oiat=1, record=None),
            store.is_revoked("sess_1"),
            store.mark_stale(session_ids=["sess_1"], user_ids=[], mark=1),
            store.note_client_session("client_a", "sess_1"),
            store.client_sessions("client_a"),
        ]
        for call in calls:
            with pytest.raises(StoreUnavailable):
                await call
        assert not await store.ping()
    finally:
        await store.close()


async def test_a_command_that_hangs_times_out_as_store_unavailable(own_redis: RedisServer) -> None:
    store = redis_store(own_redis.url, socket_timeout_s=0.2)
    try:
        assert await store.ping()
        pauser = own_redis.client()
        try:
            pauser.execute_command("CLIENT", "PAUSE", 3000, "ALL")
        finally:
            pauser.close()
        with pytest.raises(StoreUnavailable, match="Timeout"):
            await store.state("sess_1", "", "user_1")
    finally:
        await store.close()


async def test_restart_reconnects_without_a_failed_call(own_redis: RedisServer) -> None:
    store = redis_store(own_redis.url)
    try:
        await store.remember("sess_1", "", record(100))
        await asyncio.to_thread(own_redis.stop)
        await asyncio.to_thread(own_redis.start)  # empty: no persistence
        state = await store.state("sess_1", "", "user_1")  # the pooled connection is dead
        assert state.freshest is None
        assert await store.remember("sess_1", "", record(50))
    finally:
        await store.close()


async def test_a_sign_out_that_could_not_be_written_waits_and_is_retried(
    own_redis: RedisServer,
) -> None:
    edge, other_edge = redis_store(own_redis.url), redis_store(own_redis.url)
    try:
        await asyncio.to_thread(own_redis.stop)
        with pytest.raises(StoreUnavailable):
            await edge.revoke(["sess_1"])
        assert len(edge.pending) == 1
        assert await edge.is_revoked("sess_1"), "this edge answers it as revoked meanwhile"
        assert await edge.settle("sess_1", "", oiat=1, record=None) == "revoked"
        await asyncio.to_thread(own_redis.start)
        ready = await edge.ping()  # reachable again: the queue is written on the way
        assert ready
        assert len(edge.pending) == 0
        assert await other_edge.is_revoked("sess_1")
        assert (await other_edge.state("sess_1", "", "user_1")).revoked
    finally:
        await edge.close()
        await other_edge.close()


async def test_sign_outs_dropped_from_a_full_queue_make_the_store_begin_again(
    own_redis: RedisServer,
) -> None:
    clock = FakeClock(1000)
    edge = store_with_a_short_queue(own_redis.url, clock, max_pending=2)
    other_edge = redis_store(own_redis.url)
    try:
        await edge.start()
        await asyncio.to_thread(own_redis.stop)
        for session_id in ("sess_1", "sess_2", "sess_3"):
            with pytest.raises(StoreUnavailable):
                await edge.revoke([session_id])
        assert len(edge.pending) == 2, "sess_1 was dropped"
        clock.advance(500)
        await asyncio.to_thread(own_redis.start)
        with contextlib.closing(own_redis.client()) as kept:
            kept.set("sm:born", 500)  # as if Redis had kept its data
        assert await edge.ping(), "the queue is written on the way"
        state = await other_edge.state("sess_1", "", "user_1")
        assert not state.revoked, "the dropped sign-out never reached Redis"
        assert state.stale_mark == 1499, "so no claims from before the drop are cloned"
        assert (await other_edge.state("sess_3", "", "user_1")).revoked
    finally:
        await edge.close()
        await other_edge.close()


async def test_no_claims_are_cloned_past_a_dropped_sign_out_before_the_store_begins_again(
    own_redis: RedisServer,
) -> None:
    """Redis that answers reads but refuses writes (out of memory): the queue overflows."""
    clock = FakeClock(1000)
    edge = store_with_a_short_queue(own_redis.url, clock, max_pending=1)
    try:
        await edge.start()
        with contextlib.closing(own_redis.client()) as admin:
            admin.config_set("maxmemory", 1)
        for session_id in ("sess_1", "sess_2"):
            with pytest.raises(StoreUnavailable):
                await edge.revoke([session_id])
        assert "sess_1" not in edge.pending, "sess_1 was dropped"
        clock.advance(500)
        with pytest.raises(StoreUnavailable):
            await edge.state("sess_1", "", "user_1")  # else claims of second 1200 are cloned
        with pytest.raises(StoreUnavailable):
            await edge.settle("sess_1", "", oiat=1200, record=None)
        assert not await edge.ping(), "the store has not begun again"
        with contextlib.closing(own_redis.client()) as admin:
            admin.config_set("maxmemory", 0)
        assert await edge.ping(), "the queue is written, and the store begins again"
        assert (await edge.state("sess_1", "", "user_1")).stale_mark == 1499
    finally:
        await edge.close()


async def test_close_stops_the_retry_even_with_a_write_in_flight(own_redis: RedisServer) -> None:
    """Redis refusing writes (out of memory) while the edge shuts down: close returns."""
    edge = redis_store(own_redis.url)
    with contextlib.closing(own_redis.client()) as admin:
        admin.config_set("maxmemory", 1)
    for session_id in ("sess_1", "sess_2"):
        with pytest.raises(StoreUnavailable):
            await edge.revoke([session_id])
    async with asyncio.timeout(10) as bound:
        await edge.close()
    assert not bound.expired(), "close returned by itself, with no retry left running"
    assert len(edge.pending) == 2, "both sign-outs are still unwritten"


async def test_the_retry_task_writes_queued_sign_outs_by_itself(own_redis: RedisServer) -> None:
    edge, other_edge = redis_store(own_redis.url), redis_store(own_redis.url)
    try:
        await asyncio.to_thread(own_redis.stop)
        with pytest.raises(StoreUnavailable):
            await edge.revoke(["sess_1", "sess_2"])
        await asyncio.to_thread(own_redis.start)
        async with asyncio.timeout(10):
            # another client's view of Redis: no event to wait on, so a bounded poll
            while not await other_edge.is_revoked("sess_2"):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert await other_edge.is_revoked("sess_1")
        assert len(edge.pending) == 0
    finally:
        await edge.close()
        await other_edge.close()


async def test_when_unavailable_mint_mints_through_a_double_outage(
    tmp_path: Path, clock: FakeClock, own_redis: RedisServer
) -> None:
    store = StoreSettings(backend="redis", redis_url=own_redis.url, when_unavailable="mint")
    async with running_stack(tmp_path, clock, store=store) as stack, Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        token = (await browser.refresh(sid)).jwt
        await asyncio.to_thread(own_redis.stop)
        await stack.origin_faults("error503")
        clock.advance(30)
        minted = (await browser.refresh(sid, token=token)).jwt
        await stack.origin_faults("ok")
    assert decode(minted)[0]["oiat"] == decode(token)[0]["oiat"]
    assert stack.decisions()[("minted", "outage")] == 1


async def test_when_unavailable_origin_answers_503_in_a_double_outage(
    tmp_path: Path, clock: FakeClock, own_redis: RedisServer
) -> None:
    store = StoreSettings(backend="redis", redis_url=own_redis.url)
    async with running_stack(tmp_path, clock, store=store) as stack, Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        token = (await browser.refresh(sid)).jwt
        await asyncio.to_thread(own_redis.stop)
        await stack.origin_faults("error503")
        clock.advance(30)
        answer = await browser.refresh(sid, token=token)
        await stack.origin_faults("ok")
    assert (answer.status, answer.error_code) == (503, "origin_unavailable")
    assert not any(outcome == "minted" for outcome, _ in stack.decisions())


@pytest.mark.parametrize("refusal", ["out_of_memory", "read_only_replica"])
async def test_no_edge_mints_while_redis_refuses_writes(
    own_redis: RedisServer, refusal: str
) -> None:
    """Reads still answer, but a sign-out at one edge cannot reach the others: their
    settle must not let a token leave."""
    edge, other_edge = redis_store(own_redis.url), redis_store(own_redis.url)
    try:
        await other_edge.start()
        await other_edge.remember("sess_1", "", record(100))
        with contextlib.closing(own_redis.client()) as admin:
            if refusal == "out_of_memory":
                admin.config_set("maxmemory", 1)
            else:
                admin.replicaof("127.0.0.1", free_port())  # a primary that never answers
        with pytest.raises(StoreUnavailable):
            await edge.revoke(["sess_1"])
        state = await other_edge.state("sess_1", "", "user_1")
        assert not state.revoked, "the sign-out never reached Redis"
        with pytest.raises(StoreUnavailable):
            await other_edge.settle("sess_1", "", oiat=100, record=None)
    finally:
        with contextlib.closing(own_redis.client()) as admin:
            admin.config_set("maxmemory", 0)
            admin.replicaof("NO", "ONE")
        await edge.close()
        await other_edge.close()


@pytest.mark.parametrize(
    ("version", "too_old"),
    [("6.2.14", True), ("5.0.7", True), ("7.0.15", False), ("7.2.4", False), ("8.0.0", False)],
)
def test_a_redis_before_7_is_named_too_old_for_settles_script(version: str, too_old: bool) -> None:
    assert too_old_for_script_flags(version) is too_old


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("sm:{sess_1}:stale", "soon"),  # a mark that is not a number
        ("sm:born", "1e3"),
        ("sm:{sess_1}:rec:", {"o": "1000", "d": "not json"}),
        ("sm:{sess_1}:rec:", {"o": "1000", "d": '["cat", 60, ["not", "claims"]]'}),
        ("sm:{sess_1}:rec:", {"o": "1000", "d": '{"a": 1}'}),
        ("sm:{sess_1}:rec:", {"o": "x", "d": '["cl_B7d4PD111AAA", 60, {"iat": 1000}]'}),
        # Claims no verified token has: a clone reads `iat` and ages `fva`.
        ("sm:{sess_1}:rec:", {"o": "1000", "d": '[null, 60, {"sub": "user_1"}]'}),
        ("sm:{sess_1}:rec:", {"o": "1000", "d": '[null, 60, {"iat": "1000"}]'}),
        ("sm:{sess_1}:rec:", {"o": "1000", "d": '[null, 60, {"iat": 1000, "fva": ["a", 1]}]'}),
        ("sm:{sess_1}:rec:", {"o": "1000", "d": '[null, 60, {"iat": 1000, "fva": [0.5, 1]}]'}),
        ("sm:{sess_1}:rec:", {"o": "1000", "d": '[null, 60, {"iat": 1000, "fva": 3}]'}),
        # Times out of range, and a lifetime that is not an integer.
        ("sm:{sess_1}:rec:", {"o": str(2**64), "d": '[null, 60, {"iat": 1000}]'}),
        ("sm:{sess_1}:rec:", {"o": "-5", "d": '[null, 60, {"iat": 1000}]'}),
        ("sm:{sess_1}:rec:", {"o": "1000", "d": '[null, -60, {"iat": 1000}]'}),
        ("sm:{sess_1}:rec:", {"o": "1000", "d": '[null, true, {"iat": 1000}]'}),
    ],
)
async def test_unreadable_data_in_redis_is_the_store_unavailable_not_a_crash(
    own_redis: RedisServer, key: str, value: str | dict[str, str]
) -> None:
    """Written by hand or by another program: the edge mints nothing from it."""
    store = redis_store(own_redis.url)
    try:
        await store.start()
        with contextlib.closing(own_redis.client()) as admin:
            if isinstance(value, dict):
                admin.hset(key, mapping=value)
            else:
                admin.set(key, value)
        with pytest.raises(StoreUnavailable):
            await store.state("sess_1", "", "user_1")
    finally:
        await store.close()


async def test_stored_claims_whose_iat_is_not_an_integer_are_the_store_unavailable(
    tmp_path: Path, clock: FakeClock, own_redis: RedisServer
) -> None:
    """Claims another program wrote, fresher than the posted token's: cloned, their
    `fva` is aged from their `iat`. One that is not an integer is not what this store
    wrote (it keeps verified claims): the refresh goes to the origin, never a 500
    (compiled, `age_fva` refuses a float `iat` with a TypeError)."""
    store = StoreSettings(backend="redis", redis_url=own_redis.url)
    async with running_stack(tmp_path, clock, store=store) as stack, Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        token = (await browser.refresh(sid)).jwt  # from the origin: binds this client
        header, claims = decode(token)
        foreign = {**claims, "iat": claims["iat"] + 0.5, "fva": [0, -1]}
        with contextlib.closing(own_redis.client()) as admin:
            admin.hset(
                f"sm:{{{sid}}}:rec:",
                mapping={"o": header["oiat"] + 1, "d": orjson.dumps([None, 60, foreign])},
            )
        clock.advance(5)
        answer = await browser.refresh(sid, token=token)
    assert answer.status == 200, answer.body
    assert stack.decisions().get(("origin", "store")) == 1
    assert not any(outcome == "minted" for outcome, _ in stack.decisions())


async def test_a_client_list_that_is_not_text_is_the_store_unavailable_not_a_crash(
    own_redis: RedisServer,
) -> None:
    """A whole-client sign-out reads this list after the origin's 2xx: a 500 would lose it."""
    store = redis_store(own_redis.url)
    try:
        await store.start()
        await store.note_client_session("client_1", "sess_1")
        with contextlib.closing(own_redis.client()) as admin:
            (key,) = admin.keys("sm:{c:*}:sids")
            admin.rpush(key, b"\xff\xfe")
        with pytest.raises(StoreUnavailable):
            await store.client_sessions("client_1")
    finally:
        await store.close()
