"""Native clients: the credential travels in the `authorization` header, both ways."""

from __future__ import annotations

from origin_helpers import Client, sign_in, verified

from origin import seed


async def test_native_sign_in_hands_out_an_authorization_header(origin: Client) -> None:
    response = await origin.post(
        "/v1/client/sign_ins",
        params={"_is_native": "1"},
        data={
            "identifier": seed.ALICE_EMAIL,
            "password": seed.ALICE_PASSWORD,
            "strategy": "password",
        },
    )
    assert response.status == 200
    credential = response.headers["Authorization"]
    assert credential
    assert "Set-Cookie" not in response.headers
    sid = (await response.json())["response"]["created_session_id"]

    headers = {"Authorization": credential}
    client = await (
        await origin.get("/v1/client", params={"_is_native": "1"}, headers=headers)
    ).json()
    assert [s["id"] for s in client["response"]["sessions"]] == [sid]

    response = await origin.post(
        f"/v1/client/sessions/{sid}/tokens",
        params={"_is_native": "1"},
        headers=headers,
        data={"organization_id": seed.ACME_ID},
    )
    assert response.status == 200
    assert response.headers["Authorization"] == credential
    _, claims = await verified(origin, (await response.json())["jwt"])
    assert claims["sid"] == sid
    assert claims["o"]["id"] == seed.ACME_ID


async def test_the_header_alone_marks_a_request_as_native(origin: Client) -> None:
    response = await origin.post(
        "/v1/client/sign_ins",
        params={"_is_native": "1"},
        data={"identifier": seed.BOB_EMAIL, "password": seed.BOB_PASSWORD},
    )
    credential = response.headers["Authorization"]
    sid = (await response.json())["response"]["created_session_id"]
    response = await origin.post(
        f"/v1/client/sessions/{sid}/tokens", headers={"Authorization": f"Bearer {credential}"}
    )
    assert response.status == 200


async def test_a_native_credential_is_not_a_cookie_client(origin: Client) -> None:
    browser = await sign_in(origin)  # sets the __client cookie
    sid = browser["response"]["created_session_id"]
    response = await origin.post(
        f"/v1/client/sessions/{sid}/tokens", headers={"Authorization": "some-other-client"}
    )
    assert response.status == 401
    assert (await response.json())["errors"][0]["code"] == "signed_out"


async def test_native_client_sign_out(origin: Client) -> None:
    response = await origin.post(
        "/v1/client/sign_ins",
        params={"_is_native": "1"},
        data={"identifier": seed.ALICE_EMAIL, "password": seed.ALICE_PASSWORD},
    )
    headers = {"Authorization": response.headers["Authorization"]}
    sid = (await response.json())["response"]["created_session_id"]
    response = await origin.delete("/v1/client", headers=headers)
    assert response.status == 200
    assert [s["status"] for s in (await response.json())["response"]["sessions"]] == ["ended"]
    response = await origin.post(f"/v1/client/sessions/{sid}/tokens", headers=headers)
    assert response.status == 401
