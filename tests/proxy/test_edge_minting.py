"""Edge minting end to end: the real edge in front of the real reference origin."""

from __future__ import annotations

import json
from pathlib import Path

import jwt as pyjwt
from jwcrypto import jwk, jws

from minter import SESSION_TOKEN_CAT, sign_compact
from proxy.services import SERVICES
from tests.stack import (
    BOB,
    Browser,
    FakeClock,
    Stack,
    decode,
    public_pem,
    running_stack,
    with_tokens,
)

RESTAMPED = {"iat", "nbf", "exp", "jti", "fva"}


def stable(claims: dict[str, object]) -> dict[str, object]:
    return {name: value for name, value in claims.items() if name not in RESTAMPED}


async def test_first_mint_goes_to_origin(stack: Stack) -> None:
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        answer = await browser.refresh(sid, organization_id="org_acme")
    header, claims = decode(answer.jwt)
    assert stack.decisions() == {("origin", "no_token"): 1}
    assert (await stack.origin_stats())["tokens"] == 1
    assert header["oiat"] == claims["iat"]
    assert claims["sid"] == sid


async def test_refresh_with_token_is_minted_at_edge_with_same_claims_and_oiat(
    stack: Stack,
) -> None:
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        first = (await browser.refresh(sid, organization_id="org_acme")).jwt
        stack.clock.advance(30)
        second = (await browser.refresh(sid, organization_id="org_acme", token=first)).jwt
    (h1, c1), (h2, c2) = decode(first), decode(second)
    assert stack.decisions()[("minted", "edge")] == 1
    assert (await stack.origin_stats())["tokens"] == 1, "the origin saw only the first mint"
    assert stable(c2) == stable(c1)
    assert h2["oiat"] == h1["oiat"]
    assert h2["kid"] == h1["kid"] == stack.key.kid
    assert h2["cat"] == SESSION_TOKEN_CAT
    assert c2["iat"] == c1["iat"] + 30
    assert c2["nbf"] == c2["iat"] - 10
    assert c2["exp"] == c2["iat"] + 60
    assert c2["jti"] != c1["jti"]


CORS = (
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Credentials",
    "Access-Control-Expose-Headers",
    "Vary",
)


async def test_an_edge_mint_carries_the_cors_headers_of_an_origin_mint(stack: Stack) -> None:
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        from_origin = await browser.refresh(sid)
        stack.clock.advance(5)
        from_edge = await browser.refresh(sid, token=from_origin.jwt)
    assert stack.decisions()[("minted", "edge")] == 1
    origin_cors = {name: from_origin.headers.getall(name) for name in CORS}
    assert origin_cors["Access-Control-Allow-Origin"] == [browser.origin]
    assert {name: from_edge.headers.getall(name) for name in CORS} == origin_cors
    assert from_edge.headers["Cache-Control"] == "no-store"


async def test_two_apps_on_one_session_keep_their_own_azp(stack: Stack) -> None:
    app, dashboard = "https://app.example.test", "https://dashboard.example.test"
    async with Browser(stack.fapi, origin=app) as browser:  # one __client for both apps
        sid = await browser.sign_in()
        app_token = (await browser.refresh(sid)).jwt
        stack.clock.advance(30)
        dashboard_token = (
            await browser.request(
                "POST",
                f"/v1/client/sessions/{sid}/tokens",
                data={"organization_id": ""},
                headers={"Origin": dashboard},
            )
        ).jwt  # the fresher claims in the store now came from the dashboard's request
        stack.clock.advance(15)
        cloned = (await browser.refresh(sid, token=app_token)).jwt
    assert decode(dashboard_token)[1]["azp"] == dashboard
    assert stack.decisions()[("minted", "edge")] == 1
    assert decode(cloned)[0]["oiat"] == decode(dashboard_token)[0]["oiat"], "the fresher claims"
    assert decode(cloned)[1]["azp"] == app, "issued to the app that asked"


