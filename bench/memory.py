"""What the memory store costs per session: resident memory and time per call.

    python bench/memory.py [--sessions 1000000] [--rounds 200000]

Fills one `MemoryStore` (the app's defaults: `store.max_sessions`, the record
and revocation lifetimes) the way the token route does after an origin
answer: per session one claims record for its organization, built from a
realistic Clerk v2 payload parsed by the verifier's own JSON parser (so keys
and values are fresh objects, as in the running edge), then the client
binding and the client's session list. It prints the growth of the
process's resident set (`/proc/self/statm`), bytes per session, and the
microseconds of one `state` and one `settle` (the two store calls of an edge
mint) and of one `remember` (after an origin answer), taken on the filled store,
and how long one full garbage collection takes then (with the heap frozen
at start, as `serve` does: `proxy/heap.py`): the event loop stops for that
long each time CPython runs one.

Then it fills the memo of edge-signed tokens (`proxy/signed.py`) to its
default bound, `tokens.remember_signed` sessions, each entry made as an edge
mint makes it (the JSON of a clone's header and claims, the token's digest),
and prints the memory that takes.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import gc
import multiprocessing as mp
import os
import secrets
import time

import orjson

from minter import ClaimsRecord, Mint, prepare_clone
from minter.jws import b64url_encode, encode_json, parse_json_object
from minter.keys import SigningKey, load_private_key
from proxy.clients import credential_digest
from proxy.config import Settings
from proxy.heap import freeze_startup_heap
from proxy.keygen import generate_key_pem
from proxy.signed import SignedHere
from proxy.store import MemoryStore, open_store

SESSION_CAT = "cl_B7d4PD111AAA"
_PAGE = os.sysconf("SC_PAGE_SIZE")
_LIMIT_BYTES = 1.5e9  # the target: 1.5 GB per million sessions


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * _PAGE


def _clerk_id(prefix: str) -> str:
    return prefix + "_" + secrets.token_urlsafe(21)[:27]


def _payload(session_id: str, user_id: str, iat: int) -> bytes:
    """The payload of a session token as the reference origin issues it."""
    return orjson.dumps(
        {
            "plan_tier": "pro",  # a custom claim from public metadata
            "azp": "https://app.example.com",
            "exp": iat + 60,
            "fva": [12, -1],
            "iat": iat,
            "iss": "https://clerk.example.com",
            "jti": secrets.token_hex(10),
            "nbf": iat - 10,
            "sid": session_id,
            "sts": "active",
            "sub": user_id,
            "v": 2,
            "pla": "o:free",
            "fea": "o:reports,o:billing",
            "o": {
                "id": "org_2aBcDeFgHiJkLmNoPqRsTuVwXyZ",
                "slg": "acme",
                "rol": "admin",
                "per": "read,manage",
                "fpm": "3,1",
            },
        }
    )


async def _fill(store: MemoryStore, sessions: int, iat: int) -> list[tuple[str, str, str]]:
    """Fill the store; returns a sample of (session, organization, user) to time reads."""
    sample: list[tuple[str, str, str]] = []
    for index in range(sessions):
        session_id, user_id = _clerk_id("sess"), _clerk_id("user")
        claims = parse_json_object(_payload(session_id, user_id, iat), what="payload")
        record = ClaimsRecord(oiat=iat, cat=SESSION_CAT, claims=claims, origin_lifetime_s=60)
        organization_id = claims["o"]["id"]
        await store.remember(session_id, organization_id, record)
        await store.note_client_session(credential_digest(secrets.token_urlsafe(32)), session_id)
        if index % 97 == 0:
            sample.append((session_id, organization_id, user_id))
    return sample


async def _time_calls(
    store: MemoryStore, sample: list[tuple[str, str, str]], rounds: int
) -> tuple[float, float, float]:
    """Microseconds per `state`, per `settle` in the steady state (nothing fresher to
    keep), and per `remember` of an origin answer (the record is replaced)."""
    picks = [sample[i % len(sample)] for i in range(rounds)]
    found = 0
    started = time.perf_counter()
    for session_id, organization_id, user_id in picks:
        state = await store.state(session_id, organization_id, user_id)
        found += state.freshest is not None
    state_us = (time.perf_counter() - started) / rounds * 1e6
    assert found == rounds
    oiats = [
        (await store.state(session_id, organization_id, user_id)).freshest
        for session_id, organization_id, user_id in picks
    ]
    started = time.perf_counter()
    for (session_id, organization_id, _), freshest in zip(picks, oiats, strict=True):
        oiat = freshest.oiat if freshest is not None else 0
        await store.settle(session_id, organization_id, oiat=oiat, record=None)
    settle_us = (time.perf_counter() - started) / rounds * 1e6
    records = {
        (session_id, organization_id): (await store.state(session_id, organization_id, user_id))
        for session_id, organization_id, user_id in sample
    }
    started = time.perf_counter()
    for session_id, organization_id, _ in picks:
        record = records[(session_id, organization_id)].freshest
        assert record is not None
        await store.remember(session_id, organization_id, record)
    remember_us = (time.perf_counter() - started) / rounds * 1e6
    return state_us, settle_us, remember_us


def _full_collection_ms() -> float:
    """One full collection once the store has settled: a tuple stops being tracked
    one nesting level per pass, as the running edge's own collections do."""
    for _ in range(4):
        gc.collect()
    started = time.perf_counter()
    gc.collect()
    return (time.perf_counter() - started) * 1e3


