"""The edge as operators run it: `session-minter serve` in a subprocess, and waiting on it.

Shared by the tests that need real processes (signals, workers, several edges
on one Redis). Each edge logs to its config file's name with `.log`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

SERVE = Path(sys.executable).with_name("session-minter")
TIMEOUT_S = 20.0  # a wait longer than this has failed (never a pass condition)

# A config section that keeps the rate limits out of the way of a test's load.
UNLIMITED = """
[limits]
per_ip_per_s = 100000.0
per_ip_burst = 100000
per_session_per_s = 100000.0
per_session_burst = 100000
"""


@dataclass
class Edge:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    config: Path

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    async def decisions(self) -> dict[tuple[str, str], float]:
        async with aiohttp.ClientSession() as client, client.get(self.url + "/metrics") as r:
            text = await r.text()
        counts: dict[tuple[str, str], float] = {}
        for family in text_string_to_metric_families(text):
            if family.name != "session_minter_refresh_decisions":
                continue
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    counts[(sample.labels["outcome"], sample.labels["reason"])] = sample.value
        return counts

    async def minted(self) -> float:
        return sum(v for (outcome, _), v in (await self.decisions()).items() if outcome == "minted")


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll an async condition (bounded): the only way to see another process change."""
    deadline = time.monotonic() + TIMEOUT_S
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@contextlib.contextmanager
def edge_process(config: Path, port: int, *extra: str) -> Iterator[Edge]:
    log = config.with_suffix(".log")
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [str(SERVE), "serve", "--config", str(config), *extra], stdout=sink, stderr=sink
        )
    try:
        yield Edge(f"http://127.0.0.1:{port}", process, log, config)
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within TIMEOUT_S."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:  # pragma: no cover - only when shutdown hangs
            process.kill()
            process.wait()


async def status_of(url: str) -> int | None:
    """The answer's status; None when the connection is refused or dropped."""
    try:
        async with aiohttp.ClientSession() as client, client.get(url) as response:
            await response.read()
            return response.status
    except aiohttp.ClientConnectionError:
        return None


async def wait_store_back(edge: Edge) -> None:
    """`/readyz` says the store answers again (and no sign-out waits to be written)."""

    async def back() -> bool:
        assert edge.process.poll() is None, edge.log.read_text()
        async with aiohttp.ClientSession() as client, client.get(edge.url + "/readyz") as response:
            return bool((await response.json())["checks"]["store"])

    await until(back, f"{edge.url} store back")


async def wait_ready(edge: Edge, base: str | None = None) -> None:
    """`/readyz` answers 200; the edge's log is the message if its process died."""

    async def ready() -> bool:
        assert edge.process.poll() is None, edge.log.read_text()
        return await status_of((base or edge.url) + "/readyz") == 200

    await until(ready, f"{edge.url} ready")


def read_until(fd: int, ending: bytes) -> bytes:
    """What is read from a pipe's `fd` until it has read a line containing `ending` (bounded)."""
    got = b""
    deadline = time.monotonic() + TIMEOUT_S
    while ending not in got or not got.endswith(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0, f"timed out reading stderr; got {got[-300:]!r}"
        readable, _, _ = select.select([fd], [], [], left)
        if readable:
            got += os.read(fd, 65536)
    return got
