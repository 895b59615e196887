"""Several edges, one truth: two `session-minter serve` processes sharing one real Redis.

The reference origin runs in the test's event loop on the real clock; the two
edges are real subprocesses started from a TOML config, each on its own
loopback port, both pointing at the same `redis-server`. What an edge
decided is read from its `/metrics`. Tokens with chosen `oiat` values are
signed with the instance key (the key both edges and the origin use), so
freshness races are set up exactly, without waiting for the clock to tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from minter import SESSION_TOKEN_CAT, SigningKey, sign_compact
from origin import OriginSettings as ReferenceSettings
from origin import create_app as create_origin_app
from proxy.clients import credential_digest
from proxy.keygen import write_key
from proxy.store import RedisStore
from tests.proxy.served import UNLIMITED, Edge, edge_process, wait_ready, wait_store_back
from tests.redis_server import RedisServer, free_port
from tests.stack import (
    ISSUER,
    PUSH_SECRET,
    SECRET_KEY,
    Browser,
    decode,
    listening_socket,
    url_of,
)

MAX_CLAIMS_AGE = 3000  # wide enough for hundreds of distinct past oiat values


@dataclass
class Edges:
    a: Edge
    b: Edge
    origin_url: str
    key: SigningKey
    redis: RedisServer

    def store(self) -> RedisStore:
        return RedisStore.from_url(
            self.redis.url,
            connect_timeout_s=1,
            socket_timeout_s=1,
            record_ttl_s=60,
            revocation_ttl_s=60,
            clock=time.time,
        )


def edge_config(folder: Path, port: int, origin_url: str, key_path: Path, redis_url: str) -> Path:
    path = folder / f"edge-{port}.toml"
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
port = {port}
log_format = "text"

[origin]
url = "{origin_url}"

[tokens]
issuers = ["{ISSUER}"]
max_claims_age_s = {MAX_CLAIMS_AGE}
outage_max_claims_age_s = {MAX_CLAIMS_AGE + 600}

[keys]
signing = ["{key_path}"]

[store]
backend = "redis"
redis_url = "{redis_url}"

[push]
secret = "{PUSH_SECRET}"

{UNLIMITED}""",
        encoding="utf-8",
    )
    return path


@contextlib.asynccontextmanager
async def running_edges(folder: Path, redis: RedisServer) -> AsyncIterator[Edges]:
    """The reference origin in this loop, and edges A and B as subprocesses on `redis`."""
    key_path = folder / "keys" / "instance.pem"
    key = write_key(key_path, overwrite=True)
    port_a, port_b = free_port(), free_port()
    origin_sock = listening_socket()
    origin_url = url_of(origin_sock)
    origin = web.AppRunner(
        create_origin_app(
            ReferenceSettings(
                database=folder / "origin.db",
                signing_key=key_path,
                secret_key=SECRET_KEY,
                edges=(f"http://127.0.0.1:{port_a}",),  # the origin pushes to A only
                push_secret=PUSH_SECRET,
            )
        )
    )
    await origin.setup()
    await web.SockSite(origin, origin_sock).start()
    configs = [
        edge_config(folder, port, origin_url, key_path, redis.url) for port in (port_a, port_b)
    ]
    try:
        with (
            edge_process(configs[0], port_a) as a,
            edge_process(configs[1], port_b) as b,
        ):
            await asyncio.gather(wait_ready(a), wait_ready(b))
            yield Edges(a, b, origin_url, key, redis)
    finally:
        await origin.cleanup()


@pytest.fixture
async def edges(tmp_path: Path, redis_url: str, shared_redis: RedisServer) -> AsyncIterator[Edges]:
    assert redis_url == shared_redis.url  # requested for its flush
    # A data set begun an hour ago: the tokens crafted below, with their `oiat` in
    # the past, are claims from after its start (`proxy/store/base.py`).
    client = shared_redis.client()
    try:
        client.set("sm:born", int(time.time()) - 3600)
    finally:
        client.close()
    async with running_edges(tmp_path, shared_redis) as running:
        yield running


def crafted(key: SigningKey, sid: str, oiat: int, **extra: Any) -> str:
    """A session token as the origin would sign it, with a chosen `oiat`."""
    iat = int(time.time()) - 5
    header = {"alg": key.alg, "kid": key.kid, "typ": "JWT", "cat": SESSION_TOKEN_CAT, "oiat": oiat}
    claims = {
        "iss": ISSUER,
        "sid": sid,
        "sub": "user_crafted",
        "iat": iat,
        "nbf": iat - 10,
        "exp": iat + 60,
        **extra,
    }
    return sign_compact(header, claims, key)


