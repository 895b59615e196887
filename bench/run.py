"""The benchmark: every figure measured side by side in one run, and their ratios.

    python bench/run.py [--duration 10] [--connections 64] [--origin-latency-ms 0] [--redis]

Needs `wrk` (Debian package) for load. The load generator runs pinned to CPU 0
and the server under test to CPU 1 (when the machine has two), so each
figure is one server core's worth. Printed:

1. the ceiling: a bare aiohttp handler answering the same bytes (HTTP cost),
   plus the raw `cryptography` RS256 verify + sign cost per request (measured
   alone); and the same handler doing that verify + sign itself, which
   measures both in one process under the same load, once per request and
   once with the signatures of a loop turn run together as the edge runs
   them (the better of the two is "the ceiling measured in 1 process");
2. edge mint: req/s, p50, p99 at fixed concurrency over --sessions signed-in
   browsers, every request signed (memory store; Redis too with --redis), the
   edge's CPU time per mint, the default with identical clones coalesced, and
   `--workers 2`. Each browser posts the last token the edge answered it
   (the steady state: a refresh posts the previous edge token; the wrk
   script reads each answer's `sid` and keeps its token for that browser's
   next turn, and with more browsers than connections each has one refresh
   in flight), and, as a second figure, the origin's first token, which is
   always verified in full; the "tabs coalesced" figure replays one token
   per browser, as tabs that refresh together do;
   a naive aiohttp + pyjwt clone with none of the edge's checks is measured
   for reference;
3. origin mint through the proxy (the reference origin's SQLite work, plus
   --origin-latency-ms);
4. pass-through forwarding of a small request vs calling the origin directly,
   at the same concurrency and at one connection (latency).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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


def new_key(folder: Path) -> Path:
    """A fresh signing key, `instance.pem` in `folder` (the configs name it so)."""
    key_file = folder / "instance.pem"
    keygen = [*CLI, "keygen", "--out", str(key_file)]
    subprocess.run(keygen, check=True, capture_output=True)  # noqa: S603 - our own CLI
    return key_file


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cpu: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu)]
    return []


@contextmanager
def process(
    command: list[str], cpu: int | None, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(  # noqa: S603 - our own CLI
        (pinned(cpu) if cpu is not None else []) + command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    try:
        yield proc
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


def wait_workers(url: str, count: int, timeout_s: float = 20.0) -> None:
    """Until `count` distinct worker processes have answered `/healthz` (it names its pid).

    One answer is not enough: a worker that is not listening yet gets none of
    the connections the kernel spreads over the port when `wrk` opens them.
    """

    async def poll() -> None:
        deadline = time.monotonic() + timeout_s
        seen: set[int] = set()
        connector = aiohttp.TCPConnector(force_close=True)  # a new connection each time
        async with aiohttp.ClientSession(connector=connector) as client:
            while time.monotonic() < deadline:
                with contextlib.suppress(aiohttp.ClientError):
                    async with client.get(url) as response:
                        seen.add((await response.json())["pid"])
                if len(seen) >= count:
                    return
                await asyncio.sleep(0.05)
        raise RuntimeError(f"{len(seen)} of {count} workers answered at {url}")

    asyncio.run(poll())


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    number, unit = match.groups()
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
    if "Socket errors" in out or "timeout" in out.lower():
        print(f"{name}: wrk reported errors\n{out}", file=sys.stderr)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
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
per_ip_forwards = 1000000
[reference_origin]
port = {origin_port}
database = "origin.db"
signing_key = "instance.pem"
edges = []
latency_ms = {latency_ms}
"""
    )
    return config


async def _sessions(edge: str, count: int) -> list[tuple[str, str, str]]:
    """Sign in `count` browsers through the edge: (cookie header, session id, first token).

    The first token comes from the origin through the edge, so each session is
    bound to its browser's cookie, as in real traffic.
    """

    async def one(identifier: str, password: str, org: str) -> tuple[str, str, str]:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as client:
            form = {"identifier": identifier, "password": password, "strategy": "password"}
            async with client.post(f"{edge}/v1/client/sign_ins", data=form) as response:
                sid = (await response.json())["response"]["created_session_id"]
            path = f"{edge}/v1/client/sessions/{sid}/tokens"
            async with client.post(path, data={"organization_id": org}) as response:
                token = (await response.json())["jwt"]
            cookie = "; ".join(f"{c.key}={c.value}" for c in jar)
        return cookie, sid, token

    users = [
        ("alice@example.com", "correct-horse", "org_acme"),
        ("bob@example.com", "battery-staple", ""),
    ]
    return list(await asyncio.gather(*(one(*users[n % 2]) for n in range(count))))


