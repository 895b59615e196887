"""Raw HTTP on both sides of the edge, for tests where an HTTP library would normalise.

`RawOrigin` stands in for the origin: an asyncio server that records every
request exactly as it arrived on the wire (request target, header lines in
order, decoded body) and answers with bytes the test chose. `edge_in_front`
runs the real edge in front of any origin URL. `exchange` sends raw bytes to
the edge and returns the raw answer; `parse_answer` splits it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from proxy import Settings, create_app
from proxy.config import KeysSettings, OriginSettings, PushSettings, ServerSettings
from proxy.keygen import write_key
from tests.stack import PUSH_SECRET, FakeClock, listening_socket, url_of

GUARD_S = 10.0  # a test that waits longer than this has failed (never a pass condition)


@dataclass
class Received:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def one(self, name: str) -> str:
        [value] = self.all(name)
        return value


def answer_bytes(
    status: int = 200,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b'{"ok":true}',
    *,
    reason: str = "OK",
    content_length: bool = True,
) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers or []]
    if content_length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


Responder = Callable[[Received], Awaitable[bytes | None]]


async def _default_responder(received: Received) -> bytes:
    return answer_bytes(headers=[("Content-Type", "application/json")])


@dataclass
class RawOrigin:
    """A recording origin. `respond` returns the answer bytes, or None to never answer."""

    respond: Responder = _default_responder
    requests: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None
    url: str = ""

    def forwarded(self, exclude: tuple[str, ...] = ("/v1/jwks",)) -> list[Received]:
        """Requests other than the edge's own JWKS fetches."""
        return [r for r in self.requests if r.target.partition("?")[0] not in exclude]

    async def __aenter__(self) -> RawOrigin:
        sock = listening_socket()
        self.url = url_of(sock)
        self._server = await asyncio.start_server(self._connection, sock=sock)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 1)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                received = await _read_request(reader)
                if received is None:
                    break
                if received.target.partition("?")[0] == "/v1/jwks":
                    body = b'{"keys":[]}'
                    writer.write(answer_bytes(body=body))
                    await writer.drain()
                    continue
                self.requests.append(received)
                self.arrived.set()
                answer = await self.respond(received)
                if answer is None:
                    await reader.read()  # hold the connection open until the edge gives up
                    break
                writer.write(answer)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Received | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    request_line, *lines = head[:-4].decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ", 2)
    headers = [
        (name.strip(), value.strip()) for name, _, value in (x.partition(":") for x in lines)
    ]
    received = Received(method, target, headers, b"")
    if any(v.lower() == "chunked" for v in received.all("Transfer-Encoding")):
        received.body = await _read_chunked(reader)
    elif received.all("Content-Length"):
        received.body = await reader.readexactly(int(received.one("Content-Length")))
    return received


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, if any
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)


@contextlib.asynccontextmanager
async def edge_in_front(
    origin_url: str, folder: Path, clock: FakeClock | None = None, **sections: Any
) -> AsyncIterator[tuple[str, web.Application]]:
    """The real edge in front of `origin_url`; yields its URL and app."""
    key_path = folder / "keys" / "edge.pem"
    key = write_key(key_path, overwrite=True)
    origin = sections.pop("origin", OriginSettings(url=origin_url))
    settings = Settings(
        server=sections.pop("server", ServerSettings()),
        origin=origin,
        keys=KeysSettings(signing=(key_path,)),
        push=sections.pop("push", PushSettings(secret=PUSH_SECRET)),
        **sections,
    )
    app = create_app(settings, clock=clock or FakeClock(0), signing_keys=[key])
    runner = web.AppRunner(app)
    sock = listening_socket()
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        yield url_of(sock), app
    finally:
        await runner.cleanup()


def host_port(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").partition(":")
    return host, int(port)


@contextlib.asynccontextmanager
async def slow_sign_ins(url: str, count: int) -> AsyncIterator[None]:
    """`count` sign-ins forwarded by the edge at `url` whose bodies never finish
    arriving, each holding an origin connection, until the block ends."""
    writers: list[asyncio.StreamWriter] = []
    try:
        for _ in range(count):
            _, writer = await asyncio.open_connection(*host_port(url))
            writer.write(
                b"POST /v1/client/sign_ins HTTP/1.1\r\nHost: app.example.test\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 100\r\n\r\nidentifier="
            )
            await writer.drain()
            writers.append(writer)
        yield
    finally:
        for writer in writers:
            writer.close()


async def exchange(url: str, data: bytes) -> bytes:
    """Send raw bytes to the server at `url`, then read until it closes the connection."""
    reader, writer = await asyncio.open_connection(*host_port(url))
    try:
        writer.write(data)
        await writer.drain()
        with contextlib.suppress(ConnectionResetError):
            return await asyncio.wait_for(reader.read(), GUARD_S)
        return b""
    finally:
        writer.close()


async def one_answer(url: str, data: bytes) -> bytes:
    """Send raw bytes, read one answer with a Content-Length, and hang up."""
    reader, writer = await asyncio.open_connection(*host_port(url))
    try:
        writer.write(data)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), GUARD_S)
        length = parse_answer(head).all("Content-Length")
        body = await asyncio.wait_for(reader.readexactly(int(length[0])), GUARD_S)
        return head + body
    finally:
        writer.close()


@dataclass
class RawAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


def parse_answer(raw: bytes) -> RawAnswer:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [
        (name.strip(), value.strip()) for name, _, value in (x.partition(":") for x in lines)
    ]
    answer = RawAnswer(int(status_line.split(" ")[1]), headers, body)
    if any(v.lower() == "chunked" for v in answer.all("Transfer-Encoding")):
        answer.body = _dechunk(body)
    return answer


def _dechunk(data: bytes) -> bytes:
    body = bytearray()
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return bytes(body)
        body += data[:size]
        data = data[size + 2 :]


def closed_port_url() -> tuple[socket.socket, str]:
    """A bound socket that never listens: connecting to it is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock, url_of(sock)
