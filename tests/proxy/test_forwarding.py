"""Forwarding: the real edge in front of a recording origin, raw bytes on both sides.

Each test asserts what the origin actually received (request target, header
lines in order, body) and what the client actually got on the wire.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import os
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web

from proxy.config import OriginSettings, ServerSettings
from proxy.services import SERVICES
from tests.proxy.raw_origin import (
    GUARD_S,
    RawOrigin,
    Received,
    answer_bytes,
    closed_port_url,
    edge_in_front,
    exchange,
    host_port,
    one_answer,
    parse_answer,
)
from tests.stack import listening_socket, url_of


def get(target: str, *lines: str, method: str = "GET", body: bytes = b"") -> bytes:
    head = [f"{method} {target} HTTP/1.1", "Host: app.example.test", *lines, "Connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def assert_clerk_error(raw: bytes, status: int, code: str) -> None:
    answer = parse_answer(raw)
    assert answer.status == status
    assert answer.all("Content-Type")[0].startswith("application/json")
    [error] = orjson.loads(answer.body)["errors"]
    assert set(error) == {"code", "message", "long_message", "meta"}
    assert error["code"] == code


# -- the client session -----------------------------------------------------------------


async def test_no_cookie_jar_one_users_cookie_never_reaches_another(tmp_path: Path) -> None:
    async def respond(received: Received) -> bytes:
        if received.target == "/v1/client/sign_ins":
            return answer_bytes(headers=[("Set-Cookie", "__client=alice-secret; Path=/")])
        return answer_bytes()

    async with RawOrigin(respond) as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as alice:
            async with alice.post(edge + "/v1/client/sign_ins") as answer:
                assert answer.cookies["__client"].value == "alice-secret"
            async with alice.get(edge + "/v1/client") as answer:
                assert answer.status == 200
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as bob,
            bob.get(edge + "/v1/client") as answer,
        ):
            assert answer.status == 200
    _, alice_after, bob_request = origin.forwarded()
    assert alice_after.all("Cookie") == ["__client=alice-secret"]
    assert bob_request.all("Cookie") == []


# -- streaming ----------------------------------------------------------------------------

MB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


async def test_50_mb_streams_both_ways_with_bounded_memory(tmp_path: Path) -> None:
    """Each side waits for the other to see its first chunk: only streaming can pass."""
    chunk = os.urandom(MB)
    total = 50 * MB
    expected = hashlib.sha256(chunk * 50).hexdigest()
    origin_saw_first, client_saw_first = asyncio.Event(), asyncio.Event()
    peaks: list[int] = []
    baseline = resident_bytes()

    async def digest_of(stream: aiohttp.StreamReader, saw_first: asyncio.Event) -> tuple[int, str]:
        """Size and SHA-256 of a stream, read in pieces; the memory is sampled as it goes."""
        digest, size = hashlib.sha256(), 0
        async for piece in stream.iter_chunked(256 * 1024):
            digest.update(piece)
            size += len(piece)
            saw_first.set()
            peaks.append(resident_bytes())
        return size, digest.hexdigest()

    async def upload(request: web.Request) -> web.StreamResponse:
        size, digest = await digest_of(request.content, origin_saw_first)
        reply = web.StreamResponse(headers={"X-Received": f"{size} {digest}"})
        reply.content_length = total
        await reply.prepare(request)
        await reply.write(chunk)
        await asyncio.wait_for(client_saw_first.wait(), GUARD_S)
        for _ in range(49):
            await reply.write(chunk)
        return reply

    async def body() -> object:
        yield chunk
        await asyncio.wait_for(origin_saw_first.wait(), GUARD_S)
        for _ in range(49):
            yield chunk

    async def jwks(request: web.Request) -> web.Response:
        return web.json_response({"keys": []})

    origin_app = web.Application()
    origin_app.router.add_post("/upload", upload)
    origin_app.router.add_get("/v1/jwks", jwks)
    runner, sock = web.AppRunner(origin_app), listening_socket()
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        async with (
            edge_in_front(url_of(sock), tmp_path) as (edge, _),
            aiohttp.ClientSession() as client,
            client.post(
                edge + "/upload", data=body(), headers={"Content-Length": str(total)}
            ) as answer,
        ):
            received = await digest_of(answer.content, client_saw_first)
    finally:
        await runner.cleanup()
    assert answer.status == 200
    assert answer.headers["X-Received"] == f"{total} {expected}"
    assert received == (total, expected)
    growth = max(peaks) - baseline
    assert growth < 20 * MB, f"resident memory grew by {growth / MB:.1f} MB for a 50 MB body"


# -- headers ------------------------------------------------------------------------------


async def test_hop_by_hop_headers_are_removed_in_both_directions(tmp_path: Path) -> None:
    async def respond(received: Received) -> bytes:
        return answer_bytes(
            headers=[
                ("Connection", "X-Origin-Hop"),
                ("X-Origin-Hop", "must go"),
                ("Keep-Alive", "timeout=5"),
                ("Proxy-Connection", "keep-alive"),
                ("Trailer", "X-Checksum"),
                ("Upgrade", "h2c"),
                ("X-End-To-End", "kept"),
            ]
        )

    async with RawOrigin(respond) as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        raw = await exchange(
            edge,
            get(
                "/v1/client",
                "Connection: X-Client-Hop",
                "X-Client-Hop: must go",
                "Keep-Alive: timeout=5",
                "Proxy-Connection: keep-alive",
                "TE: trailers",
                "Trailer: X-Checksum",
                "Upgrade: websocket",
                "X-End-To-End: kept",
            ),
        )
    [received] = origin.forwarded()
    hop = {"x-client-hop", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"}
    assert not hop & {name.lower() for name, _ in received.headers}
    assert all("x-client-hop" not in value.lower() for value in received.all("Connection"))
    assert received.one("X-End-To-End") == "kept"
    answer = parse_answer(raw)
    assert answer.status == 200
    names = {name.lower() for name, _ in answer.headers}
    assert not {"x-origin-hop", "keep-alive", "proxy-connection", "trailer", "upgrade"} & names
    assert answer.all("Connection") in ([], ["close"])  # the edge's own, never the origin's
    assert answer.all("X-End-To-End") == ["kept"]


async def test_content_length_is_recomputed_never_copied(tmp_path: Path) -> None:
    compressed = gzip.compress(b'{"hello":"world"}' * 100)

    async def respond(received: Received) -> bytes:
        if received.target == "/chunked-answer":
            chunks = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            head = answer_bytes(headers=[("Transfer-Encoding", "chunked")], body=b"")
            return head.replace(b"Content-Length: 0\r\n", b"") + chunks
        return answer_bytes(headers=[("Content-Encoding", "gzip")], body=compressed)

    async with RawOrigin(respond) as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        fixed = await exchange(
            edge, get("/fixed", "Content-Length: 5", method="POST", body=b"hello")
        )
        chunked_body = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        chunked = await exchange(
            edge,
            get("/chunked-answer", "Transfer-Encoding: chunked", method="POST", body=chunked_body),
        )
    first, second = origin.forwarded()
    assert first.all("Content-Length") == ["5"]
    assert first.body == b"hello"
    assert second.body == b"abcde"
    assert second.all("Content-Length") in ([], ["5"])
    assert len(second.all("Content-Length")) + len(second.all("Transfer-Encoding")) == 1
    gz = parse_answer(fixed)
    assert gz.body == compressed, "bodies pass byte for byte, still compressed"
    assert gz.all("Content-Encoding") == ["gzip"]
    assert gz.all("Content-Length") == [str(len(compressed))]
    de = parse_answer(chunked)
    assert de.body == b"hello world"
    assert len(de.all("Content-Length")) + len(de.all("Transfer-Encoding")) == 1


async def test_answers_the_edge_reads_are_asked_for_uncompressed(tmp_path: Path) -> None:
    """A CDN in front of the origin compresses whenever allowed; the edge must read
    a refresh's token and a sign-out's sessions, so it asks for those plain."""
    token_answer = b'{"object":"token","jwt":"a.b.c"}'

    async def respond(received: Received) -> bytes:
        if "gzip" in ",".join(received.all("Accept-Encoding")):
            return answer_bytes(headers=[("Content-Encoding", "gzip")], body=gzip.compress(b"{}"))
        return answer_bytes(headers=[("Content-Type", "application/json")], body=token_answer)

    accepts = "Accept-Encoding: gzip, deflate, br"
    form = "Content-Type: application/x-www-form-urlencoded"
    body = b"organization_id="
    async with RawOrigin(respond) as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        refresh = await exchange(
            edge,
            get(
                "/v1/client/sessions/sess_1/tokens",
                accepts,
                form,
                f"Content-Length: {len(body)}",
                method="POST",
                body=body,
            ),
        )
        sign_out = await exchange(edge, get("/v1/client", accepts, method="DELETE"))
        other = await exchange(edge, get("/v1/environment", accepts))
    to_refresh, to_sign_out, to_other = origin.forwarded()
    assert to_refresh.all("Accept-Encoding") == ["identity"]
    assert to_sign_out.all("Accept-Encoding") == ["identity"]
    assert to_other.all("Accept-Encoding") == ["gzip, deflate, br"], "the rest is untouched"
    answer = parse_answer(refresh)
    assert (answer.status, answer.body) == (200, token_answer)
    assert parse_answer(sign_out).status == 200
    assert parse_answer(other).all("Content-Encoding") == ["gzip"]


@pytest.mark.parametrize("preserve_host", [False, True])
async def test_host_is_the_origins_or_the_clients_per_config(
    tmp_path: Path, preserve_host: bool
) -> None:
    async with RawOrigin() as origin:
        settings = OriginSettings(url=origin.url, preserve_host=preserve_host)
        async with edge_in_front(origin.url, tmp_path, origin=settings) as (edge, _):
            await exchange(edge, get("/v1/client"))
    [received] = origin.forwarded()
    origin_authority = origin.url.removeprefix("http://")
    assert received.one("Host") == ("app.example.test" if preserve_host else origin_authority)
    assert received.one("X-Forwarded-Host") == "app.example.test"


@pytest.mark.parametrize("trusted", [False, True])
async def test_x_forwarded_for_is_appended_only_behind_a_trusted_proxy(
    tmp_path: Path, trusted: bool
) -> None:
    server = ServerSettings(trusted_proxies=("127.0.0.1",) if trusted else ())
    async with (
        RawOrigin() as origin,
        edge_in_front(origin.url, tmp_path, server=server) as (edge, _),
    ):
        await exchange(
            edge,
            get(
                "/v1/client",
                "X-Forwarded-For: 203.0.113.9",
                "X-Forwarded-Proto: https",
                "X-Forwarded-Host: accounts.example.test",
            ),
        )
    [received] = origin.forwarded()
    if trusted:
        assert received.all("X-Forwarded-For") == ["203.0.113.9, 127.0.0.1"]
        assert received.one("X-Forwarded-Proto") == "https"
        assert received.one("X-Forwarded-Host") == "accounts.example.test"
    else:
        assert received.all("X-Forwarded-For") == ["127.0.0.1"]
        assert received.one("X-Forwarded-Proto") == "http"
        assert received.one("X-Forwarded-Host") == "app.example.test"


@pytest.mark.parametrize("trusted", [False, True])
async def test_other_client_address_claims_are_kept_only_behind_a_trusted_proxy(
    tmp_path: Path, trusted: bool
) -> None:
    """`Forwarded` (RFC 7239) and `X-Real-IP` say what X-Forwarded-* say: a client
    that is not a trusted proxy cannot pass a made-up address or scheme on in them."""
    server = ServerSettings(trusted_proxies=("127.0.0.1",) if trusted else ())
    claims = [
        "Forwarded: for=203.0.113.9;proto=https;host=accounts.example.test",
        "X-Real-IP: 203.0.113.9",
    ]
    async with (
        RawOrigin() as origin,
        edge_in_front(origin.url, tmp_path, server=server) as (edge, _),
    ):
        await exchange(edge, get("/v1/client", *claims))
    [received] = origin.forwarded()
    kept = [
        f"{name}: {value}" for name, value in received.headers if name in ("Forwarded", "X-Real-IP")
    ]
    assert kept == (claims if trusted else [])
    assert received.all("X-Forwarded-For") == ["127.0.0.1"]


async def test_every_set_cookie_reaches_the_client_in_order(tmp_path: Path) -> None:
    cookies = [
        "__client=abc; Path=/; HttpOnly; Secure; SameSite=Lax",
        "__client_uat=1700000000; Path=/",
        "__session=; Path=/; Max-Age=0",
    ]

    async def respond(received: Received) -> bytes:
        return answer_bytes(headers=[("Set-Cookie", cookie) for cookie in cookies])

    async with RawOrigin(respond) as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        streamed = parse_answer(await exchange(edge, get("/v1/client")))
        # A sign-out is forwarded buffered: its cookies must survive that path too.
        buffered = parse_answer(
            await exchange(edge, get("/v1/client/sessions/sess_1/end", method="POST"))
        )
    assert streamed.all("Set-Cookie") == cookies
    assert buffered.all("Set-Cookie") == cookies


async def test_duplicate_request_headers_keep_their_order(tmp_path: Path) -> None:
    async with RawOrigin() as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        await exchange(
            edge,
            get(
                "/v1/client",
                "X-Dup: one",
                "Cookie: a=1",
                "X-Other: between",
                "X-Dup: two",
                "Cookie: b=2",
                "X-Dup: three",
            ),
        )
    [received] = origin.forwarded()
    assert received.all("X-Dup") == ["one", "two", "three"]
    assert received.all("Cookie") == ["a=1", "b=2"]
    names = [name for name, _ in received.headers if name in ("X-Dup", "X-Other")]
    assert names == ["X-Dup", "X-Other", "X-Dup", "X-Dup"]


# -- statuses, methods, bodies ------------------------------------------------------------


@pytest.mark.parametrize("status", [201, 202, 299, 400, 404, 418, 422, 500, 503, 599])
async def test_status_codes_pass_through(tmp_path: Path, status: int) -> None:
    async def respond(received: Received) -> bytes:
        return answer_bytes(status, body=b"origin says %d" % status, reason="Whatever")

    async with RawOrigin(respond) as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        answer = parse_answer(await exchange(edge, get("/v1/anything")))
    assert answer.status == status
    assert answer.body == b"origin says %d" % status
    assert len(origin.forwarded()) == 1


@pytest.mark.parametrize(
    ("status", "location"),
    [
        (301, "https://accounts.example.test/sign-in?redirect_url=https%3A%2F%2Fapp%2F"),
        (302, "/v1/client/../other?x=%2F"),
        (303, "//cdn.example.test/a%20b"),
        (307, "/v1/verify?token=a+b"),
        (308, "relative/path"),
    ],
)
async def test_redirects_reach_the_client_untouched_and_unfollowed(
    tmp_path: Path, status: int, location: str
) -> None:
    async def respond(received: Received) -> bytes:
        return answer_bytes(status, [("Location", location)], b"", reason="Redirect")

    async with RawOrigin(respond) as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        answer = parse_answer(await exchange(edge, get("/v1/oauth_callback")))
    assert answer.status == status
    assert answer.all("Location") == [location]
    assert [r.target for r in origin.forwarded()] == ["/v1/oauth_callback"]


async def test_head_keeps_content_length_without_a_body(tmp_path: Path) -> None:
    async def respond(received: Received) -> bytes:
        head = answer_bytes(headers=[("Content-Length", "1234")], content_length=False, body=b"")
        return head if received.method == "HEAD" else answer_bytes(body=b"after head")

    async with RawOrigin(respond) as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        # HEAD then GET on one connection: a body after the HEAD would corrupt the second.
        pipelined = b"HEAD /v1/file HTTP/1.1\r\nHost: h\r\n\r\n" + get("/v1/next")
        raw = await exchange(edge, pipelined)
    head_part, _, rest = raw.partition(b"\r\n\r\n")
    head = parse_answer(head_part + b"\r\n\r\n")
    assert head.status == 200
    assert head.all("Content-Length") == ["1234"]
    assert rest.startswith(b"HTTP/1.1 200"), "nothing between the HEAD answer and the next"
    assert parse_answer(rest).body == b"after head"
    assert [r.method for r in origin.forwarded()] == ["HEAD", "GET"]


async def test_options_preflight_is_forwarded_and_answered_as_the_origin_did(
    tmp_path: Path,
) -> None:
    allow = [
        ("Access-Control-Allow-Origin", "https://app.example.test"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE"),
        ("Access-Control-Allow-Headers", "content-type, authorization"),
        ("Access-Control-Max-Age", "600"),
    ]

    async def respond(received: Received) -> bytes:
        return answer_bytes(204, allow, b"", reason="No Content", content_length=False)

    async with RawOrigin(respond) as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        raw = await exchange(
            edge,
            get(
                "/v1/client/sessions/sess_1/tokens",
                "Origin: https://app.example.test",
                "Access-Control-Request-Method: POST",
                "Access-Control-Request-Headers: content-type, authorization",
                method="OPTIONS",
            ),
        )
    [received] = origin.forwarded()
    assert received.method == "OPTIONS"
    assert received.one("Access-Control-Request-Method") == "POST"
    assert received.one("Origin") == "https://app.example.test"
    answer = parse_answer(raw)
    assert answer.status == 204
    assert answer.body == b""
    for name, value in allow:
        assert answer.all(name) == [value]


@pytest.mark.parametrize("status", [204, 304])
async def test_204_and_304_have_no_body(tmp_path: Path, status: int) -> None:
    async def respond(received: Received) -> bytes:
        if received.target == "/v1/next":
            return answer_bytes(body=b"next")
        return answer_bytes(status, [("ETag", '"v1"')], b"", reason="X", content_length=False)

    async with RawOrigin(respond) as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        pipelined = b"GET /v1/environment HTTP/1.1\r\nHost: h\r\n\r\n" + get("/v1/next")
        raw = await exchange(edge, pipelined)
    first, _, rest = raw.partition(b"\r\n\r\n")
    answer = parse_answer(first + b"\r\n\r\n")
    assert answer.status == status
    assert answer.all("ETag") == ['"v1"']
    assert answer.all("Transfer-Encoding") == []
    assert rest.startswith(b"HTTP/1.1 200"), "no body bytes after a bodiless answer"
    assert parse_answer(rest).body == b"next"


# -- the request target -------------------------------------------------------------------

RAW_TARGETS = [
    "/v1/a%2Fb/c",
    "/v1/client/../admin",
    "/v1/%2e%2e/%2E%2E/x",
    "//v1//double//slashes/",
    "/v1/sp%20ace;matrix=1/%7Euser",
    "/v1/client?x=%20&y=a+b&flag&empty=&pct=%2F&dup=1&dup=2&utf=%C3%A9",
    "/v1/client?redirect_url=https%3A%2F%2Fa.test%2F..%2F&&&",
    "/v1/client/sessions/sess_1/tokens/../../../environment",
]


@pytest.mark.parametrize("target", RAW_TARGETS)
async def test_raw_targets_reach_the_origin_exactly_as_sent(tmp_path: Path, target: str) -> None:
    async with RawOrigin() as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        answer = parse_answer(await exchange(edge, get(target)))
    assert answer.status == 200
    assert [r.target for r in origin.forwarded()] == [target]


@pytest.mark.parametrize("target", RAW_TARGETS)
async def test_raw_targets_lose_only_the_prefix(tmp_path: Path, target: str) -> None:
    server = ServerSettings(prefix="/__clerk")
    async with (
        RawOrigin() as origin,
        edge_in_front(origin.url, tmp_path, server=server) as (edge, _),
    ):
        await exchange(edge, get("/__clerk" + target))
    [received] = origin.forwarded()
    assert received.target == target


async def test_a_query_on_the_bare_prefix_loses_the_prefix(tmp_path: Path) -> None:
    server = ServerSettings(prefix="/__clerk")
    async with (
        RawOrigin() as origin,
        edge_in_front(origin.url, tmp_path, server=server) as (edge, _),
    ):
        await exchange(edge, get("/__clerk?x=1"))
        await exchange(edge, get("/__clerk"))
        await exchange(edge, get("/__clerkish?x=1"))
    assert [r.target for r in origin.forwarded()] == ["/?x=1", "/", "/__clerkish?x=1"]


@pytest.mark.parametrize(
    "target", ["http://evil.example/v1/client", "https://h/v1/client/sessions/sess_1/tokens"]
)
async def test_an_absolute_form_target_is_a_400_never_forwarded(
    tmp_path: Path, target: str
) -> None:
    async with RawOrigin() as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        raw = await exchange(edge, get(target, method="POST"))
    assert_clerk_error(raw, 400, "invalid_request_target")
    assert origin.forwarded() == []


async def test_expect_100_continue_is_answered_by_the_edge_not_passed_on(tmp_path: Path) -> None:
    body = b"a body the origin must get"
    async with RawOrigin() as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        reader, writer = await asyncio.open_connection(*host_port(edge))
        try:
            writer.write(
                get(
                    "/v1/upload",
                    f"Content-Length: {len(body)}",
                    "Expect: 100-continue",
                    method="POST",
                )
            )
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100 ")
            writer.write(body)
            answer = parse_answer(await asyncio.wait_for(reader.read(), GUARD_S))
        finally:
            writer.close()
    assert answer.status == 200
    [received] = origin.forwarded()
    assert received.all("Expect") == []
    assert received.body == body


@pytest.mark.parametrize("target", ["/v1/client/sessions/sess_1/tokens", "/v1/client/sign_ups"])
async def test_a_body_that_stops_arriving_gets_a_408(tmp_path: Path, target: str) -> None:
    """Past `server.body_timeout_s` without a byte, on the token route (read whole) and
    on a forwarded route (streamed to the origin, whose connection is let go)."""
    server = ServerSettings(body_timeout_s=0.2)
    async with (
        RawOrigin() as origin,
        edge_in_front(origin.url, tmp_path, server=server) as (edge, _),
    ):
        raw = await exchange(
            edge,
            get(
                target,
                "Content-Type: application/x-www-form-urlencoded",
                "Content-Length: 1000",
                method="POST",
                body=b"organization_id=",  # and then nothing
            ),
        )
    assert_clerk_error(raw, 408, "request_timeout")


class LoggedStatuses(logging.Handler):
    """The status of each request line the edge logs, as the lines are written."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: asyncio.Queue[int] = asyncio.Queue()

    def emit(self, record: logging.LogRecord) -> None:
        self.statuses.put_nowait(record.__dict__["status"])