def _lua_request(target: str, body: str, headers: dict[str, str]) -> str:
    all_headers = {"Content-Type": "application/x-www-form-urlencoded", **headers}
    header_items = ", ".join(f'["{k}"] = "{v}"' for k, v in all_headers.items())
    return f'{{ path = "{target}", body = "{body}", headers = {{ {header_items} }} }}'


def rotating_script(
    folder: Path, name: str, requests: list[tuple[str, str, dict[str, str]]]
) -> Path:
    """A wrk script that cycles through (path, body, headers) requests, as they are."""
    lines = ["local requests = {"]
    lines += [f"  {_lua_request(*request)}," for request in requests]
    lines += [
        "}",
        "local n = 0",
        "request = function()",
        "  n = n + 1",
        "  local r = requests[(n % #requests) + 1]",
        '  return wrk.format("POST", r.path, r.headers, r.body)',
        "end",
    ]
    path = folder / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


# Base64url decoding and the answer's session, in wrk's Lua: enough to read `sid`.
_LATEST_LUA = """
local by_sid = {}
for _, r in ipairs(requests) do by_sid[r.sid] = r end
local sextet = {}
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
for i = 1, 64 do sextet[alphabet:byte(i)] = i - 1 end
local function b64url(segment)
  local out, value, bits = {}, 0, 0
  for i = 1, #segment do
    value = value * 64 + sextet[segment:byte(i)]
    bits = bits + 6
    if bits >= 8 then
      bits = bits - 8
      local byte = math.floor(value / 2 ^ bits)
      out[#out + 1] = string.char(byte)
      value = value - byte * 2 ^ bits
    end
  end
  return table.concat(out)
end
local n = 0
request = function()
  n = n + 1
  local r = requests[(n % #requests) + 1]
  return wrk.format("POST", r.path, r.headers, r.form .. r.token)
end
response = function(status, headers, body)
  if status ~= 200 then return end
  local jwt = body:match('"jwt":"([^"]+)"')
  local payload = jwt and jwt:match("^[^.]+%.([^.]+)%.")
  local sid = payload and b64url(payload):match('"sid":"([^"]+)"')
  local r = sid and by_sid[sid]
  if r then r.token = jwt end
end
"""


def latest_token_script(
    folder: Path, name: str, requests: list[tuple[str, str, dict[str, str]]]
) -> Path:
    """Like `rotating_script`, but each browser posts the last token it was answered
    (read from each answer, by its `sid`), as a refreshing browser does."""
    lines = ["local requests = {"]
    for target, body, headers in requests:
        form, token = body.rsplit("token=", 1)
        sid = target.split("/")[4]
        entry = _lua_request(target, "", headers)[:-2]
        lines.append(f'  {entry}, sid = "{sid}", form = "{form}token=", token = "{token}" }},')
    lines.append("}")
    path = folder / f"{name}.lua"
    path.write_text("\n".join(lines) + _LATEST_LUA)
    return path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def _mint_requests(
    sessions: list[tuple[str, str, str]], tokens: list[str]
) -> list[tuple[str, str, dict[str, str]]]:
    return [
        (
            f"/v1/client/sessions/{sid}/tokens",
            f"organization_id={'org_acme' if n % 2 == 0 else ''}&token={token}",
            {"Cookie": cookie, "Origin": "http://localhost:3000"},
        )
        for n, ((cookie, sid, _), token) in enumerate(zip(sessions, tokens, strict=True))
    ]


