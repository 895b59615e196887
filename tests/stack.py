"""A real stack for tests: the reference origin and the edge on loopback sockets.

Both run in the test's event loop on pre-bound ports (no port races), share
one `FakeClock` so tests can move time without sleeping, and are driven by
`Browser`, a small client that does what the browser SDK does on the wire.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from minter import SigningKey
from minter.jws import b64url_decode
from origin import OriginSettings as ReferenceSettings
from origin import create_app as create_origin_app
from proxy import Settings, create_app
from proxy.config import KeysSettings, OriginSettings, PushSettings, ServerSettings
from proxy.keygen import write_key
from proxy.services import SERVICES

SECRET_KEY = "sk_test_stack"
PUSH_SECRET = "push-secret-for-tests"
BROWSER_ORIGIN = "http://localhost:3000"
ISSUER = "https://clerk.example.test"
ALICE = ("alice@example.com", "correct-horse")
BOB = ("bob@example.com", "battery-staple")


class FakeClock:
    """Seconds since the epoch, moved only by `advance`."""

    def __init__(self, start: float) -> None:
        self.now = float(int(start))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # So that `Stack.start_origin` can bind the port again while old connections close.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


def public_pem(key: SigningKey) -> bytes:
    return key.public.key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def decode(jwt: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = jwt.split(".")
    return (
        orjson.loads(b64url_decode(header, what="header")),
        orjson.loads(b64url_decode(payload, what="payload")),
    )


@dataclass
class Stack:
    origin_url: str
    edge_url: str
    origin_app: web.Application
    edge_app: web.Application
    clock: FakeClock
    key: SigningKey
    key_path: Path
    prefix: str = ""
    origin_settings: ReferenceSettings | None = None
    origin_runner: web.AppRunner | None = None

    async def stop_origin(self) -> None:
        """Stop the reference origin for real: port closed, connections dropped."""
        assert self.origin_runner is not None, "the origin is already stopped"
        runner, self.origin_runner = self.origin_runner, None
        await runner.cleanup()

    async def start_origin(self) -> None:
        """Start a new reference origin on the same port, over the same database."""
        assert self.origin_runner is None, "the origin is running"
        assert self.origin_settings is not None
        host, port = self.origin_url.removeprefix("http://").rsplit(":", 1)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
        sock.listen(128)
        sock.setblocking(False)
        self.origin_app = create_origin_app(self.origin_settings)
        runner = web.AppRunner(self.origin_app)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self.origin_runner = runner

    @property
    def fapi(self) -> str:
        """Where browsers send FAPI requests: the edge, under its prefix."""
        return self.edge_url + self.prefix

    def decisions(self) -> dict[tuple[str, str], float]:
        registry = self.edge_app[SERVICES].metrics.registry
        counts: dict[tuple[str, str], float] = {}
        for metric in registry.collect():
            if metric.name != "session_minter_refresh_decisions":
                continue
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    key = (sample.labels["outcome"], sample.labels["reason"])
                    counts[key] = sample.value
        return counts

    async def origin_admin(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as client,
            client.request(
                method,
                self.origin_url + path,
                json=json,
                headers={"Authorization": f"Bearer {SECRET_KEY}"},
            ) as response,
        ):
            return response.status, await response.json()

    async def origin_stats(self) -> dict[str, Any]:
        status, body = await self.origin_admin("GET", "/__origin/stats")
        assert status == 200
        return dict(body)

    async def origin_faults(self, mode: str, latency_ms: int = 0) -> None:
        status, _ = await self.origin_admin(
            "POST", "/__origin/faults", {"mode": mode, "latency_ms": latency_ms}
        )
        assert status == 200


def _edge_origin(given: OriginSettings | dict[str, Any] | None, url: str) -> OriginSettings:
    """The edge's [origin] section: as given, or the defaults plus overrides, pointed at `url`."""
    if isinstance(given, OriginSettings):
        return given
    return OriginSettings(url=url, **(given or {}))