@pytest.mark.parametrize("framing", ["Content-Length: 1000", "Transfer-Encoding: chunked"])
async def test_a_client_hanging_up_mid_upload_is_a_499_not_an_origin_failure(
    tmp_path: Path, framing: str
) -> None:
    """The client went away: logged and counted as 499, as on the token route, never as
    a 502 that tells operators the origin failed."""
    logged = LoggedStatuses()
    request_log = logging.getLogger("session_minter.request")
    level = request_log.level
    request_log.setLevel(logging.INFO)
    request_log.addHandler(logged)
    try:
        async with (
            RawOrigin() as origin,
            edge_in_front(origin.url, tmp_path) as (edge, app),
        ):
            _, writer = await asyncio.open_connection(*host_port(edge))
            writer.write(get("/v1/me/profile_image", framing, method="POST", body=b"5\r\npart"))
            await writer.drain()
            writer.close()  # mid-body
            await writer.wait_closed()
            status = await asyncio.wait_for(logged.statuses.get(), GUARD_S)
            registry = app[SERVICES].metrics.registry
    finally:
        request_log.removeHandler(logged)
        request_log.setLevel(level)
    assert status == 499
    counted = {
        code: registry.get_sample_value(
            "session_minter_requests_total", {"route": "forward", "status": code}
        )
        for code in ("499", "502")
    }
    assert counted == {"499": 1.0, "502": None}


