"""Password sign-in: sessions, the `__client` cookie, Clerk's error shapes."""

from __future__ import annotations

from origin_helpers import Client, sign_in

from origin import seed


async def test_sign_in_completes_and_sets_the_client_cookie(origin: Client) -> None:
    response = await origin.post(
        "/v1/client/sign_ins",
        data={
            "identifier": seed.ALICE_EMAIL,
            "password": seed.ALICE_PASSWORD,
            "strategy": "password",
        },
    )
    assert response.status == 200
    body = await response.json()
    sign_in_json, client = body["response"], body["client"]
    assert sign_in_json["object"] == "sign_in"
    assert sign_in_json["status"] == "complete"
    assert sign_in_json["identifier"] == seed.ALICE_EMAIL
    sid = sign_in_json["created_session_id"]
    assert sid.startswith("sess_")

    assert client["object"] == "client"
    assert client["last_active_session_id"] == sid
    [session] = client["sessions"]
    assert session["object"] == "session"
    assert session["id"] == sid
    assert session["status"] == "active"
    assert session["user"]["id"] == seed.ALICE_ID
    assert session["user"]["email_addresses"][0]["email_address"] == seed.ALICE_EMAIL
    assert session["user"]["organization_memberships"][0]["organization"]["slug"] == "acme"
    assert session["public_user_data"]["identifier"] == seed.ALICE_EMAIL
    assert session["last_active_token"]["object"] == "token"
    assert session["last_active_token"]["jwt"].count(".") == 2
    assert session["factor_verification_age"] == [0, -1]
    assert session["created_at"] == 1_700_000_000_000  # milliseconds

    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__client=")
    assert "HttpOnly" in cookie
    assert "Path=/" in cookie
    assert "SameSite=Lax" in cookie


async def test_the_cookie_identifies_the_client_afterwards(origin: Client) -> None:
    signed_in = await sign_in(origin)
    sid = signed_in["response"]["created_session_id"]

    response = await origin.get(
        "/v1/client", params={"__clerk_api_version": "2025-04-10", "_clerk_js_version": "5.0.0"}
    )
    body = await response.json()
    assert body["client"] is None
    assert body["response"]["id"] == signed_in["client"]["id"]
    assert [s["id"] for s in body["response"]["sessions"]] == [sid]


async def test_a_second_sign_in_adds_a_session_to_the_same_client(origin: Client) -> None:
    first = await sign_in(origin)
    second = await sign_in(origin, seed.BOB_EMAIL, seed.BOB_PASSWORD)
    assert first["client"]["id"] == second["client"]["id"]
    users = {s["user"]["id"] for s in second["client"]["sessions"]}
    assert users == {seed.ALICE_ID, seed.BOB_ID}
    assert second["client"]["last_active_session_id"] == second["response"]["created_session_id"]


async def test_without_a_cookie_there_is_no_client(origin: Client) -> None:
    response = await origin.get("/v1/client")
    assert response.status == 200
    assert await response.json() == {"response": None, "client": None}


async def test_wrong_password_is_form_password_incorrect(origin: Client) -> None:
    response = await origin.post(
        "/v1/client/sign_ins",
        data={"identifier": seed.ALICE_EMAIL, "password": "wrong", "strategy": "password"},
    )
    assert response.status == 422
    [error] = (await response.json())["errors"]
    assert error["code"] == "form_password_incorrect"
    assert error["meta"] == {"param_name": "password"}
    assert error["message"]
    assert error["long_message"]
    assert "Set-Cookie" not in response.headers


async def test_unknown_identifier_is_form_identifier_not_found(origin: Client) -> None:
    response = await origin.post(
        "/v1/client/sign_ins",
        data={"identifier": "nobody@example.com", "password": "x", "strategy": "password"},
    )
    assert response.status == 422
    [error] = (await response.json())["errors"]
    assert error["code"] == "form_identifier_not_found"
    assert error["meta"] == {"param_name": "identifier"}


async def test_missing_identifier_is_form_param_missing(origin: Client) -> None:
    response = await origin.post("/v1/client/sign_ins", data={"password": "x"})
    assert response.status == 422
    [error] = (await response.json())["errors"]
    assert error["code"] == "form_param_missing"


async def test_bob_has_no_organizations(origin: Client) -> None:
    body = await sign_in(origin, seed.BOB_EMAIL, seed.BOB_PASSWORD)
    [session] = body["client"]["sessions"]
    assert session["user"]["organization_memberships"] == []
    assert session["user"]["public_metadata"] == {}


async def test_put_client_creates_an_empty_client(origin: Client) -> None:
    response = await origin.put("/v1/client")
    assert response.status == 200
    body = await response.json()
    assert body["response"]["object"] == "client"
    assert body["response"]["sessions"] == []
    assert response.headers["Set-Cookie"].startswith("__client=")
    again = await (await origin.get("/v1/client")).json()
    assert again["response"]["id"] == body["response"]["id"]