@contextlib.asynccontextmanager
async def running_stack(
    folder: Path,
    clock: FakeClock,
    *,
    push_to_edge: bool = True,
    origin_options: dict[str, Any] | None = None,
    **edge_sections: Any,
) -> AsyncIterator[Stack]:
    """Start origin + edge; `edge_sections` replace Settings sections (e.g. tokens=...).

    `origin_options` are extra keyword arguments of the reference origin's settings.
    """
    key_path = folder / "keys" / "instance.pem"
    key = write_key(key_path, overwrite=True)
    origin_sock, edge_sock = listening_socket(), listening_socket()
    origin_url, edge_url = url_of(origin_sock), url_of(edge_sock)
    server = edge_sections.pop("server", ServerSettings())
    origin_settings = ReferenceSettings(
        database=folder / "origin.db",
        signing_key=key_path,
        secret_key=SECRET_KEY,
        edges=(edge_url + server.prefix,) if push_to_edge else (),
        push_secret=PUSH_SECRET,
        clock=clock,
        **(origin_options or {}),
    )
    origin_app = create_origin_app(origin_settings)
    settings = Settings(
        server=server,
        origin=_edge_origin(edge_sections.pop("origin", None), origin_url),
        keys=KeysSettings(signing=(key_path,)),
        push=PushSettings(secret=PUSH_SECRET),
        **edge_sections,
    )
    edge_app = create_app(settings, clock=clock, signing_keys=[key])
    runners = [web.AppRunner(origin_app), web.AppRunner(edge_app)]
    stack = Stack(
        origin_url=origin_url,
        edge_url=edge_url,
        origin_app=origin_app,
        edge_app=edge_app,
        clock=clock,
        key=key,
        key_path=key_path,
        prefix=server.prefix,
        origin_settings=origin_settings,
        origin_runner=runners[0],
    )
    try:
        for runner, sock in zip(runners, (origin_sock, edge_sock), strict=True):
            await runner.setup()
            await web.SockSite(runner, sock).start()
        yield stack
    finally:
        await runners[1].cleanup()
        if stack.origin_runner is not None:
            await stack.origin_runner.cleanup()


@dataclass
class Answer:
    status: int
    body: Any
    headers: Any

    @property
    def jwt(self) -> str:
        assert self.status == 200, (self.status, self.body)
        jwt = self.body["jwt"]
        assert isinstance(jwt, str)
        assert jwt, "a 200 must carry a token"
        return jwt

    @property
    def error_code(self) -> str:
        return str(self.body["errors"][0]["code"])


@dataclass
class Browser:
    """A browser tab on the wire: cookies, Origin header, form-encoded refreshes."""

    base: str
    origin: str = BROWSER_ORIGIN
    client: aiohttp.ClientSession = field(init=False)

    async def __aenter__(self) -> Browser:
        self.client = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"Origin": self.origin}
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()

    async def request(
        self, method: str, path: str, *, data: Any = None, headers: Any = None
    ) -> Answer:
        async with self.client.request(
            method, self.base + path, data=data, headers=headers
        ) as response:
            raw = await response.read()
            body = orjson.loads(raw) if raw else None
            answer = Answer(response.status, body, response.headers)
        if answer.status == 200 and isinstance(body, dict) and body.get("object") == "token":
            assert answer.jwt  # never an empty token
        return answer

    async def sign_in(self, who: tuple[str, str] = ALICE) -> str:
        identifier, password = who
        answer = await self.request(
            "POST",
            "/v1/client/sign_ins",
            data={"identifier": identifier, "password": password, "strategy": "password"},
        )
        assert answer.status == 200, answer.body
        return str(answer.body["response"]["created_session_id"])

    async def refresh(
        self,
        sid: str,
        *,
        token: str | None = None,
        organization_id: str | None = "",
        force_origin: bool = False,
        template: str | None = None,
        query: str = "",
        extra: dict[str, str] | None = None,
    ) -> Answer:
        form: dict[str, str] = {}
        if organization_id is not None:
            form["organization_id"] = organization_id
        if token is not None:
            form["token"] = token
        if force_origin:
            form["force_origin"] = "true"
        form.update(extra or {})
        path = f"/v1/client/sessions/{sid}/tokens" + (f"/{template}" if template else "")
        return await self.request("POST", path + (f"?{query}" if query else ""), data=form)


def with_tokens(**overrides: Any) -> Any:
    from proxy.config import TokenSettings

    return dataclasses.replace(TokenSettings(), **overrides)