async def test_force_origin_in_body_reaches_origin_without_edge_fields(stack: Stack) -> None:
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        first = (await browser.refresh(sid)).jwt
        answer = await browser.refresh(sid, token=first, force_origin=True)
    assert answer.status == 200
    last = (await stack.origin_stats())["last_token_request"]
    assert "token" not in last["form"]
    assert "force_origin" not in last["form"]
    assert last["form"]["organization_id"] == ""
    assert stack.decisions()[("origin", "force_origin")] == 1


async def test_force_origin_in_query_reaches_origin_without_it(stack: Stack) -> None:
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        first = (await browser.refresh(sid)).jwt
        answer = await browser.refresh(
            sid, token=first, query="force_origin=true&__clerk_api_version=2025-11-10"
        )
    assert answer.status == 200
    last = (await stack.origin_stats())["last_token_request"]
    assert "force_origin" not in last["query"]
    assert last["query"]["__clerk_api_version"] == "2025-11-10"
    assert "token" not in last["form"]
    assert stack.decisions()[("origin", "force_origin")] == 1


async def test_template_tokens_go_to_origin(stack: Stack) -> None:
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        first = (await browser.refresh(sid)).jwt
        answer = await browser.refresh(sid, token=first, template="integration_demo")
    header, _ = decode(answer.jwt)
    assert header.get("cat") != SESSION_TOKEN_CAT
    assert (await stack.origin_stats())["tokens_template"] == 1
    assert stack.decisions()[("origin", "template")] == 1


async def test_changed_organization_goes_to_origin(stack: Stack) -> None:
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        in_org = (await browser.refresh(sid, organization_id="org_acme")).jwt
        personal = (await browser.refresh(sid, organization_id="", token=in_org)).jwt
    assert "o" not in decode(personal)[1]
    assert stack.decisions()[("origin", "org")] == 1


async def test_claims_older_than_max_claims_age_go_to_origin(stack: Stack) -> None:
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        first = (await browser.refresh(sid)).jwt
        stack.clock.advance(301)
        past_bound = (await browser.refresh(sid, token=first)).jwt
    assert stack.decisions()[("origin", "too_old")] == 1
    assert decode(past_bound)[0]["oiat"] == int(stack.clock.now)


async def test_claims_about_to_reach_the_bound_go_to_origin(stack: Stack) -> None:
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        first = (await browser.refresh(sid)).jwt
        stack.clock.advance(291)  # 9 s of the 300 s bound left: too little for a token
        fresh = (await browser.refresh(sid, token=first)).jwt
        stack.clock.advance(5)
        again = (await browser.refresh(sid, token=first)).jwt
    assert stack.decisions()[("origin", "near_bound")] == 1
    assert decode(fresh)[0]["oiat"] == int(stack.clock.now) - 5
    # the posted token is old, but the edge clones the fresher claims it stored
    assert decode(again)[0]["oiat"] == decode(fresh)[0]["oiat"]
    assert stack.decisions()[("minted", "edge")] == 1


async def test_minted_exp_never_passes_oiat_plus_bound(stack: Stack) -> None:
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        first = (await browser.refresh(sid)).jwt
        stack.clock.advance(270)
        late = (await browser.refresh(sid, token=first)).jwt
    header, claims = decode(late)
    assert stack.decisions()[("minted", "edge")] == 1
    assert claims["exp"] == header["oiat"] + 300
    assert claims["exp"] - claims["iat"] == 30


async def test_role_change_then_force_refresh_never_yields_old_role(
    tmp_path: Path, clock: FakeClock
) -> None:
    # No push: the edge learns only from the origin's answers.
    async with running_stack(tmp_path, clock, push_to_edge=False) as stack:
        async with Browser(stack.fapi) as browser:
            sid = await browser.sign_in()
            old = (await browser.refresh(sid, organization_id="org_acme")).jwt
            status, _ = await stack.origin_admin(
                "PATCH",
                "/backend/v1/organizations/org_acme/memberships/user_alice",
                {"role": "org:member"},
            )
            assert status == 200
            stack.clock.advance(5)
            fresh = (
                await browser.refresh(sid, organization_id="org_acme", token=old, force_origin=True)
            ).jwt
            stack.clock.advance(5)
            replay = (await browser.refresh(sid, organization_id="org_acme", token=old)).jwt
        fresh_header, fresh_claims = decode(fresh)
        replay_header, replay_claims = decode(replay)
        assert fresh_claims["o"]["rol"] == "member"
        assert replay_claims["o"]["rol"] == "member"
        assert replay_header["oiat"] >= fresh_header["oiat"] > decode(old)[0]["oiat"]
        assert stack.decisions()[("minted", "edge")] == 1, "cloned from the stored claims"