NATIVE_CREDENTIAL = "Bearer a-native-client"  # what these refreshes carry, as a native app


async def bind(edges: Edges, *sids: str) -> None:
    """As an origin answer through an edge would: bind the sessions to that client."""
    store = edges.store()
    try:
        for sid in sids:
            await store.note_client_session(credential_digest(NATIVE_CREDENTIAL), sid)
    finally:
        await store.close()


async def refresh_at(client: aiohttp.ClientSession, base: str, sid: str, token: str) -> Any:
    async with client.post(
        f"{base}/v1/client/sessions/{sid}/tokens",
        data={"organization_id": "", "token": token},
        headers={"Authorization": NATIVE_CREDENTIAL},
    ) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_sign_out_at_a_stops_minting_at_b(edges: Edges) -> None:
    async with Browser(edges.a.url) as browser:
        sid = await browser.sign_in()
        first = (await browser.refresh(sid)).jwt
        browser.base = edges.b.url  # the same client, now routed to edge B
        at_b = (await browser.refresh(sid, token=first)).jwt
        assert await edges.b.minted() == 1, "B mints from what A recorded"
        browser.base = edges.a.url
        assert (await browser.request("POST", f"/v1/client/sessions/{sid}/end")).status == 200
        browser.base = edges.b.url
        after = await browser.refresh(sid, token=at_b)  # still valid for up to a minute
    assert after.status != 200, "the origin refuses an ended session"
    decisions = await edges.b.decisions()
    assert decisions[("origin", "revoked")] == 1
    assert await edges.b.minted() == 1, "no edge mint after the sign-out"


async def test_stale_push_to_a_reaches_b(edges: Edges) -> None:
    async with Browser(edges.a.url) as browser:
        sid = await browser.sign_in()
        token = (await browser.refresh(sid, organization_id="org_acme")).jwt
        async with (
            aiohttp.ClientSession() as client,
            client.post(
                edges.a.url + "/__minter/push",
                json={"stale_users": ["user_alice"]},
                headers={"Authorization": f"Bearer {PUSH_SECRET}"},
            ) as pushed,
        ):
            assert pushed.status == 200
        browser.base = edges.b.url
        after = await browser.refresh(sid, organization_id="org_acme", token=token)
    assert after.status == 200
    assert (await edges.b.decisions())[("origin", "stale")] == 1
    assert await edges.b.minted() == 0


async def test_fresher_claims_recorded_via_a_win_at_b(edges: Edges) -> None:
    now = int(time.time())
    older = crafted(edges.key, "sess_fresh", now - 100, role="old")
    fresher = crafted(edges.key, "sess_fresh", now - 50, role="new")
    await bind(edges, "sess_fresh")
    async with aiohttp.ClientSession() as client:
        at_a = await refresh_at(client, edges.a.url, "sess_fresh", fresher)
        at_b = await refresh_at(client, edges.b.url, "sess_fresh", older)
    assert decode(at_a["jwt"])[0]["oiat"] == now - 50
    header, claims = decode(at_b["jwt"])
    assert header["oiat"] == now - 50, "B cloned the fresher stored claims, not the posted ones"
    assert claims["role"] == "new"
    assert await edges.b.minted() == 1


async def test_concurrent_pairs_across_edges_never_let_a_lower_oiat_win(edges: Edges) -> None:
    """100 rounds; in each, A and B get tokens with two new, higher oiat values at once.

    Whatever the interleaving: no answer carries an `oiat` below the token it was
    given or below the highest one stored before its round, and after each round
    the store holds the higher of the pair.
    """
    rng = random.Random(6)
    sid = "sess_race"
    base = int(time.time()) - MAX_CLAIMS_AGE + 100
    await bind(edges, sid)
    store = edges.store()
    highest_before = 0
    try:
        async with aiohttp.ClientSession() as client:
            for round_ in range(100):
                pair = [base + 2 * round_, base + 2 * round_ + 1]
                rng.shuffle(pair)
                answers = await asyncio.gather(
                    refresh_at(client, edges.a.url, sid, crafted(edges.key, sid, pair[0])),
                    refresh_at(client, edges.b.url, sid, crafted(edges.key, sid, pair[1])),
                )
                issued = [decode(answer["jwt"])[0]["oiat"] for answer in answers]
                for posted, got in zip(pair, issued, strict=True):
                    assert got >= posted
                    assert got > highest_before
                    assert got in pair
                stored = (await store.state(sid, "", "user_crafted")).freshest
                assert stored is not None
                assert stored.oiat == max(pair), f"round {round_}: a lower oiat won"
                highest_before = max(pair)
    finally:
        await store.close()
    assert await edges.a.minted() + await edges.b.minted() == 200