# -- origin failures ----------------------------------------------------------------------


async def test_unreachable_origin_is_502_in_clerk_shape(tmp_path: Path) -> None:
    sock, url = closed_port_url()
    with sock:
        async with edge_in_front(url, tmp_path) as (edge, _):
            streamed = await exchange(edge, get("/v1/client"))
            buffered = await exchange(edge, get("/v1/client/sessions/sess_1/end", method="POST"))
    for raw in (streamed, buffered):
        assert_clerk_error(raw, 502, "origin_unavailable")
        assert b"Traceback" not in raw


async def test_origin_timeout_is_504_in_clerk_shape(tmp_path: Path) -> None:
    async def never(received: Received) -> None:
        return None

    async with RawOrigin(never) as origin:
        settings = OriginSettings(url=origin.url, timeout_s=0.3)
        async with edge_in_front(origin.url, tmp_path, origin=settings) as (edge, _):
            streamed = await exchange(edge, get("/v1/client"))
            buffered = await exchange(edge, get("/v1/client/sessions/sess_1/end", method="POST"))
    for raw in (streamed, buffered):
        assert_clerk_error(raw, 504, "origin_unavailable")
    assert len(origin.forwarded()) == 2


async def test_origin_answer_with_ambiguous_framing_is_502(tmp_path: Path) -> None:
    async def respond(received: Received) -> bytes:
        return (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"
        )

    async with RawOrigin(respond) as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        raw = await exchange(edge, get("/v1/client"))
    assert_clerk_error(raw, 502, "origin_unavailable")
    assert b"smuggled" not in raw