async def test_role_change_push_sends_next_refresh_to_origin(stack: Stack) -> None:
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        old = (await browser.refresh(sid, organization_id="org_acme")).jwt
        status, _ = await stack.origin_admin(
            "PATCH",
            "/backend/v1/organizations/org_acme/memberships/user_alice",
            {"role": "org:member"},
        )
        assert status == 200
        stack.clock.advance(1)
        after = (await browser.refresh(sid, organization_id="org_acme", token=old)).jwt
    assert decode(after)[1]["o"]["rol"] == "member"
    assert stack.decisions()[("origin", "stale")] == 1


async def test_token_for_another_session_is_not_cloned(stack: Stack) -> None:
    async with Browser(stack.fapi) as alice, Browser(stack.fapi) as bob:
        alice_sid = await alice.sign_in()
        bob_sid = await bob.sign_in(BOB)
        bob_token = (await bob.refresh(bob_sid)).jwt
        answer = await alice.refresh(alice_sid, token=bob_token)
    assert decode(answer.jwt)[1]["sub"] == "user_alice"
    assert stack.decisions()[("origin", "invalid:claim:sid")] == 1
    assert ("minted", "edge") not in stack.decisions()


async def test_forged_tokens_are_not_cloned(stack: Stack, tmp_path: Path) -> None:
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        real = (await browser.refresh(sid)).jwt
        header, claims = decode(real)
        forged_claims = {**claims, "sub": "user_bob"}
        unsigned = pyjwt.encode(
            forged_claims, None, algorithm="none", headers={"kid": header["kid"]}
        )
        hs256 = pyjwt.api_jws.PyJWS()._algorithms["HS256"]
        signing_input = sign_compact({**header, "alg": "HS256"}, forged_claims, stack.key).rsplit(
            ".", 1
        )[0]
        confused = (
            signing_input
            + "."
            + pyjwt.utils.base64url_encode(
                hs256.sign(signing_input.encode(), public_pem(stack.key))
            ).decode()
        )
        tampered = (
            sign_compact(header, forged_claims, stack.key).rsplit(".", 1)[0]
            + "."
            + real.rsplit(".", 1)[1]
        )
        for forged in (unsigned, confused, tampered):
            answer = await browser.refresh(sid, token=forged)
            assert decode(answer.jwt)[1]["sub"] == "user_alice"
    decisions = stack.decisions()
    assert ("minted", "edge") not in decisions
    assert sum(v for (outcome, reason), v in decisions.items() if reason.startswith("invalid")) == 3


async def test_a_token_the_edge_signed_is_known_when_it_comes_back(stack: Stack) -> None:
    signed = stack.edge_app[SERVICES].signed
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        from_origin = (await browser.refresh(sid)).jwt
        stack.clock.advance(30)
        from_edge = (await browser.refresh(sid, token=from_origin)).jwt
        assert signed.knows(sid, from_edge)
        remembered = signed.recall(sid, from_edge)
        assert remembered is not None
        assert tuple(map(json.loads, remembered)) == decode(from_edge), "remembered as signed"
        assert not signed.knows("sess_other", from_edge), "remembered for its session only"
        assert not signed.knows(sid, from_origin), "the origin's tokens are verified in full"
        stack.clock.advance(30)
        again = await browser.refresh(sid, token=from_edge)
        assert signed.knows(sid, again.jwt)
        assert not signed.knows(sid, from_edge), "the session's last token only"
        # The same claims under another signature are not the bytes the edge signed.
        header, claims = decode(from_edge)
        tampered = (
            sign_compact(header, {**claims, "sub": "user_bob"}, stack.key).rsplit(".", 1)[0]
            + "."
            + from_edge.rsplit(".", 1)[1]
        )
        assert not signed.knows(sid, tampered)
        refused = await browser.refresh(sid, token=tampered)
    assert decode(again.jwt)[0]["oiat"] == decode(from_origin)[0]["oiat"]
    assert decode(refused.jwt)[1]["sub"] == "user_alice"
    assert stack.decisions() == {
        ("origin", "no_token"): 1,
        ("minted", "edge"): 2,
        ("origin", "invalid:signature"): 1,
    }


