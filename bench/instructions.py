"""Instructions per request, counted by callgrind: figures that hold still on a busy machine.

    python bench/instructions.py [--requests 2000] [--sessions 128]

Needs valgrind (Debian package). Wall-clock figures on a shared machine move
by up to 10% between runs; the instructions that the same code runs for the
same requests repeat, so they show what a change to the edge's own work
bought. Each server runs under `valgrind --tool=callgrind`, counting only
while the measured requests are in flight (after start-up and a warm-up),
which this process sends 8 at a time. Printed, per request:

1. an edge mint (memory store) with the RSA signature replaced by fixed
   bytes (`bench/unsigned_edge.py`), each browser posting the last token it
   was answered, as in `bench/run.py`;
2. the bare aiohttp handler of `bench/ceiling_server.py` answering the same
   requests: the HTTP floor, so the difference is the edge's own work;
3. a forwarded `GET /v1/environment`, through the edge and through the bare
   aiohttp proxy of `bench/bare_proxy.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.run import (  # noqa: E402
    CLI,
    _mint_requests,
    _sessions,
    _warm,
    free_port,
    new_key,
    process,
    wait_ready,
    write_config,
)

CONCURRENCY = 8
Requests = list[tuple[str, str, dict[str, str]]]


class Counted:
    """A server under callgrind whose counting is switched on around `window`."""

    def __init__(self, proc: subprocess.Popen[bytes], out: Path) -> None:
        self._proc, self._out, self._dumps = proc, out, 0

    def window(self, send: Callable[[], Awaitable[None]], requests: int) -> int:
        """Instructions per request while `send` runs."""
        self._control("--instr=on")
        asyncio.run(send())
        self._control("--instr=off")
        self._control("--dump")
        self._dumps += 1
        dump = self._out.with_name(f"{self._out.name}.{self._dumps}")
        totals = [line for line in dump.read_text().splitlines() if line.startswith("totals:")]
        return round(int(totals[-1].split()[1]) / requests)

    def _control(self, option: str) -> None:
        control = shutil.which("callgrind_control") or "callgrind_control"
        subprocess.run(  # noqa: S603 - valgrind's own tool
            [control, option, str(self._proc.pid)], check=True, capture_output=True
        )


@contextmanager
def counted(folder: Path, name: str, command: list[str], ready_url: str) -> Iterator[Counted]:
    out = folder / f"callgrind-{name}.out"
    valgrind = [shutil.which("valgrind") or "valgrind", "--tool=callgrind", "--instr-atstart=no"]
    # As bench/run.py's main figure: every request signed, no clones shared.
    every = {"SESSION_MINTER_LIMITS__COALESCE": "false"}
    with process([*valgrind, f"--callgrind-out-file={out}", *command], None, every) as proc:
        wait_ready(ready_url, timeout_s=180)
        yield Counted(proc, out)


async def post_all(base: str, requests: Requests, count: int, *, follow: bool) -> Requests:
    """Send `count` of `requests` in turn; with `follow`, each browser posts the
    last token it was answered. Returns the requests as they stand at the end."""
    state = [[path, *body.rsplit("token=", 1), headers] for path, body, headers in requests]
    turns = iter(range(count))
    jar = aiohttp.DummyCookieJar()
    async with aiohttp.ClientSession(cookie_jar=jar) as client:

        async def browser() -> None:
            for turn in turns:
                entry = state[turn % len(state)]
                path, form, token, headers = entry
                async with client.post(
                    base + path,
                    data=f"{form}token={token}".encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
                ) as answer:
                    document = await answer.json(content_type=None)
                    if answer.status != 200:
                        raise RuntimeError(f"{path}: {answer.status} {document}")
                    if follow:
                        entry[2] = document["jwt"]

        await asyncio.gather(*(browser() for _ in range(CONCURRENCY)))
    return [(path, f"{form}token={token}", headers) for path, form, token, headers in state]


async def get_all(url: str, count: int) -> None:
    turns = iter(range(count))
    async with aiohttp.ClientSession() as client:

        async def one() -> None:
            for _ in turns:
                async with client.get(url) as answer:
                    await answer.read()
                    if answer.status != 200:
                        raise RuntimeError(f"{url}: {answer.status}")

        await asyncio.gather(*(one() for _ in range(CONCURRENCY)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=128)
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("needs valgrind: apt-get install valgrind")
    n = args.requests
    figures: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="session-minter-instructions-") as tmp:
        folder = Path(tmp)
        new_key(folder)
        edge_port, origin_port, other_port = free_port(), free_port(), free_port()
        edge, origin = f"http://127.0.0.1:{edge_port}", f"http://127.0.0.1:{origin_port}"
        other = f"http://127.0.0.1:{other_port}"
        config = write_config(folder, edge_port, origin_port, "memory", 0)
        with process([*CLI, "origin", "--config", str(config)], None):
            wait_ready(f"{origin}/v1/jwks")
            unsigned = [sys.executable, str(HERE / "unsigned_edge.py"), "serve"]
            with counted(folder, "edge", [*unsigned, "--config", str(config)], edge) as server:
                sessions = asyncio.run(_sessions(edge, args.sessions))
                mints = _mint_requests(sessions, asyncio.run(_warm(edge, sessions)))
                mints = asyncio.run(post_all(edge, mints, len(mints), follow=True))
                mints = asyncio.run(post_all(edge, mints, len(mints), follow=True))
                # The window's requests, with the tokens they will post, are known after it.
                latest: list[Requests] = []

                async def mint_window() -> None:
                    latest.append(await post_all(edge, mints, n, follow=True))

                figures["edge_mint"] = server.window(mint_window, n)
                asyncio.run(get_all(f"{edge}/v1/environment", 50))
                figures["edge_forward"] = server.window(
                    lambda: get_all(f"{edge}/v1/environment", n), n
                )
            token_length = len(latest[0][0][1].rsplit("token=", 1)[1])
            bare = [sys.executable, str(HERE / "ceiling_server.py"), str(other_port)]
            with counted(folder, "bare", [*bare, str(token_length)], other) as server:
                asyncio.run(post_all(other, latest[0], 50, follow=False))
                figures["bare"] = server.window(
                    lambda: post_all(other, latest[0], n, follow=False), n
                )
            proxy = [sys.executable, str(HERE / "bare_proxy.py"), str(other_port), origin]
            with counted(folder, "proxy", proxy, other) as server:
                asyncio.run(get_all(f"{other}/v1/environment", 50))
                figures["bare_forward"] = server.window(
                    lambda: get_all(f"{other}/v1/environment", n), n
                )

    print(f"\ninstructions per request (callgrind, {n:,} requests, {CONCURRENCY} at a time)\n")
    rows = [
        ("edge mint, memory store, RSA signature stubbed", figures["edge_mint"]),
        ("bare aiohttp handler, the same requests", figures["bare"]),
        ("  the edge's own work", figures["edge_mint"] - figures["bare"]),
        ("forwarded GET /v1/environment, edge", figures["edge_forward"]),
        ("the same through a bare aiohttp proxy", figures["bare_forward"]),
        ("  the edge's own work", figures["edge_forward"] - figures["bare_forward"]),
    ]
    for label, value in rows:
        print(f"{label:<48} {value:>10,}")


if __name__ == "__main__":
    main()