async def _warm(
    edge: str, sessions: list[tuple[str, str, str]], *, force_origin: bool = False
) -> list[str]:
    """One edge mint per session through this edge: the tokens the benchmark posts.

    In steady state a refresh posts the token the edge minted a minute
    earlier, so that is what the load posts, not the origin's first token.
    With `force_origin`, one origin mint per session instead: tokens the
    origin signed after this edge started, which it clones (claims assembled
    before a store began go to the origin: `proxy/store/base.py`).
    """
    async with aiohttp.ClientSession() as client:

        async def one(n: int, cookie: str, sid: str, token: str) -> str:
            form = {"organization_id": "org_acme" if n % 2 == 0 else "", "token": token}
            if force_origin:
                form["force_origin"] = "true"
            async with client.post(
                f"{edge}/v1/client/sessions/{sid}/tokens", data=form, headers={"Cookie": cookie}
            ) as response:
                jwt: str = (await response.json())["jwt"]
                return jwt

        return list(await asyncio.gather(*(one(n, *s) for n, s in enumerate(sessions))))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--sessions",
        type=int,
        default=128,
        help="signed-in browsers to rotate (more than --connections: one refresh in flight each)",
    )
    parser.add_argument("--origin-latency-ms", type=int, default=0)
    parser.add_argument("--redis", action="store_true", help="also measure with the Redis store")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench needs wrk: apt-get install wrk")
    run = {"duration": args.duration, "connections": args.connections}
    figures: dict[str, Figure] = {}
    notes: dict[str, float] = {}
    every = {"SESSION_MINTER_LIMITS__COALESCE": "false"}
    with tempfile.TemporaryDirectory(prefix="session-minter-bench-") as tmp:
        folder = Path(tmp)
        key_file = new_key(folder)
        edge_port, origin_port, bare_port = free_port(), free_port(), free_port()
        edge, origin = f"http://127.0.0.1:{edge_port}", f"http://127.0.0.1:{origin_port}"
        stores = ["memory"] + (["redis"] if args.redis else [])
        with contextlib.ExitStack() as stack:
            if args.redis:
                redis_port = free_port()
                folder.joinpath("redis.port").write_text(str(redis_port))
                stack.enter_context(
                    process(
                        [
                            *("redis-server", "--port", str(redis_port)),
                            *("--save", "", "--appendonly", "no"),
                        ],
                        0,
                    )
                )
            config = write_config(folder, edge_port, origin_port, "memory", args.origin_latency_ms)
            stack.enter_context(process([*CLI, "origin", "--config", str(config)], 0))
            wait_ready(f"{origin}/v1/jwks")
            sessions: list[tuple[str, str, str]] = []
            for store in stores:
                config = write_config(folder, edge_port, origin_port, store, args.origin_latency_ms)
                with process([*CLI, "serve", "--config", str(config)], 1, every) as served:
                    wait_ready(f"{edge}/healthz")
                    if not sessions:
                        sessions = asyncio.run(_sessions(edge, args.sessions))
                    mints = _mint_requests(sessions, asyncio.run(_warm(edge, sessions)))
                    script = latest_token_script(folder, f"mint-{store}", mints)
                    before = cpu_seconds(served.pid)
                    figure = wrk(f"edge mint, {store} store", edge + "/", lua=script, **run)
                    figures[f"mint_{store}"] = figure
                    notes[f"cpu_{store}"] = (
                        (cpu_seconds(served.pid) - before) / (figure.rps * args.duration) * 1e6
                    )
                    if store != "memory":
                        continue
                    first = _mint_requests(sessions, [token for _, _, token in sessions])
                    figures["mint_first"] = wrk(
                        "edge mint, posting the origin's token",
                        edge + "/",
                        lua=rotating_script(folder, "mint-first", first),
                        **run,
                    )
                    forced = [(path, body + "&force_origin=true", h) for path, body, h in mints]
                    figures["origin_mint"] = wrk(
                        f"origin mint via edge (+{args.origin_latency_ms} ms)",
                        edge + "/",
                        lua=rotating_script(folder, "forced", forced),
                        **run,
                    )
                    figures["forwarded"] = wrk(
                        "forwarded GET /v1/environment", f"{edge}/v1/environment", lua=None, **run
                    )
                    figures["direct"] = wrk(
                        "direct GET /v1/environment", f"{origin}/v1/environment", lua=None, **run
                    )
                    one = {"duration": args.duration, "connections": 1}
                    figures["forwarded_1"] = wrk(
                        "forwarded GET, 1 connection", f"{edge}/v1/environment", lua=None, **one
                    )
                    figures["direct_1"] = wrk(
                        "direct GET, 1 connection", f"{origin}/v1/environment", lua=None, **one
                    )
            config = write_config(folder, edge_port, origin_port, "memory", args.origin_latency_ms)
            with process([*CLI, "serve", "--config", str(config)], 1):
                wait_ready(f"{edge}/healthz")
                mints = _mint_requests(sessions, asyncio.run(_warm(edge, sessions)))
                figures["coalesced"] = wrk(
                    "edge mint, tabs coalesced (default)",
                    edge + "/",
                    lua=rotating_script(folder, "mint-coalesced", mints),
                    **run,
                )
            workers = {
                **every,
                "SESSION_MINTER_SERVER__WORKERS": "2",
                # Like for like with one worker's memory store; sign-outs are not measured.
                "SESSION_MINTER_STORE__MEMORY_PER_WORKER": "true",
            }
            with process([*CLI, "serve", "--config", str(config)], None, workers):
                wait_workers(f"{edge}/healthz", 2)
                # Scaling, like for like: both workers and the one-worker figure it is
                # compared with verify every posted token in full (the origin's).
                fresh = asyncio.run(_warm(edge, sessions, force_origin=True))
                figures["workers_2"] = wrk(
                    "edge mint, --workers 2, origin's token",
                    edge + "/",
                    lua=rotating_script(
                        folder, "mint-workers-first", _mint_requests(sessions, fresh)
                    ),
                    **run,
                )
                # Each worker knows the tokens it signed, here half of them: every
                # connection carries every session (a balancer that is not sticky).
                mints = _mint_requests(sessions, asyncio.run(_warm(edge, sessions)))
                figures["workers_2_steady"] = wrk(
                    "edge mint, --workers 2 (unpinned)",
                    edge + "/",
                    lua=latest_token_script(folder, "mint-workers", mints),
                    **run,
                )
            naive = [sys.executable, str(HERE / "naive_server.py"), str(bare_port)]
            with process([*naive, f"{origin}/v1/jwks", str(key_file)], 1):
                wait_ready(f"http://127.0.0.1:{bare_port}/")  # GET: 405, up
                figures["naive"] = wrk(
                    "naive aiohttp + pyjwt mint (no checks)",
                    f"http://127.0.0.1:{bare_port}/",
                    lua=script,
                    **run,
                )
        token_len = len(mints[0][1].rsplit("token=", 1)[1])
        bare_body = post_script(
            folder, "bare", "organization_id=org_acme&token=" + "x" * token_len, {}
        )
        ceiling = [sys.executable, str(HERE / "ceiling_server.py"), str(bare_port), str(token_len)]
        for name, label, extra in (
            ("bare", "bare aiohttp handler (same bytes)", []),
            ("bare_crypto", "bare handler + raw verify + sign, 1 process", ["--crypto"]),
            ("bare_batched", "the same, signatures of a loop turn together", ["--crypto-batched"]),
        ):
            with process([*ceiling, *extra], 1):
                wait_ready(f"http://127.0.0.1:{bare_port}/")
                figures[name] = wrk(label, f"http://127.0.0.1:{bare_port}/t", lua=bare_body, **run)

    crypto_us = crypto_cost_us()
    http_us = 1e6 / figures["bare"].rps
    ceiling_rps = 1e6 / (http_us + crypto_us)
    measured_rps = max(figures["bare_crypto"].rps, figures["bare_batched"].rps)
    batching_gain = figures["bare_batched"].rps / figures["bare_crypto"].rps
    print(
        f"\nsession-minter benchmark: {args.duration} s per figure, {args.connections} "
        f"connections, {args.sessions} sessions, wrk on CPU 0, server on CPU 1\n"
    )
    for figure in figures.values():
        print(figure.line())
    print(f"{'RS256 verify + sign (cryptography, raw)':<44} {crypto_us:>9.0f} us per request")
    print(f"{'ceiling = 1 / (HTTP + crypto)':<44} {ceiling_rps:>9.0f} req/s")
    for store in stores:
        label = f"edge CPU per mint ({store})"
        print(f"{label:<44} {notes[f'cpu_{store}']:>9.0f} us")
    print("\nratios")

    def ratio(label: str, value: float, unit: str = "") -> None:
        print(f"  {label:<42} {value:5.2f}{unit}")

    mint, origin_mint = figures["mint_memory"], figures["origin_mint"]
    for store in stores:
        ratio(f"edge mint ({store}) / ceiling", figures[f"mint_{store}"].rps / ceiling_rps)
    ratio("edge mint / ceiling measured in 1 process", mint.rps / measured_rps)
    ratio("ceiling in 1 process / 1 / (HTTP + crypto)", measured_rps / ceiling_rps)
    ratio("bare handler: batched / per-request signing", batching_gain)
    first_mint = figures["mint_first"]
    ratio("edge mint, origin's token / ceiling", first_mint.rps / ceiling_rps)
    ratio("naive aiohttp + pyjwt / ceiling", figures["naive"].rps / ceiling_rps)
    ratio("edge mint coalesced / ceiling", figures["coalesced"].rps / ceiling_rps)
    ratio("--workers 2 / one worker, origin's token", figures["workers_2"].rps / first_mint.rps)
    ratio("--workers 2 / one worker, edge tokens", figures["workers_2_steady"].rps / mint.rps)
    ratio("edge mint / origin mint (req/s)", mint.rps / origin_mint.rps)
    ratio("edge mint p99 / p50", mint.p99_ms / mint.p50_ms)
    ratio("forwarded / direct (req/s)", figures["forwarded"].rps / figures["direct"].rps)
    gap = figures["forwarded_1"].p50_ms - figures["direct_1"].p50_ms
    ratio("forwarded p50 - direct p50 (1 connection)", gap, " ms")


if __name__ == "__main__":
    main()
