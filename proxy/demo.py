"""`session-minter demo`: the reference origin and the edge on localhost, shown working.

Generates a key in a temporary folder, starts the reference origin and the
edge (memory store) on loopback, then walks through what a browser SDK
does: sign in, a first token from the origin, a refresh minted at the edge
with the same claims and `oiat`, and a `force_origin` refresh. It prints
each step, then keeps serving until interrupted (`--once`: exits 0 after the
walk-through, 1 if a step failed). `SESSION_MINTER_<SECTION>__<KEY>`
environment overrides apply to the edge's embedded defaults, as for `serve`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from minter import KeySet, VerifyRules, load_public_jwks, verify_session_token
from minter.jws import b64url_decode

from .app import create_app
from .config import KeysSettings, load_settings
from .keygen import write_key
from .services import SERVICES

__all__ = ["run_demo"]

ALICE = {"identifier": "alice@example.com", "password": "correct-horse", "strategy": "password"}
BROWSER_ORIGIN = "http://localhost:3000"


class DemoFailed(Exception):
    pass


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


def _decode(jwt: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = jwt.split(".")
    return (
        orjson.loads(b64url_decode(header, what="header")),
        orjson.loads(b64url_decode(payload, what="payload")),
    )


def _show(title: str, jwt: str) -> None:
    header, claims = _decode(jwt)
    org = claims.get("o", {})
    print(f"  {title}")
    print(
        f"    header: kid={header['kid'][:12]}… cat={header.get('cat')} oiat={header.get('oiat')}"
    )
    print(
        f"    claims: sub={claims['sub']} sid={claims['sid']} org={org.get('id')} "
        f"rol={org.get('rol')} iat={claims['iat']} exp={claims['exp']} fva={claims.get('fva')}"
    )


async def _post_token(
    client: aiohttp.ClientSession, edge: str, sid: str, form: dict[str, str]
) -> str:
    async with client.post(f"{edge}/v1/client/sessions/{sid}/tokens", data=form) as response:
        body = await response.json()
        if response.status != 200 or not body.get("jwt"):
            raise DemoFailed(f"token request answered {response.status}: {body}")
        return str(body["jwt"])


async def _walk_through(edge: str, edge_app: web.Application) -> None:
    metrics = edge_app[SERVICES].metrics

    def count(outcome: str, reason: str) -> float:
        value = metrics.registry.get_sample_value(
            "session_minter_refresh_decisions_total", {"outcome": outcome, "reason": reason}
        )
        return value or 0.0

    headers = {"Origin": BROWSER_ORIGIN}
    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies set by an IP-address host
    async with aiohttp.ClientSession(headers=headers, cookie_jar=jar) as client:
        print("1. sign in as alice@example.com through the edge (forwarded to the origin)")
        async with client.post(f"{edge}/v1/client/sign_ins", data=ALICE) as response:
            body = await response.json()
            if response.status != 200:
                raise DemoFailed(f"sign-in answered {response.status}: {body}")
        sid = body["response"]["created_session_id"]
        print(f"   session {sid}")

        print("2. first token: no previous token, so the origin mints it from its database")
        first = await _post_token(client, edge, sid, {"organization_id": "org_acme"})
        _show("origin token", first)

        await asyncio.sleep(1.1)  # let the clock move, so iat and oiat differ visibly
        print("3. refresh carrying the previous token: minted at the edge")
        minted_before = count("minted", "edge")
        second = await _post_token(
            client, edge, sid, {"organization_id": "org_acme", "token": first}
        )
        if count("minted", "edge") != minted_before + 1:
            raise DemoFailed("the refresh was not minted at the edge")
        _show("edge token", second)
        (h1, c1), (h2, c2) = _decode(first), _decode(second)
        restamped = {"iat", "nbf", "exp", "jti", "fva"}
        same = {k: v for k, v in c1.items() if k not in restamped} == {
            k: v for k, v in c2.items() if k not in restamped
        }
        if not same or h2.get("oiat") != h1.get("oiat"):
            raise DemoFailed("the edge token's claims or oiat differ from the origin's")
        print(f"   same claims, same oiat={h2['oiat']}, newer iat={c2['iat']}")

        async with client.get(f"{edge}/.well-known/jwks.json") as response:
            keys, _ = load_public_jwks(await response.json())
        verify_session_token(
            second,
            session_id=sid,
            keys=KeySet(keys),
            rules=VerifyRules(issuers=frozenset({c1["iss"]})),
            now=int(c2["iat"]),
        )
        print("   it verifies against the edge's published JWKS")

        print("4. refresh with force_origin=true (the SDK's skipCache): back to the origin")
        third = await _post_token(
            client,
            edge,
            sid,
            {"organization_id": "org_acme", "token": second, "force_origin": "true"},
        )
        _show("origin token", third)
        print(f"   fresher oiat={_decode(third)[0]['oiat']}")


async def run_demo(
    *,
    origin_settings_type: Callable[..., Any],
    create_origin_app: Callable[[Any], web.Application],
    once: bool,
    edge_port: int = 8080,
) -> int:
    with tempfile.TemporaryDirectory(prefix="session-minter-demo-") as folder:
        key_path = Path(folder) / "keys" / "instance.pem"
        key = write_key(key_path)
        edge_sock, origin_sock = _listen(edge_port), _listen(0)
        edge_url, origin_url = _url(edge_sock), _url(origin_sock)
        origin_app = create_origin_app(
            origin_settings_type(
                database=Path(folder) / "origin.db",
                signing_key=key_path,
                edges=(edge_url,),
            )
        )
        # The embedded defaults, with `SESSION_MINTER_*` environment overrides
        # (the load test raises the per-IP limit: its browsers share one address).
        defaults = load_settings()
        settings = dataclasses.replace(
            defaults,
            server=dataclasses.replace(defaults.server, port=edge_sock.getsockname()[1]),
            origin=dataclasses.replace(defaults.origin, url=origin_url),
            keys=KeysSettings(signing=(key_path,)),
        )
        edge_app = create_app(settings, signing_keys=[key])
        runners = [web.AppRunner(origin_app), web.AppRunner(edge_app)]
        for runner, sock in zip(runners, (origin_sock, edge_sock), strict=True):
            await runner.setup()
            await web.SockSite(runner, sock).start()
        print(f"reference origin: {origin_url}   (users alice@example.com / bob@example.com)")
        print(f"edge:             {edge_url}   (signing key kid {key.kid[:12]}…, memory store)")
        try:
            await _walk_through(edge_url, edge_app)
        except (DemoFailed, aiohttp.ClientError, KeyError, ValueError) as exc:
            print(f"demo step failed: {exc}")
            return 1
        finally:
            if once:
                for runner in reversed(runners):
                    await runner.cleanup()
        print("walk-through complete.")
        if once:
            return 0
        print(
            f"\nTry it: curl -si -X POST {edge_url}/v1/client/sign_ins "
            "-d identifier=alice@example.com -d password=correct-horse -d strategy=password"
        )
        print("Serving until interrupted (Ctrl-C).")
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        for runner in reversed(runners):
            await runner.cleanup()
        return 0