def _memo_growth(entries: int, ttl_s: float, iat: int) -> int:
    """Resident bytes of a signed-token memo holding `entries` edge mints."""
    key: SigningKey = load_private_key(generate_key_pem())
    gc.collect()
    before = _rss()
    memo = SignedHere(max_entries=entries, ttl_s=ttl_s, clock=time.monotonic)
    for _ in range(entries):
        session_id, user_id = _clerk_id("sess"), _clerk_id("user")
        claims = parse_json_object(_payload(session_id, user_id, iat - 30), what="payload")
        record = ClaimsRecord(oiat=iat - 30, cat=SESSION_CAT, claims=claims, origin_lifetime_s=60)
        plan = Mint(record=record, lifetime_s=60, not_after=iat + 60, outage=False, remember=None)
        clone = prepare_clone(plan, key=key, now=iat)
        header_json = encode_json(clone.header)
        claims_json = encode_json(clone.claims_with(jti=secrets.token_hex(10)))
        # The signature's bytes do not matter to the memo, which keeps only a digest.
        token = f"{b64url_encode(header_json)}.{b64url_encode(claims_json)}.sig"
        memo.add(session_id, token, header_json, claims_json)
    gc.collect()
    assert len(memo) == entries
    return _rss() - before


async def main(sessions: int, rounds: int) -> None:
    settings = Settings()
    clock = time.monotonic
    gc.collect()
    before = _rss()
    store = open_store(settings, clock)
    assert isinstance(store, MemoryStore)
    freeze_startup_heap()  # as `serve` does once the app has started
    started = time.perf_counter()
    sample = await _fill(store, sessions, iat=int(time.time()))
    fill_s = time.perf_counter() - started
    gc.collect()
    grown = _rss() - before
    state_us, settle_us, remember_us = await _time_calls(store, sample, rounds)
    pause_ms = _full_collection_ms()
    per_session = grown / sessions
    projected = per_session * 1_000_000
    print(
        f"sessions           {sessions:>12,}  (store.max_sessions {settings.store.max_sessions:,})"
    )
    print(f"fill               {fill_s:>12.1f} s")
    print(f"RSS growth         {grown / 1024**2:>12.1f} MiB")
    print(f"per session        {per_session:>12.0f} B")
    print(
        f"per 1M sessions    {projected / 1e9:>12.2f} GB"
        f"  (target <= 1.5 GB: {'met' if projected <= _LIMIT_BYTES else 'MISSED'})"
    )
    print(f"state()            {state_us:>12.2f} us")
    print(f"settle()           {settle_us:>12.2f} us")
    print(f"remember()         {remember_us:>12.2f} us")
    print(f"full collection    {pause_ms:>12.1f} ms  (gc.collect() on the filled store)")
    tokens = settings.tokens
    entries = tokens.remember_signed
    # In a fresh process: this one's freed pages would hide the memo's growth.
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        ttl_s = tokens.lifetime_s + tokens.max_expired_s
        memo = pool.submit(_memo_growth, entries, ttl_s, int(time.time())).result()
    print(f"signed-token memo  {entries:>12,}  sessions (tokens.remember_signed)")
    print(f"RSS growth         {memo / 1024**2:>12.1f} MiB")
    print(f"per entry          {memo / entries:>12.0f} B")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=200_000)
    args = parser.parse_args()
    asyncio.run(main(args.sessions, args.rounds))
