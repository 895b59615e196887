"""Backend API: role changes and revocations reach the next token, and the edges."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from aiohttp import web
from origin_helpers import ADMIN, PUSH_SECRET, Client, sign_in, verified

from origin import seed

MEMBERSHIP = f"/backend/v1/organizations/{seed.ACME_ID}/memberships/{seed.ALICE_ID}"


class Edge:
    """A stand-in edge that records what is pushed to it."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str | None, Any]] = []

    async def push(self, request: web.Request) -> web.Response:
        self.received.append(
            (request.path, request.headers.get("Authorization"), await request.json())
        )
        return web.json_response({"ok": True})


@pytest.fixture
async def edge(aiohttp_server: Any) -> tuple[Edge, str]:
    recorder = Edge()
    app = web.Application()
    app.router.add_post("/__clerk/__minter/push", recorder.push)
    server = await aiohttp_server(app)
    return recorder, str(server.make_url("/__clerk"))


async def _alice_org_token(origin: Client) -> tuple[str, dict[str, Any]]:
    sid = (await sign_in(origin))["response"]["created_session_id"]
    response = await origin.post(
        f"/v1/client/sessions/{sid}/tokens", data={"organization_id": seed.ACME_ID}
    )
    _, claims = await verified(origin, (await response.json())["jwt"])
    return sid, claims


async def test_role_change_shows_in_the_next_token_and_is_pushed(
    make_origin: Any, edge: tuple[Edge, str]
) -> None:
    recorder, url = edge
    origin = await make_origin(edges=(url,))
    sid, claims = await _alice_org_token(origin)
    assert claims["o"]["rol"] == "admin"

    response = await origin.patch(MEMBERSHIP, json={"role": "org:member"}, headers=ADMIN)
    assert response.status == 200
    membership = await response.json()
    assert membership["object"] == "organization_membership"
    assert membership["role"] == "org:member"
    assert membership["permissions"] == ["org:reports:read"]
    assert recorder.received == [
        ("/__clerk/__minter/push", f"Bearer {PUSH_SECRET}", {"stale_users": [seed.ALICE_ID]})
    ]

    response = await origin.post(
        f"/v1/client/sessions/{sid}/tokens", data={"organization_id": seed.ACME_ID}
    )
    _, claims = await verified(origin, (await response.json())["jwt"])
    assert claims["o"]["rol"] == "member"
    assert claims["o"]["per"] == "read"
    assert claims["o"]["fpm"] == "1"


async def test_role_change_accepts_a_form_body(origin: Client) -> None:
    response = await origin.patch(MEMBERSHIP, data={"role": "org:member"}, headers=ADMIN)
    assert response.status == 200
    assert (await response.json())["role"] == "org:member"


async def test_unknown_role_is_refused(origin: Client) -> None:
    response = await origin.patch(MEMBERSHIP, json={"role": "org:wizard"}, headers=ADMIN)
    assert response.status == 422
    assert (await response.json())["errors"][0]["meta"] == {"param_name": "role"}


async def test_role_change_for_a_non_member_is_not_found(origin: Client) -> None:
    path = f"/backend/v1/organizations/{seed.ACME_ID}/memberships/{seed.BOB_ID}"
    response = await origin.patch(path, json={"role": "org:member"}, headers=ADMIN)
    assert response.status == 404


async def test_revoke_signs_the_session_out_and_is_pushed(
    make_origin: Any, edge: tuple[Edge, str]
) -> None:
    recorder, url = edge
    origin = await make_origin(edges=(url,))
    sid, _ = await _alice_org_token(origin)

    response = await origin.post(f"/backend/v1/sessions/{sid}/revoke", headers=ADMIN)
    assert response.status == 200
    session = await response.json()
    assert session["object"] == "session"
    assert session["id"] == sid
    assert session["status"] == "revoked"
    assert session["user_id"] == seed.ALICE_ID
    assert recorder.received == [
        ("/__clerk/__minter/push", f"Bearer {PUSH_SECRET}", {"revoked_sessions": [sid]})
    ]

    response = await origin.post(f"/v1/client/sessions/{sid}/tokens", data={"organization_id": ""})
    assert response.status == 401
    assert (await response.json())["errors"][0]["code"] == "signed_out"


async def test_a_dead_edge_does_not_fail_the_revoke(make_origin: Any) -> None:
    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    origin = await make_origin(edges=(f"http://127.0.0.1:{port}",))
    sid = (await sign_in(origin))["response"]["created_session_id"]
    response = await origin.post(f"/backend/v1/sessions/{sid}/revoke", headers=ADMIN)
    assert response.status == 200
    stats = await (await origin.get("/__origin/stats", headers=ADMIN)).json()
    assert (stats["push_failed"], stats["push_retried"]) == (1, 2)
    assert "push_ok" not in stats