async def test_published_jwks_answers_304_to_a_matching_if_none_match(stack: Stack) -> None:
    async with Browser(stack.fapi) as browser:
        first = await browser.request("GET", "/.well-known/jwks.json")
        etag = first.headers["ETag"]
        assert first.status == 200
        assert first.headers["Cache-Control"].startswith("public")
        for matching in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            again = await browser.request(
                "GET", "/.well-known/jwks.json", headers={"If-None-Match": matching}
            )
            assert (again.status, again.headers["ETag"]) == (304, etag), matching
        other = await browser.request(
            "GET", "/.well-known/jwks.json", headers={"If-None-Match": '"other"'}
        )
    assert (other.status, other.body) == (200, first.body)


async def test_edge_tokens_verify_with_an_independent_library(stack: Stack) -> None:
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        first = (await browser.refresh(sid)).jwt
        stack.clock.advance(2)
        minted = (await browser.refresh(sid, token=first)).jwt
        published = await browser.request("GET", "/.well-known/jwks.json")
    async with Browser(stack.origin_url) as direct:
        origin_jwks = await direct.request("GET", "/v1/jwks")
    assert stack.decisions()[("minted", "edge")] == 1
    for document in (published.body, origin_jwks.body):
        keyset = jwk.JWKSet.from_json(json.dumps(document))
        token = jws.JWS()
        token.deserialize(minted)
        token.verify(keyset.get_key(decode(minted)[0]["kid"]), alg="RS256")
        assert token.is_valid
    # and with the origin's public key alone, as a networkless verifier holds it
    claims = pyjwt.decode(
        minted,
        public_pem(stack.key),
        algorithms=["RS256"],
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
        issuer="https://clerk.example.test",
    )
    assert claims["sid"] == sid


async def test_prefix_routes_tokens_and_strips_it_when_forwarding(
    tmp_path: Path, clock: FakeClock
) -> None:
    from proxy.config import ServerSettings

    async with running_stack(tmp_path, clock, server=ServerSettings(prefix="/__clerk")) as stack:
        async with Browser(stack.fapi) as browser:
            sid = await browser.sign_in()
            first = (await browser.refresh(sid)).jwt
            minted = await browser.refresh(sid, token=first)
        assert minted.status == 200
        assert stack.decisions()[("minted", "edge")] == 1
        assert (await stack.origin_stats())["sign_ins"] == 1


async def test_shorter_max_claims_age_is_honoured(tmp_path: Path, clock: FakeClock) -> None:
    async with running_stack(tmp_path, clock, tokens=with_tokens(max_claims_age_s=60)) as stack:
        async with Browser(stack.fapi) as browser:
            sid = await browser.sign_in()
            first = (await browser.refresh(sid)).jwt
            stack.clock.advance(45)
            minted = (await browser.refresh(sid, token=first)).jwt
        header, claims = decode(minted)
        assert claims["exp"] == header["oiat"] + 60


async def test_without_the_memo_of_signed_tokens_every_token_is_verified_in_full(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with running_stack(tmp_path, clock, tokens=with_tokens(remember_signed=0)) as stack:
        signed = stack.edge_app[SERVICES].signed
        async with Browser(stack.fapi) as browser:
            sid = await browser.sign_in()
            first = (await browser.refresh(sid)).jwt
            stack.clock.advance(20)
            second = (await browser.refresh(sid, token=first)).jwt
            stack.clock.advance(20)
            third = (await browser.refresh(sid, token=second)).jwt
        assert not signed.knows(sid, second)
        assert len(signed) == 0
        assert decode(third)[0]["oiat"] == decode(first)[0]["oiat"]
        assert stack.decisions()[("minted", "edge")] == 2
