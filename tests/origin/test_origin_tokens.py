"""Session and template tokens: shapes, signatures, claims, ownership."""

from __future__ import annotations

from typing import Any

import pytest
from origin_helpers import ADMIN, ISSUER, START, Client, FakeClock, sign_in, verified

from origin import seed

NOW = int(START)


async def _alice(origin: Client) -> str:
    body = await sign_in(origin)
    sid: str = body["response"]["created_session_id"]
    return sid


async def _mint(origin: Client, sid: str, org: str = "", **kwargs: Any) -> Any:
    return await origin.post(
        f"/v1/client/sessions/{sid}/tokens", data={"organization_id": org}, **kwargs
    )


async def test_token_answer_is_exactly_object_and_jwt(origin: Client) -> None:
    sid = await _alice(origin)
    response = await _mint(origin, sid, headers={"Origin": "http://localhost:3000"})
    assert response.status == 200
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response.headers["Vary"]
    body = await response.json()
    assert set(body) == {"object", "jwt"}
    assert body["object"] == "token"
    assert body["jwt"]


async def test_personal_session_token_header_and_claims(origin: Client) -> None:
    sid = await _alice(origin)
    token = (await (await _mint(origin, sid)).json())["jwt"]
    header, claims = await verified(origin, token)

    jwks = await (await origin.get("/.well-known/jwks.json")).json()
    [jwk] = jwks["keys"]
    assert header == {
        "alg": "RS256",
        "kid": jwk["kid"],
        "typ": "JWT",
        "cat": "cl_B7d4PD111AAA",
        "oiat": NOW,
    }
    assert (jwk["use"], jwk["alg"], jwk["kty"]) == ("sig", "RS256", "RSA")

    assert claims["sub"] == seed.ALICE_ID
    assert claims["sid"] == sid
    assert claims["iss"] == ISSUER
    assert claims["iat"] == NOW
    assert claims["nbf"] == NOW - 10
    assert claims["exp"] == NOW + 60
    assert claims["v"] == 2
    assert claims["sts"] == "active"
    assert claims["pla"] == "u:free"
    assert claims["fva"] == [0, -1]
    assert claims["plan"] == "pro"  # from alice's public metadata
    assert isinstance(claims["jti"], str)
    assert len(claims["jti"]) >= 16
    assert "o" not in claims
    assert "azp" not in claims  # no Origin header


async def test_org_token_carries_o_claim_with_role_without_prefix(origin: Client) -> None:
    sid = await _alice(origin)
    token = (await (await _mint(origin, sid, seed.ACME_ID)).json())["jwt"]
    _, claims = await verified(origin, token)
    assert claims["o"] == {
        "id": "org_acme",
        "slg": "acme",
        "rol": "admin",
        "per": "read,manage",
        "fpm": "3,2",
    }
    assert claims["fea"] == "o:reports,o:billing"
    assert claims["pla"] == "o:free"


def _org_permissions_as_clerk_reads_them(claims: dict[str, Any]) -> set[str]:
    """`@clerk/shared` `jwtPayloadParser`: bit i of a feature's `o.fpm` mask (least
    significant first) grants the i-th action of `o.per`."""
    features = [f.split(":", 1)[1] for f in claims["fea"].split(",") if f.startswith("o:")]
    actions = claims["o"]["per"].split(",")
    masks = [int(mask) for mask in claims["o"]["fpm"].split(",")]
    return {
        f"org:{feature}:{action}"
        for feature, mask in zip(features, masks, strict=True)
        for index, action in enumerate(actions)
        if mask >> index & 1
    }


async def test_org_permissions_decode_as_clerk_reads_them(origin: Client) -> None:
    sid = await _alice(origin)
    token = (await (await _mint(origin, sid, seed.ACME_ID)).json())["jwt"]
    _, claims = await verified(origin, token)
    _, admin_permissions = seed.ROLES[seed.ALICE_ACME_ROLE]
    assert _org_permissions_as_clerk_reads_them(claims) == set(admin_permissions)


async def test_azp_is_the_origin_header(origin: Client) -> None:
    sid = await _alice(origin)
    response = await _mint(origin, sid, headers={"Origin": "https://app.example.test"})
    _, claims = await verified(origin, (await response.json())["jwt"])
    assert claims["azp"] == "https://app.example.test"


async def test_times_follow_the_injected_clock(origin: Client, clock: FakeClock) -> None:
    sid = await _alice(origin)
    clock.advance(600)
    header, claims = await verified(origin, (await (await _mint(origin, sid)).json())["jwt"])
    assert claims["iat"] == header["oiat"] == NOW + 600
    assert claims["exp"] == NOW + 660
    assert claims["fva"] == [10, -1]


async def test_ignored_fields_and_query_params_are_accepted(origin: Client) -> None:
    sid = await _alice(origin)
    response = await origin.post(
        f"/v1/client/sessions/{sid}/tokens",
        params={
            "__clerk_api_version": "2025-04-10",
            "_clerk_js_version": "5.1.0",
            "debug": "skip_cache",
            "expired_token": "x.y.z",
        },
        data={"organization_id": "", "tab_state": "abc"},
    )
    assert response.status == 200


async def test_a_token_updates_the_sessions_last_active_token(origin: Client) -> None:
    sid = await _alice(origin)
    token = (await (await _mint(origin, sid)).json())["jwt"]
    client = (await (await origin.get("/v1/client")).json())["response"]
    [session] = client["sessions"]
    assert session["last_active_token"] == {"object": "token", "jwt": token}
    assert session["last_active_organization_id"] is None


