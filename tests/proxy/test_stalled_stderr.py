"""`session-minter serve` with its stderr on a pipe that nobody reads.

A log shipper that hangs, or a full pipe, must not stop the edge: the edge's
stderr is a real pipe here, made small (`F_SETPIPE_SZ`) so that a few dozen
request lines fill it, and left unread while the test talks to the edge.
Every request carries a client timeout: an edge blocked on its stderr fails
the test instead of hanging it.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import termios
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.proxy.served import SERVE, read_until, status_of, stop, until
from tests.proxy.test_process import edge_config, exit_code, metric, reference_origin
from tests.redis_server import free_port

ANSWER_TIMEOUT = aiohttp.ClientTimeout(total=5)  # an edge that does not answer in 5 s is stuck


@dataclass
class PipedEdge:
    url: str
    process: subprocess.Popen[bytes]
    stderr: int  # the read end of the edge's stderr: unread until the test reads it
    capacity: int  # bytes the pipe holds

    def unread(self) -> int:
        """Bytes the edge has written to stderr that nobody has read yet."""
        count = array.array("i", [0])
        fcntl.ioctl(self.stderr, termios.FIONREAD, count)
        return count[0]


@contextlib.contextmanager
def edge_on_a_pipe(config: Path, port: int, *extra: str) -> Iterator[PipedEdge]:
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)  # the smallest pipe: a page
    capacity = fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ)
    try:
        process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [str(SERVE), "serve", "--config", str(config), *extra],
            stdout=subprocess.DEVNULL,
            stderr=write_end,
        )
    finally:
        os.close(write_end)
    try:
        yield PipedEdge(f"http://127.0.0.1:{port}", process, read_end, capacity)
    finally:
        os.close(read_end)  # a writer blocked on the pipe gets EPIPE: nothing hangs here
        stop(process)


async def ready(edge: PipedEdge) -> None:
    async def answers() -> bool:
        assert edge.process.poll() is None, "the edge exited"
        return await status_of(edge.url + "/readyz") == 200

    await until(answers, f"{edge.url} ready")


async def answered(client: aiohttp.ClientSession, url: str, what: str) -> int:
    """The status of GET `url`; fails the test when the edge does not answer in time."""
    try:
        async with client.get(url) as response:
            await response.read()
            return response.status
    except TimeoutError:
        pytest.fail(f"{what}: no answer while stderr was not read (the edge is blocked)")


def logged(edge: PipedEdge, name: str) -> str:
    """A path the edge forwards to the origin and logs one request line for."""
    return f"{edge.url}/logged/{name}"


async def test_the_edge_answers_while_its_stderr_is_not_read(tmp_path: Path) -> None:
    port = free_port()
    async with reference_origin(tmp_path, port) as origin:
        config = edge_config(tmp_path, port, origin, [origin.key_path])
        with edge_on_a_pipe(config, port) as edge:
            await ready(edge)
            async with aiohttp.ClientSession(timeout=ANSWER_TIMEOUT) as client:
                # About 300 bytes of log each: many times what the pipe holds.
                for n in range(200):
                    await answered(client, logged(edge, str(n)), f"request {n}")

                # 60 kB of lines cannot have gone into a 4 kB pipe: most are held.
                assert 0 < edge.unread() <= edge.capacity
                assert await answered(client, edge.url + "/healthz", "/healthz") == 200
                assert edge.process.poll() is None


async def dropped(edge: PipedEdge) -> float:
    return await metric(edge.url, "session_minter_log_lines_dropped_total")


async def test_lines_dropped_while_stalled_are_counted_then_reported_in_place(
    tmp_path: Path,
) -> None:
    port = free_port()
    async with reference_origin(tmp_path, port) as origin:
        config = edge_config(tmp_path, port, origin, [origin.key_path], log_buffer_bytes=4096)
        with edge_on_a_pipe(config, port) as edge:
            await ready(edge)
            assert await dropped(edge) == 0
            sent = 0
            async with aiohttp.ClientSession(timeout=ANSWER_TIMEOUT) as client:

                async def dropping() -> bool:
                    nonlocal sent
                    for _ in range(10):
                        await answered(client, logged(edge, f"before/{sent}"), f"request {sent}")
                        sent += 1
                    return await dropped(edge) > 0

                await until(dropping, "log lines being dropped")
                assert await answered(client, edge.url + "/healthz", "/healthz") == 200
                # The test reads stderr again: what was held comes out, then the gap's line.
                got = await asyncio.to_thread(read_until, edge.stderr, b"log lines dropped")
                for n in range(5):
                    await answered(client, logged(edge, f"after/{n}"), f"after {n}")
                got += await asyncio.to_thread(read_until, edge.stderr, b"/logged/after/4")
            total = await dropped(edge)
    lines = [json.loads(line) for line in got.decode().splitlines()]  # each line whole
    paths = [line["path"] for line in lines if line.get("logger") == "session_minter.request"]
    before = [int(path.rpartition("/")[2]) for path in paths if path.startswith("/logged/before/")]
    assert before == sorted(before), "in order"
    assert paths[-5:] == [f"/logged/after/{n}" for n in range(5)], "flowing again, in order"
    # Each gap is reported where it is, with its size; together they are the metric.
    gaps, previous = [], -1
    for line in lines:
        if line.get("logger") == "session_minter.logs":
            assert line["level"] == "warning"
            said = re.fullmatch(r"(\d+) log lines dropped: .*", line["message"])
            assert said, line
            gaps.append((previous, int(said[1])))
        elif line.get("path", "").startswith("/logged/before/"):
            number = int(line["path"].rpartition("/")[2])
            if gaps and gaps[-1][0] == previous:
                assert number - previous - 1 == gaps[-1][1], "the gap's line says its size"
            previous = number
    assert gaps, "a line reports the dropped lines"
    last_kept, last_count = gaps[-1]
    if last_kept == previous:  # the last gap runs to the end of what was sent before
        assert sent - 1 - previous == last_count
    else:  # lines after the last gap, to the last one sent
        assert previous == sent - 1
    assert sum(count for _, count in gaps) == total == sent - len(before), "none lost unsaid"


async def test_sigterm_with_stderr_stalled_still_exits(tmp_path: Path) -> None:
    port = free_port()
    async with reference_origin(tmp_path, port) as origin:
        config = edge_config(tmp_path, port, origin, [origin.key_path])
        with edge_on_a_pipe(config, port, "--workers", "2") as edge:
            await ready(edge)
            async with aiohttp.ClientSession(
                timeout=ANSWER_TIMEOUT, connector=aiohttp.TCPConnector(force_close=True)
            ) as client:
                for n in range(200):  # new connections: both workers have lines held
                    await answered(client, logged(edge, str(n)), f"request {n}")
            assert 0 < edge.unread() <= edge.capacity
            edge.process.send_signal(signal.SIGTERM)
            # Each process waits a bounded time for its lines to go out, then exits.
            assert await exit_code(edge.process) == 0
            assert edge.process.returncode == 0
