"""Sign-outs: end, remove, DELETE (and POST `_method=DELETE`) on a session or the client."""

from __future__ import annotations

import pytest
from origin_helpers import ADMIN, Client, sign_in, verified

from origin import seed


async def _two_sessions(origin: Client) -> tuple[str, str]:
    alice = (await sign_in(origin))["response"]["created_session_id"]
    bob = (await sign_in(origin, seed.BOB_EMAIL, seed.BOB_PASSWORD))["response"][
        "created_session_id"
    ]
    return alice, bob


async def _token_status(origin: Client, sid: str) -> int:
    response = await origin.post(f"/v1/client/sessions/{sid}/tokens", data={"organization_id": ""})
    return response.status


@pytest.mark.parametrize(
    ("method", "suffix", "query", "status"),
    [
        ("POST", "/end", {}, "ended"),
        ("POST", "/remove", {}, "removed"),
        ("DELETE", "", {}, "removed"),
        ("POST", "", {"_method": "DELETE"}, "removed"),
    ],
)
async def test_one_session_signs_out(
    origin: Client, method: str, suffix: str, query: dict[str, str], status: str
) -> None:
    alice, bob = await _two_sessions(origin)
    response = await origin.request(method, f"/v1/client/sessions/{alice}{suffix}", params=query)
    assert response.status == 200
    body = await response.json()
    assert body["response"]["object"] == "session"
    assert body["response"]["id"] == alice
    assert body["response"]["status"] == status
    assert body["response"]["last_active_token"] is None
    assert body["client"]["object"] == "client"
    assert [s["id"] for s in body["client"]["sessions"]] == [bob]

    assert await _token_status(origin, alice) == 401
    assert await _token_status(origin, bob) == 200


@pytest.mark.parametrize(
    ("method", "path", "query", "status"),
    [
        ("DELETE", "/v1/client", {}, "ended"),
        ("POST", "/v1/client", {"_method": "DELETE"}, "ended"),
        ("DELETE", "/v1/client/sessions", {}, "removed"),
        ("POST", "/v1/client/sessions", {"_method": "DELETE"}, "removed"),
    ],
)
async def test_signing_out_of_the_client_closes_every_session_and_lists_them(
    origin: Client, method: str, path: str, query: dict[str, str], status: str
) -> None:
    alice, bob = await _two_sessions(origin)
    response = await origin.request(method, path, params=query)
    assert response.status == 200
    body = await response.json()
    client = body["response"]
    assert client["object"] == "client"
    assert client["last_active_session_id"] is None
    assert {s["id"]: s["status"] for s in client["sessions"]} == {alice: status, bob: status}

    assert await _token_status(origin, alice) == 401
    assert await _token_status(origin, bob) == 401
    after = await (await origin.get("/v1/client")).json()
    assert after["response"]["sessions"] == []


async def test_only_the_owning_client_may_sign_a_session_out(origin: Client) -> None:
    alice = (await sign_in(origin))["response"]["created_session_id"]
    cookie_jar = origin.session.cookie_jar
    cookie_jar.clear()

    response = await origin.post(f"/v1/client/sessions/{alice}/end")
    assert response.status == 401
    assert (await response.json())["errors"][0]["code"] == "signed_out"

    await sign_in(origin, seed.BOB_EMAIL, seed.BOB_PASSWORD)  # another client
    response = await origin.post(f"/v1/client/sessions/{alice}/end")
    assert response.status == 404
    assert (await response.json())["errors"][0]["code"] == "resource_not_found"


async def test_deleting_without_a_client_is_signed_out(origin: Client) -> None:
    response = await origin.delete("/v1/client")
    assert response.status == 401
    assert (await response.json())["errors"][0]["code"] == "signed_out"


@pytest.mark.parametrize("path", ["/v1/client/sessions/{sid}", "/v1/client/sessions"])
async def test_plain_post_on_sessions_is_not_allowed(origin: Client, path: str) -> None:
    alice = (await sign_in(origin))["response"]["created_session_id"]
    response = await origin.post(path.format(sid=alice))
    assert response.status == 405
    assert (await response.json())["errors"][0]["code"] == "method_not_allowed"
    assert await _token_status(origin, alice) == 200


async def test_sign_out_requests_are_counted_by_what_they_do(origin: Client) -> None:
    alice = (await sign_in(origin))["response"]["created_session_id"]
    await origin.post(f"/v1/client/sessions/{alice}", params={"_method": "DELETE"})
    await origin.post("/v1/client/sessions", params={"_method": "DELETE"})
    await origin.post("/v1/client", params={"_method": "DELETE"})
    stats = await (await origin.get("/__origin/stats", headers=ADMIN)).json()
    assert stats["session_delete"] == 1
    assert stats["client_sessions_delete"] == 1
    assert stats["client_delete"] == 1


async def test_touch_switches_the_active_organization(origin: Client) -> None:
    alice = (await sign_in(origin))["response"]["created_session_id"]
    response = await origin.post(
        f"/v1/client/sessions/{alice}/touch", data={"active_organization_id": seed.ACME_ID}
    )
    assert response.status == 200
    body = await response.json()
    session = body["response"]
    assert session["last_active_organization_id"] == seed.ACME_ID
    assert body["client"]["last_active_session_id"] == alice
    # clerk-js caches last_active_token under last_active_organization_id: they must agree
    _, claims = await verified(origin, session["last_active_token"]["jwt"])
    assert claims["o"]["id"] == seed.ACME_ID

    response = await origin.post(
        f"/v1/client/sessions/{alice}/touch", data={"active_organization_id": ""}
    )
    session = (await response.json())["response"]
    assert session["last_active_organization_id"] is None
    _, claims = await verified(origin, session["last_active_token"]["jwt"])
    assert "o" not in claims


async def test_touch_refuses_an_organization_the_user_is_not_in(origin: Client) -> None:
    bob = (await sign_in(origin, seed.BOB_EMAIL, seed.BOB_PASSWORD))["response"][
        "created_session_id"
    ]
    response = await origin.post(
        f"/v1/client/sessions/{bob}/touch", data={"active_organization_id": seed.ACME_ID}
    )
    assert response.status == 404
    assert (await response.json())["errors"][0]["code"] == "resource_not_found"
