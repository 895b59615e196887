"""The benchmark: every figure measured side by side in one run, and their ratios.

    python bench/run.py [--duration 10] [--connections 64] [--origin-latency-ms 0] [--redis]

Needs `wrk` (Debian package) for load. The load generator runs pinned to CPU 0
and the server under test to CPU 1 (when the machine has two), so each
figure is one server core's worth. Printed:

1. the ceiling: a bare aiohttp handler answering the same bytes (HTTP cost),
   plus the raw `cryptography` RS256 verify + sign cost per request;
2. edge mint: req/s, p50, p99 at fixed concurrency (memory store; Redis too
   with --redis);
3. origin mint through the proxy (the reference origin's SQLite work, plus
   --origin-latency-ms);
4. pass-through forwarding of a small request vs calling the origin directly.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.crypto_cost import crypto_cost_us  # noqa: E402

CLI = [sys.executable, "-m", "proxy"]


@dataclass
class Figure:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float

    def line(self) -> str:
        return (
            f"{self.name:<44} {self.rps:>9.0f} req/s"
            f"   p50 {self.p50_ms:6.2f} ms   p99 {self.p99_ms:6.2f} ms"
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cpu: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu)]
    return []


@contextmanager
def process(command: list[str], cpu: int, env: dict[str, str] | None = None) -> Iterator[None]:
    proc = subprocess.Popen(  # noqa: S603 - our own CLI
        pinned(cpu) + command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    try:
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_ready(url: str, timeout_s: float = 20.0) -> None:
    async def poll() -> None:
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as client:
            while time.monotonic() < deadline:
                try:
                    async with client.get(url) as response:
                        if response.status < 500:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{url} did not come up")

    asyncio.run(poll())


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(name: str, url: str, *, duration: int, connections: int, lua: Path | None) -> Figure:
    command = [
        *pinned(0),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        *(["-s", str(lua)] if lua else []),
        url,
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise RuntimeError(f"{name}: {non2xx.group(1)} non-2xx answers\n{out}")
    return Figure(name, rps, p50, p99)


def post_script(folder: Path, name: str, body: str, headers: dict[str, str]) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = {body!r}".replace("'", '"')]
    headers = {"Content-Type": "application/x-www-form-urlencoded", **headers}
    lines += [f'wrk.headers["{key}"] = "{value}"' for key, value in headers.items()]
    path = folder / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_config(
    folder: Path, edge_port: int, origin_port: int, store: str, latency_ms: int
) -> Path:
    config = folder / f"config-{store}.toml"
    port_file = folder / "redis.port"
    redis_port = port_file.read_text().strip() if port_file.exists() else "6379"
    config.write_text(
        f"""