async def test_a_push_the_edge_could_not_take_is_tried_again(
    make_origin: Any, aiohttp_server: Any
) -> None:
    answers = iter([503, 502, 200])  # an edge whose store is down, then back
    received: list[Any] = []

    async def push(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({}, status=next(answers))

    app = web.Application()
    app.router.add_post("/__minter/push", push)
    server = await aiohttp_server(app)
    origin = await make_origin(edges=(str(server.make_url("")),))
    sid = (await sign_in(origin))["response"]["created_session_id"]
    response = await origin.post(f"/backend/v1/sessions/{sid}/revoke", headers=ADMIN)
    assert response.status == 200
    assert received == [{"revoked_sessions": [sid]}] * 3
    stats = await (await origin.get("/__origin/stats", headers=ADMIN)).json()
    assert (stats["push_ok"], stats["push_retried"]) == (1, 2)
    assert "push_failed" not in stats


async def test_a_push_to_an_edge_that_hangs_holds_the_admin_call_one_timeout(
    make_origin: Any, aiohttp_server: Any
) -> None:
    released = asyncio.Event()

    async def push(request: web.Request) -> web.Response:
        await released.wait()  # never answers while the origin waits
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/__minter/push", push)
    server = await aiohttp_server(app)
    origin = await make_origin(edges=(str(server.make_url("")),), push_timeout_s=0.2)
    sid = (await sign_in(origin))["response"]["created_session_id"]
    response = await origin.post(f"/backend/v1/sessions/{sid}/revoke", headers=ADMIN)
    released.set()
    assert response.status == 200
    stats = await (await origin.get("/__origin/stats", headers=ADMIN)).json()
    assert stats["push_failed"] == 1
    assert "push_retried" not in stats, "no retry once the timeout is spent"


async def test_user_metadata_change_shows_in_the_next_token(
    make_origin: Any, edge: tuple[Edge, str]
) -> None:
    recorder, url = edge
    origin = await make_origin(edges=(url,))
    sid = (await sign_in(origin))["response"]["created_session_id"]
    response = await origin.patch(
        f"/backend/v1/users/{seed.ALICE_ID}/metadata",
        json={"public_metadata": {"plan": "team", "beta": True}},
        headers=ADMIN,
    )
    assert response.status == 200
    assert (await response.json())["public_metadata"] == {"plan": "team", "beta": True}
    assert recorder.received[-1][2] == {"stale_users": [seed.ALICE_ID]}
    response = await origin.post(f"/v1/client/sessions/{sid}/tokens", data={"organization_id": ""})
    _, claims = await verified(origin, (await response.json())["jwt"])
    assert claims["plan"] == "team"
    assert claims["beta"] is True


@pytest.mark.parametrize(
    "raw",
    [
        b'{"public_metadata": {"\\ud800": 1}}',  # a lone surrogate: not a Unicode string
        b'{"public_metadata": {"n": 1e400}}',  # infinity: not a JSON number
        b'{"public_metadata": {"n": NaN}}',
    ],
)
async def test_metadata_that_json_cannot_carry_is_refused_and_not_stored(
    origin: Client, raw: bytes
) -> None:
    sid = (await sign_in(origin))["response"]["created_session_id"]
    response = await origin.patch(
        f"/backend/v1/users/{seed.ALICE_ID}/metadata",
        data=raw,
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert (await response.json())["errors"][0]["code"] == "request_body_invalid"
    assert (await origin.get("/v1/client")).status == 200
    response = await origin.post(f"/v1/client/sessions/{sid}/tokens", data={"organization_id": ""})
    _, claims = await verified(origin, (await response.json())["jwt"])
    assert claims["plan"] == seed.ALICE_PUBLIC_METADATA["plan"]
    assert "n" not in claims


async def test_a_json_body_is_read_as_utf8_whatever_charset_it_names(origin: Client) -> None:
    response = await origin.patch(
        MEMBERSHIP,
        data=b'{"role": "org:member"}',
        headers={**ADMIN, "Content-Type": "application/json; charset=no-such"},
    )
    assert response.status == 200
    assert (await response.json())["role"] == "org:member"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "sk_test_secret"}]
)
async def test_backend_needs_the_secret_key(origin: Client, headers: dict[str, str]) -> None:
    response = await origin.patch(MEMBERSHIP, json={"role": "org:member"}, headers=headers)
    assert response.status == 401
    [error] = (await response.json())["errors"]
    assert error["code"] == "authentication_invalid"
    response = await origin.post("/backend/v1/sessions/sess_x/revoke", headers=headers)
    assert response.status == 401


async def test_revoking_an_unknown_session_is_not_found(origin: Client) -> None:
    response = await origin.post("/backend/v1/sessions/sess_nope/revoke", headers=ADMIN)
    assert response.status == 404
    assert (await response.json())["errors"][0]["code"] == "resource_not_found"