# -- server limits ------------------------------------------------------------------------


async def test_slowloris_head_is_closed_by_the_header_timeout(tmp_path: Path) -> None:
    server = ServerSettings(header_timeout_s=0.3)
    async with (
        RawOrigin() as origin,
        edge_in_front(origin.url, tmp_path, server=server) as (edge, _),
    ):
        reader, writer = await asyncio.open_connection(*host_port(edge))
        writer.write(b"GET /v1/client HTTP/1.1\r\nHost: app.example.test\r\nX-Slow: ")
        await writer.drain()

        async def dribble() -> int:
            sent = 0
            while sent < 600:  # 30 s of dribbling at this pace, far past the timeout
                writer.write(b"a")
                await writer.drain()
                sent += 1
                await asyncio.sleep(0.05)  # the attacker's pace, not a synchronisation
            return sent

        attacker = asyncio.create_task(dribble())
        try:
            closed = await asyncio.wait_for(reader.read(), GUARD_S)
        finally:
            attacker.cancel()
            writer.close()
        assert closed == b"", "closed without an answer"
        assert not attacker.done() or attacker.cancelled(), "closed while bytes still trickled"
    assert origin.forwarded() == []


async def test_header_limits_come_from_config(tmp_path: Path) -> None:
    server = ServerSettings(max_header_bytes=16 * 1024, max_headers=20)
    async with (
        RawOrigin() as origin,
        edge_in_front(origin.url, tmp_path, server=server) as (edge, _),
    ):
        # 12 KiB: over aiohttp's 8190-byte default, under the configured cap.
        fits = parse_answer(await exchange(edge, get("/fits", "X-Big: " + "a" * 12 * 1024)))
        too_long = parse_answer(await exchange(edge, get("/long", "X-Big: " + "a" * 17 * 1024)))
        many = [f"X-H{i}: {i}" for i in range(25)]
        too_many = parse_answer(await exchange(edge, get("/many", *many)))
        line = parse_answer(await exchange(edge, get("/" + "p" * 17 * 1024)))
    assert fits.status == 200
    assert too_long.status == 400
    assert too_many.status == 400
    assert line.status == 400
    assert [r.target for r in origin.forwarded()] == ["/fits"]