async def test_a_token_for_another_organization_leaves_the_active_one(origin: Client) -> None:
    """`getToken({organizationId})` "does not modify the session's currently active
    organization" (clerk-js): only `touch` (`setActive`) switches it."""
    sid = await _alice(origin)
    personal = (await (await _mint(origin, sid)).json())["jwt"]
    org_token = (await (await _mint(origin, sid, seed.ACME_ID)).json())["jwt"]
    _, claims = await verified(origin, org_token)
    assert claims["o"]["id"] == seed.ACME_ID
    client = (await (await origin.get("/v1/client")).json())["response"]
    [session] = client["sessions"]
    assert session["last_active_organization_id"] is None
    assert session["last_active_token"] == {"object": "token", "jwt": personal}
    response = await origin.post(f"/v1/client/sessions/{sid}/tokens/integration_demo")
    _, claims = await verified(origin, (await response.json())["jwt"])
    assert claims["org"] is None


async def test_not_a_member_of_the_organization(origin: Client) -> None:
    body = await sign_in(origin, seed.BOB_EMAIL, seed.BOB_PASSWORD)
    sid = body["response"]["created_session_id"]
    response = await _mint(origin, sid, seed.ACME_ID)
    assert response.status == 404
    [error] = (await response.json())["errors"]
    assert error["code"] == "resource_not_found"


async def test_no_client_is_signed_out(origin: Client) -> None:
    sid = await _alice(origin)
    origin.session.cookie_jar.clear()
    response = await _mint(origin, sid)
    assert response.status == 401
    assert (await response.json())["errors"][0]["code"] == "signed_out"


async def test_another_clients_session_is_not_found(origin: Client) -> None:
    sid = await _alice(origin)
    origin.session.cookie_jar.clear()
    await sign_in(origin, seed.BOB_EMAIL, seed.BOB_PASSWORD)  # a different client
    response = await _mint(origin, sid)
    assert response.status == 404
    assert (await response.json())["errors"][0]["code"] == "resource_not_found"


async def test_template_token(origin: Client) -> None:
    sid = await _alice(origin)
    response = await origin.post(
        f"/v1/client/sessions/{sid}/tokens/integration_demo",
        data={"organization_id": ""},
        headers={"Origin": "http://localhost:3000"},
    )
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert set(body) == {"object", "jwt"}
    header, claims = await verified(origin, body["jwt"])
    assert header["cat"] == "cl_template_integration_demo"
    assert "oiat" not in header
    assert claims["email"] == seed.ALICE_EMAIL
    assert claims["name"] == "Alice Example"
    assert claims["plan"] == "pro"
    assert claims["org"] is None
    assert claims["sub"] == seed.ALICE_ID
    assert claims["sid"] == sid
    assert claims["azp"] == "http://localhost:3000"
    assert claims["exp"] - claims["iat"] == seed.TEMPLATE_LIFETIME_S


async def test_template_uses_the_sessions_active_organization(origin: Client) -> None:
    sid = await _alice(origin)
    await origin.post(
        f"/v1/client/sessions/{sid}/touch", data={"active_organization_id": seed.ACME_ID}
    )
    response = await origin.post(f"/v1/client/sessions/{sid}/tokens/integration_demo")
    _, claims = await verified(origin, (await response.json())["jwt"])
    assert claims["org"] == "acme"


async def test_unknown_template_is_not_found(origin: Client) -> None:
    sid = await _alice(origin)
    response = await origin.post(f"/v1/client/sessions/{sid}/tokens/nope")
    assert response.status == 404
    [error] = (await response.json())["errors"]
    assert error["code"] == "resource_not_found"


@pytest.mark.parametrize("path", ["/v1/jwks", "/.well-known/jwks.json"])
async def test_jwks_lists_the_signing_key(origin: Client, path: str) -> None:
    response = await origin.get(path)
    assert response.status == 200
    [jwk] = (await response.json())["keys"]
    assert set(jwk) == {"kty", "n", "e", "kid", "alg", "use"}


async def test_stats_keep_the_last_token_request(origin: Client) -> None:
    sid = await _alice(origin)
    await origin.post(
        f"/v1/client/sessions/{sid}/tokens",
        params={"_clerk_js_version": "5"},
        data={"organization_id": "", "tab_state": "t1"},
    )
    await origin.post(f"/v1/client/sessions/{sid}/tokens/integration_demo")
    stats = await (await origin.get("/__origin/stats", headers=ADMIN)).json()
    assert stats["sign_ins"] == 1
    assert stats["tokens"] == 1
    assert stats["tokens_template"] == 1
    last = stats["last_token_request"]
    assert last["path"] == f"/v1/client/sessions/{sid}/tokens/integration_demo"
    assert last["form"] == {}
    await origin.post(
        f"/v1/client/sessions/{sid}/tokens",
        params={"_clerk_js_version": "5"},
        data={"organization_id": "", "tab_state": "t1"},
    )
    stats = await (await origin.get("/__origin/stats", headers=ADMIN)).json()
    assert stats["tokens"] == 2
    assert stats["last_token_request"]["form"] == {"organization_id": "", "tab_state": "t1"}
    assert stats["last_token_request"]["query"] == {"_clerk_js_version": "5"}


async def test_an_expired_session_is_signed_out(origin: Client, clock: FakeClock) -> None:
    sid = await _alice(origin)
    clock.advance(7 * 24 * 3600)
    response = await _mint(origin, sid)
    assert response.status == 401
    assert (await response.json())["errors"][0]["code"] == "signed_out"
    client = (await (await origin.get("/v1/client")).json())["response"]
    assert client["sessions"] == []
