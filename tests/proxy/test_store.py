"""One suite, both stores: the SessionStore contract, and the decision table through the edge.

Every test here runs twice, on the memory store and on the Redis store
(a real `redis-server`), built by the same factory the app uses.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from minter import ClaimsRecord
from proxy.config import Settings, StoreSettings
from proxy.expiring import ExpiringTable
from proxy.heap import freeze_startup_heap
from proxy.store import (
    MemoryStore,
    RedisStore,
    SessionStore,
    Settled,
    StoreUnavailable,
    open_store,
)
from tests.stack import Browser, FakeClock, Stack, decode, running_stack

BACKENDS = ("memory", "redis")


def store_settings(backend: str, redis_url: str) -> StoreSettings:
    return StoreSettings(backend=backend, redis_url=redis_url)


def record(oiat: int, **claims: object) -> ClaimsRecord:
    return ClaimsRecord(
        oiat=oiat,
        cat="cl_B7d4PD111AAA",
        claims={"sid": "sess_1", "sub": "user_1", "iat": oiat, **claims},
        origin_lifetime_s=60,
    )


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[SessionStore]:
    """A store begun at second 0: the small `oiat`s below are claims from after its start."""
    settings = Settings(store=store_settings(request.param, redis_url))
    opened = open_store(settings, FakeClock(0))
    await opened.start()
    yield opened
    await opened.close()


@pytest.fixture(params=BACKENDS)
async def edge(
    request: pytest.FixtureRequest, redis_url: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Stack]:
    async with running_stack(
        tmp_path, clock, store=store_settings(request.param, redis_url)
    ) as stack:
        yield stack


# -- the store contract ------------------------------------------------------------------


async def test_factory_builds_the_configured_backend(store: SessionStore) -> None:
    assert isinstance(store, MemoryStore | RedisStore)
    assert await store.ping()


async def test_remember_is_compare_and_set_on_oiat(store: SessionStore) -> None:
    assert await store.remember("sess_1", "", record(100, v="a"))
    assert not await store.remember("sess_1", "", record(99, v="lower"))
    assert await store.remember("sess_1", "", record(100, v="equal"))
    freshest = (await store.state("sess_1", "", "user_1")).freshest
    assert freshest is not None
    assert (freshest.oiat, freshest.claims["v"]) == (100, "equal")
    assert await store.remember("sess_1", "", record(101, v="higher"))
    freshest = (await store.state("sess_1", "", "user_1")).freshest
    assert freshest is not None
    assert (freshest.oiat, freshest.claims["v"]) == (101, "higher")


async def test_records_round_trip_whole(store: SessionStore) -> None:
    kept = ClaimsRecord(
        oiat=1_700_000_000,
        cat=None,
        claims={
            "sub": "user_ü",
            "o": {"id": "org_acme", "rol": "admin", "per": ["a", "b"]},
            "iat": 1_700_000_000,
            "fva": [3, -1],
            "big": 2**53 - 1,
        },
        origin_lifetime_s=None,
    )
    await store.remember("sess_1", "org_acme", kept)
    assert (await store.state("sess_1", "org_acme", "user_ü")).freshest == kept


async def test_records_are_per_session_and_organization(store: SessionStore) -> None:
    await store.remember("sess_1", "org_acme", record(200))
    await store.remember("sess_1", "", record(100))
    await store.remember("sess_2", "org_acme", record(300))
    oiats = [
        (await store.state(sid, org, "user_1")).freshest
        for sid, org in (("sess_1", "org_acme"), ("sess_1", ""), ("sess_2", "org_acme"))
    ]
    assert [r.oiat if r else None for r in oiats] == [200, 100, 300]
    assert (await store.state("sess_3", "", "user_1")).freshest is None


async def test_revocation_is_seen_by_state_and_is_revoked(store: SessionStore) -> None:
    await store.revoke(["sess_1", "sess_2"])
    assert await store.is_revoked("sess_1")
    assert await store.is_revoked("sess_2")
    assert not await store.is_revoked("sess_3")
    assert (await store.state("sess_1", "", "user_1")).revoked
    assert not (await store.state("sess_3", "", "user_1")).revoked
    await store.revoke([])  # nothing to do is not an error


async def test_stale_marks_only_rise_and_state_takes_the_higher(store: SessionStore) -> None:
    assert (await store.state("sess_1", "", "user_1")).stale_mark == -1, "the store's start"
    await store.mark_stale(session_ids=["sess_1"], user_ids=[], mark=500)
    await store.mark_stale(session_ids=["sess_1"], user_ids=[], mark=400)
    assert (await store.state("sess_1", "", "user_1")).stale_mark == 500
    await store.mark_stale(session_ids=[], user_ids=["user_1"], mark=600)
    assert (await store.state("sess_1", "", "user_1")).stale_mark == 600
    assert (await store.state("sess_2", "", "user_1")).stale_mark == 600, "marks follow the user"
    assert (await store.state("sess_1", "", "user_2")).stale_mark == 500


def lose_the_data(redis_url: str) -> None:
    """What a Redis restarted without persistence holds: nothing."""
    with contextlib.closing(redis.Redis.from_url(redis_url)) as client:
        client.flushall()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_claims_assembled_before_the_store_began_are_stale(
    backend: str, redis_url: str
) -> None:
    """An edge that restarted (memory) or a new Redis never heard of older sign-outs."""
    store = open_store(Settings(store=store_settings(backend, redis_url)), FakeClock(1000))
    try:
        await store.start()
        state = await store.state("sess_1", "", "user_1")
        assert state.stale_mark == 999, "claims of second 1000 on are the store's own"
    finally:
        await store.close()


async def test_a_redis_that_lost_its_data_begins_a_new_data_set(redis_url: str) -> None:
    clock = FakeClock(1000)
    settings = Settings(store=store_settings("redis", redis_url))
    store, other_edge = open_store(settings, clock), open_store(settings, FakeClock(5000))
    try:
        await store.start()
        await store.revoke(["sess_1"])
        assert (await store.state("sess_1", "", "user_1")).revoked
        clock.advance(500)
        lose_the_data(redis_url)
        state = await store.state("sess_1", "", "user_1")
        assert not state.revoked, "the sign-out is gone with the data"
        assert state.stale_mark == 1499, "so nothing assembled before the loss is cloned"
        await other_edge.start()  # an edge starting later does not move the start
        assert (await other_edge.state("sess_1", "", "user_1")).stale_mark == 1499
    finally:
        await store.close()
        await other_edge.close()


async def settle(store: SessionStore, oiat: int, kept: ClaimsRecord | None = None) -> Settled:
    return await store.settle("sess_1", "", oiat=oiat, record=kept)


async def test_settle_keeps_fresher_claims_and_reports_revocation(store: SessionStore) -> None:
    assert await settle(store, 100, record(100)) is Settled.KEPT
    assert await settle(store, 100) is Settled.KEPT
    freshest = (await store.state("sess_1", "", "user_1")).freshest
    assert freshest is not None
    assert freshest.oiat == 100
    await store.revoke(["sess_1"])
    assert await settle(store, 200, record(200)) is Settled.REVOKED
    assert await settle(store, 200) is Settled.REVOKED
    freshest = (await store.state("sess_1", "", "user_1")).freshest
    assert freshest is not None
    assert freshest.oiat == 100, "a revoked session keeps nothing"


async def test_settle_says_superseded_when_fresher_claims_or_a_stale_mark_landed(
    store: SessionStore,
) -> None:
    await store.remember("sess_1", "", record(150))  # the origin answered another tab
    assert await settle(store, 100) is Settled.SUPERSEDED, "a lower oiat must not leave"
    assert await settle(store, 90, record(90)) is Settled.SUPERSEDED
    freshest = (await store.state("sess_1", "", "user_1")).freshest
    assert freshest is not None
    assert freshest.oiat == 150, "settle never lowers the stored oiat"
    assert await settle(store, 150) is Settled.KEPT, "as fresh as the stored claims"
    await store.mark_stale(session_ids=["sess_1"], user_ids=[], mark=170)
    assert await settle(store, 170) is Settled.SUPERSEDED, "the session's mark"
    assert await settle(store, 171, record(171)) is Settled.KEPT
    await store.mark_stale(session_ids=[], user_ids=["user_1"], mark=180)
    assert await settle(store, 175) is Settled.KEPT, "a user's mark is read before signing"
    assert (await store.state("sess_1", "", "user_1")).stale_mark == 180


async def test_client_sessions_are_listed_once_each(store: SessionStore) -> None:
    assert await store.client_sessions("client_a") == set()
    for sid in ("sess_1", "sess_2", "sess_1"):
        await store.note_client_session("client_a", sid)
    await store.note_client_session("client_b", "sess_9")
    assert await store.client_sessions("client_a") == {"sess_1", "sess_2"}
    assert await store.client_sessions("client_b") == {"sess_9"}


async def test_client_sessions_keep_the_latest_64(store: SessionStore) -> None:
    for index in range(70):
        await store.note_client_session("client_a", f"sess_{index}")
    assert await store.client_sessions("client_a") == {f"sess_{i}" for i in range(6, 70)}


async def test_client_sessions_keep_the_latest_noted_not_the_first(store: SessionStore) -> None:
    """A session noted again (it is still being refreshed) is one of the latest."""
    for index in range(64):
        await store.note_client_session("client_a", f"sess_{index}")
    await store.note_client_session("client_a", "sess_0")
    await store.note_client_session("client_a", "sess_64")
    listed = await store.client_sessions("client_a")
    assert "sess_0" in listed
    assert listed == {f"sess_{i}" for i in (0, *range(2, 65))}


# -- the memory store: lifetimes per fact, and its bound ------------------------------------


def memory_store(clock: FakeClock, *, max_entries: int = 100) -> MemoryStore:
    return MemoryStore(max_entries=max_entries, record_ttl_s=100, revocation_ttl_s=200, timer=clock)


async def test_memory_records_and_bindings_keep_their_own_lifetimes(clock: FakeClock) -> None:
    store = memory_store(clock)
    await store.remember("sess_1", "", record(100))
    await store.note_client_session("client_a", "sess_1")
    await store.revoke(["sess_2"])
    clock.advance(99)
    state = await store.state("sess_1", "", "user_1")
    assert state.freshest is not None
    assert state.client_key == "client_a"
    clock.advance(1)
    state = await store.state("sess_1", "", "user_1")
    assert state.freshest is None, "a record lives record_ttl_s"
    assert state.client_key == "client_a", "a binding lives revocation_ttl_s"
    assert await store.client_sessions("client_a") == {"sess_1"}
    assert await store.is_revoked("sess_2")
    clock.advance(99)
    assert (await store.state("sess_1", "", "user_1")).client_key == "client_a"
    clock.advance(1)
    assert (await store.state("sess_1", "", "user_1")).client_key is None
    assert await store.client_sessions("client_a") == set()
    assert not await store.is_revoked("sess_2")


async def test_memory_a_write_extends_only_what_it_writes(clock: FakeClock) -> None:
    store = memory_store(clock)
    await store.remember("sess_1", "org_a", record(100))
    clock.advance(90)
    await store.note_client_session("client_a", "sess_1")
    await store.remember("sess_1", "org_b", record(190))
    clock.advance(10)
    assert (await store.state("sess_1", "org_a", "user_1")).freshest is None
    kept = (await store.state("sess_1", "org_b", "user_1")).freshest
    assert kept is not None
    assert kept.oiat == 190
    clock.advance(89)
    assert (await store.state("sess_1", "org_b", "user_1")).freshest is not None
    clock.advance(1)
    state = await store.state("sess_1", "org_b", "user_1")
    assert state.freshest is None
    assert state.client_key == "client_a"
    assert await store.remember("sess_1", "org_a", record(50)), "an expired record holds nothing"


async def test_memory_a_session_keeps_a_record_per_organization(clock: FakeClock) -> None:
    store = memory_store(clock)
    orgs = ["", "org_a", "org_b", "org_c"]
    for index, org in enumerate(orgs):
        await store.remember("sess_1", org, record(100 + index, org=org))
    clock.advance(50)
    await store.remember("sess_1", "org_b", record(500))
    assert not await store.remember("sess_1", "org_a", record(100))
    for index, org in enumerate(orgs):
        kept = (await store.state("sess_1", org, "user_1")).freshest
        assert kept is not None
        assert kept.oiat == (500 if org == "org_b" else 100 + index)
        assert kept.claims.get("org", org) == org
    clock.advance(50)
    assert [(await store.state("sess_1", org, "user_1")).freshest is not None for org in orgs] == [
        False,
        False,
        True,
        False,
    ]
    await store.remember("sess_1", "org_c", record(600))
    clock.advance(50)
    assert [(await store.state("sess_1", org, "user_1")).freshest is not None for org in orgs] == [
        False,
        False,
        False,
        True,
    ]


async def test_memory_sessions_are_not_walked_by_a_full_garbage_collection(
    clock: FakeClock,
) -> None:
    """A million sessions must not each be an object that every full collection visits."""
    store = memory_store(clock, max_entries=10_000)
    await store.remember("sess_warm", "", record(1))  # the table's own objects exist
    gc.collect()
    tracked_before = len(gc.get_objects())
    for index in range(2000):
        session_id = f"sess_{index}"
        await store.remember(session_id, "", record(100))
        await store.remember(session_id, "org_a", record(100, org="org_a"))
        await store.note_client_session(f"client_{index}", session_id)
    await store.revoke(["sess_0"])
    await store.mark_stale(session_ids=["sess_1"], user_ids=["user_1"], mark=100)
    for _ in range(4):  # a tuple is untracked once its items are: one level a pass
        gc.collect()
    tracked_now = len(gc.get_objects())
    assert tracked_now - tracked_before < 100
    state = await store.state("sess_7", "org_a", "user_1")
    assert state.freshest is not None
    assert state.freshest.claims["org"] == "org_a"
    assert state.client_key == "client_7"


async def test_memory_tables_built_at_start_are_frozen_out_of_collections(
    clock: FakeClock,
) -> None:
    store = memory_store(clock, max_entries=10_000)
    names = ("_sessions", "_revoked", "_stale_sessions", "_stale_users", "_client_sessions")
    held = [getattr(store, name) for name in names]  # no vars(): mypyc-compiled
    assert all(isinstance(table, ExpiringTable) for table in held)
    tables = [table._entries for table in held]
    freeze_startup_heap()
    try:
        await store.remember("sess_1", "", record(100))  # written after the freeze
        tracked = {id(container) for container in gc.get_objects()}
        assert not [table for table in tables if id(table) in tracked]
        assert gc.get_freeze_count() > 0
        assert (await store.state("sess_1", "", "user_1")).freshest is not None
    finally:
        gc.unfreeze()


async def test_memory_bound_evicts_the_least_recent_session_never_a_revocation(
    clock: FakeClock,
) -> None:
    store = memory_store(clock, max_entries=2)
    await store.revoke(["sess_gone"])
    await store.remember("sess_1", "org_a", record(100))
    await store.remember("sess_1", "org_b", record(100))
    await store.remember("sess_2", "", record(100))
    await store.state("sess_1", "org_a", "user_1")  # sess_2 is now the least recent
    await store.note_client_session("client_a", "sess_3")
    assert (await store.state("sess_2", "", "user_1")).freshest is None
    assert (await store.state("sess_1", "org_a", "user_1")).freshest is not None
    assert (await store.state("sess_1", "org_b", "user_1")).freshest is not None
    assert (await store.state("sess_3", "", "user_1")).client_key == "client_a"
    assert await store.is_revoked("sess_gone")


async def test_memory_sign_outs_past_the_bound_make_the_store_refuse_while_they_live(
    clock: FakeClock,
) -> None:
    store = memory_store(clock, max_entries=3)
    await store.revoke(["sess_victim"])
    clock.advance(10)
    await store.mark_stale(session_ids=["sess_a"], user_ids=[], mark=5)
    await store.revoke(["sess_a", "sess_b"])
    assert (await store.state("sess_b", "", "user_1")).revoked, "within the bound: all kept"
    await store.revoke(["sess_c"])  # the fourth pushes the oldest, the victim's, out
    with pytest.raises(StoreUnavailable):
        await store.state("sess_victim", "", "user_1")
    with pytest.raises(StoreUnavailable):
        await store.settle("sess_victim", "", oiat=1, record=None)
    with pytest.raises(StoreUnavailable):
        await store.is_revoked("sess_victim")
    clock.advance(189)  # 199 s after the victim's sign-out, which lived 200 s
    with pytest.raises(StoreUnavailable):
        await store.state("sess_other", "", "user_1")
    clock.advance(1)
    assert not (await store.state("sess_victim", "", "user_1")).revoked
    assert (await store.state("sess_c", "", "user_1")).revoked


async def test_memory_stale_marks_past_the_bound_make_the_store_refuse(clock: FakeClock) -> None:
    store = memory_store(clock, max_entries=2)
    await store.mark_stale(session_ids=[], user_ids=["user_1", "user_2", "user_3"], mark=5)
    with pytest.raises(StoreUnavailable):
        await store.state("sess_1", "", "user_1")


async def test_memory_a_client_list_lives_on_while_its_sessions_are_noted(
    clock: FakeClock,
) -> None:
    store = memory_store(clock)
    await store.note_client_session("client_a", "sess_1")
    clock.advance(150)
    await store.note_client_session("client_a", "sess_1")
    clock.advance(150)  # 300 s after the first note, 150 s after the last
    assert await store.client_sessions("client_a") == {"sess_1"}
    clock.advance(50)
    assert await store.client_sessions("client_a") == set()


# -- the decision table through the edge -------------------------------------------------


async def test_edge_first_refresh_at_origin_then_minted_with_same_oiat(edge: Stack) -> None:
    async with Browser(edge.fapi) as browser:
        sid = await browser.sign_in()
        first = (await browser.refresh(sid, organization_id="org_acme")).jwt
        edge.clock.advance(30)
        second = (await browser.refresh(sid, organization_id="org_acme", token=first)).jwt
    assert edge.decisions() == {("origin", "no_token"): 1, ("minted", "edge"): 1}
    assert decode(second)[0]["oiat"] == decode(first)[0]["oiat"]
    assert decode(second)[1]["iat"] == decode(first)[1]["iat"] + 30


async def test_edge_sign_out_sends_the_next_refresh_to_origin(edge: Stack) -> None:
    async with Browser(edge.fapi) as browser:
        sid = await browser.sign_in()
        token = (await browser.refresh(sid)).jwt
        ended = await browser.request("POST", f"/v1/client/sessions/{sid}/end")
        assert ended.status == 200
        after = await browser.refresh(sid, token=token)
    assert after.status != 200, "the origin does not mint for an ended session"
    assert edge.decisions()[("origin", "revoked")] == 1
    assert ("minted", "edge") not in edge.decisions()


async def test_edge_a_sign_out_lost_with_the_redis_data_still_goes_to_the_origin(
    redis_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    async with (
        running_stack(tmp_path, clock, store=store_settings("redis", redis_url)) as edge,
        Browser(edge.fapi) as browser,
    ):
        sid = await browser.sign_in()
        token = (await browser.refresh(sid)).jwt
        ended = await browser.request("POST", f"/v1/client/sessions/{sid}/end")
        assert ended.status == 200
        clock.advance(5)
        lose_the_data(redis_url)  # the tombstone with it
        after = await browser.refresh(sid, token=token)
        assert after.status != 200, "the origin does not mint for an ended session"
        assert edge.decisions()[("origin", "stale")] == 1
        assert ("minted", "edge") not in edge.decisions()


async def test_edge_whole_client_sign_out_revokes_the_sessions_it_saw(edge: Stack) -> None:
    async with Browser(edge.fapi) as browser:
        sid = await browser.sign_in()
        token = (await browser.refresh(sid)).jwt
        gone = await browser.request("DELETE", "/v1/client")
        assert gone.status == 200
        after = await browser.refresh(sid, token=token)
    assert after.status != 200
    assert edge.decisions()[("origin", "revoked")] == 1


async def test_edge_pushed_revocation_and_stale_user(edge: Stack) -> None:
    async with Browser(edge.fapi) as browser:
        sid = await browser.sign_in()
        old = (await browser.refresh(sid, organization_id="org_acme")).jwt
        status, _ = await edge.origin_admin(
            "PATCH",
            "/backend/v1/organizations/org_acme/memberships/user_alice",
            {"role": "org:member"},
        )
        assert status == 200
        edge.clock.advance(1)
        after = (await browser.refresh(sid, organization_id="org_acme", token=old)).jwt
        assert decode(after)[1]["o"]["rol"] == "member"
        assert edge.decisions()[("origin", "stale")] == 1
        status, _ = await edge.origin_admin("POST", f"/backend/v1/sessions/{sid}/revoke")
        assert status == 200
        revoked = await browser.refresh(sid, organization_id="org_acme", token=after)
    assert revoked.status != 200
    assert edge.decisions()[("origin", "revoked")] == 1


async def test_edge_organization_change_and_old_claims_go_to_origin(edge: Stack) -> None:
    async with Browser(edge.fapi) as browser:
        sid = await browser.sign_in()
        in_org = (await browser.refresh(sid, organization_id="org_acme")).jwt
        personal = (await browser.refresh(sid, organization_id="", token=in_org)).jwt
        edge.clock.advance(301)
        (await browser.refresh(sid, organization_id="", token=personal)).jwt  # noqa: B018
    assert edge.decisions()[("origin", "org")] == 1
    assert edge.decisions()[("origin", "too_old")] == 1


async def test_edge_clones_stored_fresher_claims_for_an_older_token(edge: Stack) -> None:
    async with Browser(edge.fapi) as browser:
        sid = await browser.sign_in()
        old = (await browser.refresh(sid)).jwt
        edge.clock.advance(5)
        fresh = (await browser.refresh(sid, token=old, force_origin=True)).jwt
        edge.clock.advance(5)
        replay = (await browser.refresh(sid, token=old)).jwt
    assert decode(fresh)[0]["oiat"] > decode(old)[0]["oiat"]
    assert decode(replay)[0]["oiat"] == decode(fresh)[0]["oiat"]
    assert edge.decisions()[("minted", "edge")] == 1


async def test_edge_outage_mints_but_never_for_a_revoked_session(edge: Stack) -> None:
    async with Browser(edge.fapi) as alice, Browser(edge.fapi) as other_tab:
        kept_sid = await alice.sign_in()
        kept = (await alice.refresh(kept_sid)).jwt
        ended_sid = await other_tab.sign_in()
        ended = (await other_tab.refresh(ended_sid)).jwt
        assert (
            await other_tab.request("POST", f"/v1/client/sessions/{ended_sid}/end")
        ).status == 200
        await edge.origin_faults("error503")
        edge.clock.advance(301)  # past max_claims_age: only an outage mint is possible
        minted = await alice.refresh(kept_sid, token=kept)
        refused = await other_tab.refresh(ended_sid, token=ended)
    assert decode(minted.jwt)[0]["oiat"] == decode(kept)[0]["oiat"]
    assert refused.status == 503
    assert refused.error_code == "origin_unavailable"
    assert edge.decisions()[("minted", "outage")] == 1