@pytest.mark.parametrize("expect", [[], ["Expect: 100-continue"]])
async def test_token_route_refuses_an_oversize_body_before_reading_it(
    tmp_path: Path, expect: list[str]
) -> None:
    """The 413 is known from the headers alone: the body is never sent, and a
    client expecting `100 Continue` gets the 413 instead of being asked for it."""
    server = ServerSettings(header_timeout_s=0.3)  # also bounds lingering on the unread body
    async with (
        RawOrigin() as origin,
        edge_in_front(origin.url, tmp_path, server=server) as (edge, _),
    ):
        raw = await one_answer(
            edge,
            get(
                "/v1/client/sessions/sess_1/tokens",
                "Content-Type: application/x-www-form-urlencoded",
                "Content-Length: 10000000",
                *expect,
                method="POST",
            ),
        )
    assert_clerk_error(raw, 413, "request_too_large")
    assert origin.forwarded() == []


async def test_an_unknown_expectation_on_the_token_route_is_answered_in_clerk_shape(
    tmp_path: Path,
) -> None:
    """RFC 9110 10.1.1 lets a server ignore an expectation it does not know; the edge
    does, rather than answer a plain-text 417 outside the Clerk shape."""
    body = b"organization_id=&force_origin=maybe"
    async with RawOrigin() as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        raw = await exchange(
            edge,
            get(
                "/v1/client/sessions/sess_1/tokens",
                "Origin: https://app.example.test",
                "Content-Type: application/x-www-form-urlencoded",
                f"Content-Length: {len(body)}",
                "Expect: x-unknown",
                method="POST",
                body=body,
            ),
        )
    assert_clerk_error(raw, 400, "form_param_format_invalid")
    assert parse_answer(raw).all("Access-Control-Allow-Origin") == ["https://app.example.test"]
    assert origin.forwarded() == []