async def test_a_storm_of_refreshes_ends_at_the_highest_oiat(edges: Edges) -> None:
    """200 refreshes at once, 100 per edge, oiat values in random order."""
    sid = "sess_storm"
    base = int(time.time()) - MAX_CLAIMS_AGE + 100
    oiats = list(range(base, base + 200))
    random.Random(7).shuffle(oiats)
    await bind(edges, sid)
    store = edges.store()
    try:
        async with aiohttp.ClientSession() as client:
            answers = await asyncio.gather(
                *(
                    refresh_at(
                        client,
                        (edges.a if index % 2 else edges.b).url,
                        sid,
                        crafted(edges.key, sid, oiat),
                    )
                    for index, oiat in enumerate(oiats)
                )
            )
            late = await refresh_at(client, edges.b.url, sid, crafted(edges.key, sid, base))
        stored = (await store.state(sid, "", "user_crafted")).freshest
    finally:
        await store.close()
    for posted, answer in zip(oiats, answers, strict=True):
        assert decode(answer["jwt"])[0]["oiat"] >= posted
    assert stored is not None
    assert stored.oiat == max(oiats)
    assert decode(late["jwt"])[0]["oiat"] == max(oiats), "the lowest token gets the highest claims"


async def readiness(edge: Edge) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as client, client.get(edge.url + "/readyz") as response:
        return response.status, await response.json()


async def origin_faults(edges: Edges, mode: str) -> None:
    async with (
        aiohttp.ClientSession() as client,
        client.post(
            edges.origin_url + "/__origin/faults",
            json={"mode": mode, "latency_ms": 0},
            headers={"Authorization": f"Bearer {SECRET_KEY}"},
        ) as response,
    ):
        assert response.status == 200


async def test_redis_stopped_mid_run_then_restarted(tmp_path: Path, own_redis: RedisServer) -> None:
    async with (
        running_edges(tmp_path, own_redis) as edges,
        Browser(edges.a.url) as alice,
        Browser(edges.a.url) as leaving,
    ):
        sid = await alice.sign_in()
        token = (await alice.refresh(sid)).jwt
        token = (await alice.refresh(sid, token=token)).jwt
        leaving_sid = await leaving.sign_in()
        leaving_token = (await leaving.refresh(leaving_sid)).jwt
        assert await edges.a.minted() == 1

        await asyncio.to_thread(own_redis.stop)
        for edge in (edges.a, edges.b, edges.a, edges.b):
            alice.base = edge.url
            answer = await alice.refresh(sid, token=token)
            assert answer.status == 200, answer.body  # the origin answered; never a 500
            assert decode(answer.jwt)[0]["oiat"] == decode(answer.jwt)[1]["iat"], "origin-made"
        for edge in (edges.a, edges.b):
            assert (await edge.decisions())[("origin", "store")] == 2
            status, body = await readiness(edge)
            assert (status, body["status"], body["checks"]["store"]) == (200, "degraded", False)
        assert await edges.a.minted() + await edges.b.minted() == 1, "no edge mint without Redis"

        await origin_faults(edges, "error503")
        down = await alice.refresh(sid, token=token)
        assert (down.status, down.error_code) == (503, "origin_unavailable")
        await origin_faults(edges, "ok")

        # A sign-out while Redis is down: the origin ends it, A queues the tombstone.
        ended = await leaving.request("POST", f"/v1/client/sessions/{leaving_sid}/end")
        assert ended.status == 200

        await asyncio.to_thread(own_redis.start)
        # Redis came back empty: the first edge to read it would begin a new data set
        # (`sm:born`), and alice's claims, from before, would go to the origin once
        # (tests/proxy/test_store.py). Begun here, a second before her claims, this
        # test sees the queued sign-out land and the edges mint again.
        with contextlib.closing(own_redis.client()) as client:
            client.set("sm:born", decode(token)[0]["oiat"] - 1)
        await asyncio.gather(wait_store_back(edges.a), wait_store_back(edges.b))
        alice.base = edges.b.url
        minted = (await alice.refresh(sid, token=token)).jwt
        assert await edges.b.minted() == 1, "minting resumed at B"
        assert decode(minted)[0]["oiat"] == decode(token)[0]["oiat"]
        leaving.base = edges.b.url
        refused = await leaving.refresh(leaving_sid, token=leaving_token)
        assert refused.status != 200, "the queued sign-out reached Redis, and so edge B"
        assert (await edges.b.decisions())[("origin", "revoked")] == 1
        assert await edges.b.minted() == 1