[server]
port = {edge_port}
log_format = "text"
[origin]
url = "http://127.0.0.1:{origin_port}"
[keys]
signing = ["instance.pem"]
[store]
backend = "{store}"
redis_url = "redis://127.0.0.1:{redis_port}/0"
[limits]
per_ip_per_s = 1000000.0
per_ip_burst = 1000000
per_session_per_s = 1000000.0
per_session_burst = 1000000
[reference_origin]
port = {origin_port}
database = "origin.db"
signing_key = "instance.pem"
edges = []
latency_ms = {latency_ms}
"""
    )
    return config


async def _session(edge: str) -> tuple[str, str, str]:
    """Sign in through the edge: (cookie header, session id, first token)."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as client:
        async with client.post(
            f"{edge}/v1/client/sign_ins",
            data={
                "identifier": "alice@example.com",
                "password": "correct-horse",
                "strategy": "password",
            },
        ) as response:
            sid = (await response.json())["response"]["created_session_id"]
        async with client.post(
            f"{edge}/v1/client/sessions/{sid}/tokens", data={"organization_id": "org_acme"}
        ) as response:
            token = (await response.json())["jwt"]
        cookie = "; ".join(f"{c.key}={c.value}" for c in jar)
    return cookie, sid, token


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--origin-latency-ms", type=int, default=0)
    parser.add_argument("--redis", action="store_true", help="also measure with the Redis store")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench needs wrk: apt-get install wrk")
    run = {"duration": args.duration, "connections": args.connections}
    figures: dict[str, Figure] = {}
    with tempfile.TemporaryDirectory(prefix="session-minter-bench-") as tmp:
        folder = Path(tmp)
        keygen = [*CLI, "keygen", "--out", str(folder / "instance.pem")]
        subprocess.run(keygen, check=True, capture_output=True)  # noqa: S603 - our own CLI
        edge_port, origin_port, bare_port = free_port(), free_port(), free_port()

        token_len = 0
        stores = ["memory"] + (["redis"] if args.redis else [])
        redis_cm = None
        if args.redis:
            redis_port = free_port()
            folder.joinpath("redis.port").write_text(str(redis_port))
            redis_cm = process(
                ["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"], 0
            )
            redis_cm.__enter__()
        try:
            for store in stores:
                config = write_config(folder, edge_port, origin_port, store, args.origin_latency_ms)
                with (
                    process([*CLI, "origin", "--config", str(config)], 0),
                    process([*CLI, "serve", "--config", str(config)], 1),
                ):
                    edge = f"http://127.0.0.1:{edge_port}"
                    wait_ready(f"http://127.0.0.1:{origin_port}/v1/jwks")
                    wait_ready(f"{edge}/healthz")
                    cookie, sid, token = asyncio.run(_session(edge))
                    token_len = len(token)
                    tokens_url = f"{edge}/v1/client/sessions/{sid}/tokens"
                    body = f"organization_id=org_acme&token={token}"
                    mint = post_script(
                        folder,
                        f"mint-{store}",
                        body,
                        {"Cookie": cookie, "Origin": "http://localhost:3000"},
                    )
                    figures[f"mint_{store}"] = wrk(
                        f"edge mint ({store} store)", tokens_url, lua=mint, **run
                    )
                    if store == "memory":
                        forced = post_script(
                            folder, "origin", body + "&force_origin=true", {"Cookie": cookie}
                        )
                        figures["origin_mint"] = wrk(
                            f"origin mint via edge (+{args.origin_latency_ms} ms)",
                            tokens_url,
                            lua=forced,
                            **run,
                        )
                        figures["forwarded"] = wrk(
                            "forwarded GET /v1/environment",
                            f"{edge}/v1/environment",
                            lua=None,
                            **run,
                        )
                        figures["direct"] = wrk(
                            "direct GET /v1/environment (origin)",
                            f"http://127.0.0.1:{origin_port}/v1/environment",
                            lua=None,
                            **run,
                        )
        finally:
            if redis_cm is not None:
                redis_cm.__exit__(None, None, None)

        with process(
            [sys.executable, str(HERE / "ceiling_server.py"), str(bare_port), str(token_len)], 1
        ):
            wait_ready(f"http://127.0.0.1:{bare_port}/")
            bare_body = post_script(
                folder, "bare", "organization_id=org_acme&token=" + "x" * token_len, {}
            )
            figures["bare"] = wrk(
                "bare aiohttp handler (same bytes)",
                f"http://127.0.0.1:{bare_port}/t",
                lua=bare_body,
                **run,
            )

    crypto_us = crypto_cost_us()
    http_us = 1e6 / figures["bare"].rps
    ceiling_rps = 1e6 / (http_us + crypto_us)
    print(
        f"\nsession-minter benchmark: {args.duration} s per figure, {args.connections} "
        "connections, wrk on CPU 0, server on CPU 1\n"
    )
    for figure in figures.values():
        print(figure.line())
    print(f"{'RS256 verify + sign (cryptography, raw)':<44} {crypto_us:>9.0f} us per request")
    print(f"{'ceiling = 1 / (HTTP + crypto)':<44} {ceiling_rps:>9.0f} req/s")
    print("\nratios")
    for store in stores:
        ratio = figures[f"mint_{store}"].rps / ceiling_rps
        print(f"  edge mint ({store}) / ceiling:        {ratio:5.2f}")
    mint, origin_mint = figures["mint_memory"], figures["origin_mint"]
    forwarded, direct = figures["forwarded"], figures["direct"]
    print(f"  edge mint / origin mint (req/s):     {mint.rps / origin_mint.rps:5.2f}")
    print(f"  edge mint p99 / p50:                 {mint.p99_ms / mint.p50_ms:5.2f}")
    print(f"  forwarded / direct (req/s):          {forwarded.rps / direct.rps:5.2f}")
    print(f"  forwarded p50 - direct p50:          {forwarded.p50_ms - direct.p50_ms:5.2f} ms")


if __name__ == "__main__":
    main()