async def test_token_route_refuses_compressed_bodies(tmp_path: Path) -> None:
    body = gzip.compress(b"organization_id=")
    async with RawOrigin() as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        raw = await exchange(
            edge,
            get(
                "/v1/client/sessions/sess_1/tokens",
                "Content-Type: application/x-www-form-urlencoded",
                "Content-Encoding: gzip",
                f"Content-Length: {len(body)}",
                method="POST",
                body=body,
            ),
        )
    assert_clerk_error(raw, 415, "unsupported_encoding")
    assert origin.forwarded() == []


async def test_forwarded_body_over_the_token_cap_is_not_refused(tmp_path: Path) -> None:
    """`client_max_size` is for the token route: other bodies are the origin's business."""
    payload = os.urandom(300 * 1024)
    async with RawOrigin() as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        answer = parse_answer(
            await exchange(
                edge,
                get("/v1/upload", f"Content-Length: {len(payload)}", method="PUT") + payload,
            )
        )
    assert answer.status == 200
    [received] = origin.forwarded()
    assert received.body == payload
    assert received.all("Content-Length") == [str(len(payload))]


async def test_sign_out_body_split_across_writes_is_forwarded_whole(tmp_path: Path) -> None:
    form = b"redirect_url=" + b"x" * 4000
    async with RawOrigin() as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        reader, writer = await asyncio.open_connection(*host_port(edge))
        writer.write(
            get(
                "/v1/client/sessions/sess_1/end",
                "Content-Type: application/x-www-form-urlencoded",
                f"Content-Length: {len(form)}",
                method="POST",
            )
            + form[:100]
        )
        await writer.drain()
        writer.write(form[100:])
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), GUARD_S)
        writer.close()
    assert parse_answer(raw).status == 200
    [received] = origin.forwarded()
    assert received.body == form


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd-unknown"])
async def test_compressed_request_bodies_are_forwarded_byte_for_byte(
    tmp_path: Path, encoding: str
) -> None:
    """The edge never decodes a request body: whatever the codec, the origin gets the bytes."""
    payload = gzip.compress(b"a compressed upload" * 50) if encoding == "gzip" else os.urandom(512)
    async with RawOrigin() as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        answer = parse_answer(
            await exchange(
                edge,
                get(
                    "/v1/upload",
                    f"Content-Encoding: {encoding}",
                    f"Content-Length: {len(payload)}",
                    method="PUT",
                )
                + payload,
            )
        )
    assert answer.status == 200
    [received] = origin.forwarded()
    assert received.body == payload
    assert received.all("Content-Encoding") == [encoding]


