"""The store's share of one edge mint: `state` before signing, `settle` after, per store.

    python bench/store_cost.py [--rounds 5000] [--concurrency 1,32]

Starts its own `redis-server` on a free loopback port (no persistence) and
times, on the memory store and on the Redis store, the two store calls an
edge mint makes: one `state` (one pipelined round trip: HMGET + MGET + GET)
and one `settle` (an EXISTS in the steady state, one Lua script when the
posted claims are fresher than the stored ones). With concurrency above 1,
that many mint paths run at once on one event loop, as under load.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from minter import ClaimsRecord
from proxy.config import Settings, StoreSettings
from proxy.store import SessionStore, open_store

CLAIMS = {
    "azp": "http://localhost:3000",
    "iss": "https://clerk.example.test",
    "sid": "sess_bench",
    "sub": "user_bench",
    "iat": 1_700_000_000,
    "nbf": 1_699_999_990,
    "exp": 1_700_000_060,
    "v": 2,
    "fva": [0, -1],
    "o": {"id": "org_acme", "slg": "acme", "rol": "admin", "per": "read,write", "fpm": "3"},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - fixed arguments
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    client.close()
    return process, f"redis://127.0.0.1:{port}/0"


async def _mint_path(store: SessionStore, sid: str, oiat: int, record: ClaimsRecord | None) -> None:
    await store.state(sid, "org_acme", "user_bench")
    await store.settle(sid, "org_acme", oiat=oiat, record=record)


async def _measure(store: SessionStore, rounds: int, concurrency: int, fresher: bool) -> float:
    """Microseconds per mint path (wall time / mints) at this concurrency."""
    base = ClaimsRecord(
        oiat=1_700_000_000, cat="cl_B7d4PD111AAA", claims=CLAIMS, origin_lifetime_s=60
    )
    for worker in range(concurrency):
        await store.remember(f"sess_{worker}", "org_acme", base)

    async def worker(index: int) -> None:
        for step in range(rounds // concurrency):
            record = None
            if fresher:
                record = ClaimsRecord(
                    oiat=base.oiat + step + 1, cat=base.cat, claims=CLAIMS, origin_lifetime_s=60
                )
            await _mint_path(
                store, f"sess_{index}", base.oiat if record is None else record.oiat, record
            )

    started = time.perf_counter()
    await asyncio.gather(*(worker(index) for index in range(concurrency)))
    return (time.perf_counter() - started) / (rounds // concurrency * concurrency) * 1e6


async def _run(rounds: int, levels: list[int], redis_url: str) -> None:
    print(f"{'store':<8}{'concurrency':>12}{'steady µs/mint':>16}{'fresher µs/mint':>17}")
    for backend in ("memory", "redis"):
        settings = Settings(store=StoreSettings(backend=backend, redis_url=redis_url))
        store = open_store(settings, time.time)
        try:
            await _measure(store, 200, 1, False)  # warm up: connect, load scripts
            for concurrency in levels:
                steady = await _measure(store, rounds, concurrency, False)
                fresher = await _measure(store, rounds, concurrency, True)
                print(f"{backend:<8}{concurrency:>12}{steady:>16.1f}{fresher:>17.1f}")
        finally:
            await store.close()
    print("round trips per edge mint (Redis): 1 read (state) + 1 settle (one script)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5000)
    parser.add_argument("--concurrency", default="1,32")
    args = parser.parse_args()
    levels = [int(level) for level in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        process, url = _start_redis(Path(folder))
        try:
            asyncio.run(_run(args.rounds, levels, url))
        finally:
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