@pytest.mark.parametrize(
    "target", ["/v1/me/profile_image", "/v1/client/sessions/sess_1/tokens", "/v1/client"]
)
async def test_a_body_in_a_transfer_coding_other_than_chunked_is_a_501(
    tmp_path: Path, target: str
) -> None:
    """Framing is the edge's to undo, and it only undoes `chunked`: a gzip-coded body
    would otherwise reach the origin still compressed, with nothing saying so."""
    coded = gzip.compress(b"organization_id=")
    chunked = b"%x\r\n" % len(coded) + coded + b"\r\n0\r\n\r\n"
    async with RawOrigin() as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        raw = await exchange(
            edge,
            get(
                target,
                "Content-Type: application/x-www-form-urlencoded",
                "Transfer-Encoding: gzip, chunked",
                method="POST",
                body=chunked,
            ),
        )
    assert_clerk_error(raw, 501, "unsupported_transfer_coding")
    assert origin.forwarded() == []


async def test_identity_then_chunked_is_plain_chunked(tmp_path: Path) -> None:
    async with RawOrigin() as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        raw = await exchange(
            edge,
            get(
                "/v1/upload",
                "Transfer-Encoding: identity, chunked",
                method="POST",
                body=b"5\r\nhello\r\n0\r\n\r\n",
            ),
        )
    assert parse_answer(raw).status == 200
    [received] = origin.forwarded()
    assert received.body == b"hello"
