"""Sign-outs the edge forwards become revocations: the real edge, the real origin.

After each sign-out shape, a refresh with a token that is still valid must
not be minted at the edge. A sign-out the origin refuses revokes nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from yarl import URL

from minter import ClaimsRecord, SigningKey, sign_compact
from proxy.keygen import write_key
from proxy.services import SERVICES
from proxy.signout import sign_out_of
from proxy.store import SessionStore, Settled
from tests.proxy.raw_origin import (
    RawOrigin,
    Received,
    answer_bytes,
    edge_in_front,
    exchange,
    parse_answer,
)
from tests.stack import BOB, ISSUER, Browser, FakeClock, Stack, decode


def minted(stack: Stack) -> float:
    return sum(n for (outcome, _), n in stack.decisions().items() if outcome == "minted")


async def edge_minted(stack: Stack, browser: Browser) -> tuple[str, str]:
    """Sign in, get an origin token, then one minted at the edge; both still valid."""
    sid = await browser.sign_in()
    first = (await browser.refresh(sid)).jwt
    stack.clock.advance(10)
    before = minted(stack)
    token = (await browser.refresh(sid, token=first)).jwt
    assert minted(stack) == before + 1
    stack.clock.advance(10)
    return sid, token


async def assert_not_minted_at_edge(stack: Stack, browser: Browser, sid: str, token: str) -> None:
    before_minted = minted(stack)
    before_revoked = stack.decisions().get(("origin", "revoked"), 0)
    answer = await browser.refresh(sid, token=token)
    assert minted(stack) == before_minted, "a revoked session was minted at the edge"
    assert stack.decisions()[("origin", "revoked")] == before_revoked + 1
    assert answer.status != 200, "the origin, asked instead, says the session is over"


async def assert_minted_at_edge(stack: Stack, browser: Browser, sid: str, token: str) -> None:
    before = minted(stack)
    answer = await browser.refresh(sid, token=token)
    assert decode(answer.jwt)[1]["sid"] == sid
    assert minted(stack) == before + 1


SHAPES = [
    ("POST", "/v1/client/sessions/{sid}/end"),
    ("POST", "/v1/client/sessions/{sid}/remove"),
    ("POST", "/v1/me/sessions/{sid}/revoke"),
    ("DELETE", "/v1/client/sessions/{sid}"),
    ("POST", "/v1/client/sessions/{sid}?_method=DELETE"),
    ("DELETE", "/v1/client"),
    ("POST", "/v1/client?_method=DELETE"),
    ("DELETE", "/v1/client/sessions"),
    # What clerk-js's signOut() sends:
    ("POST", "/v1/client/sessions?_method=DELETE&__clerk_api_version=2025-11-10"),
]


@pytest.mark.parametrize(("method", "path"), SHAPES)
async def test_each_sign_out_shape_stops_edge_mints(stack: Stack, method: str, path: str) -> None:
    async with Browser(stack.fapi) as browser:
        sid, token = await edge_minted(stack, browser)
        answer = await browser.request(method, path.format(sid=sid))
        assert 200 <= answer.status < 300, answer.body
        await assert_not_minted_at_edge(stack, browser, sid, token)


# Sent as written (no client-side normalising): the origin's router decodes the
# escapes of unreserved characters, so these end the session there, and the
# edge must learn them as it learns the plain shapes. `_method` is the client's
# method override; on an action path the origin ends the session whatever it says.
UNUSUAL_SHAPES = [
    ("POST", "/v1/client/sessions/{sid}/%65nd"),
    ("POST", "/v1/client/sessions/{escaped_sid}/remove"),
    ("POST", "/v1/client/sessions/{sid}/end?_method=DELETE"),
]


@pytest.mark.parametrize(("method", "path"), UNUSUAL_SHAPES)
async def test_an_unusually_written_sign_out_stops_edge_mints(
    stack: Stack, method: str, path: str
) -> None:
    async with Browser(stack.fapi) as browser:
        sid, token = await edge_minted(stack, browser)
        written = path.format(sid=sid, escaped_sid=f"%{ord(sid[0]):02X}{sid[1:]}")
        target = URL(stack.fapi + written, encoded=True)
        async with browser.client.request(method, target) as response:
            assert 200 <= response.status < 300, await response.text()
        await assert_not_minted_at_edge(stack, browser, sid, token)


@pytest.mark.parametrize(
    ("path", "session_id"),
    [
        ("/v1/client/sessions/sess_1/tokens/../end", "sess_1"),  # as nginx would pass it on
        ("/v1/client/sessions/sess_1/./remove", "sess_1"),
        ("/v1/client/sessions/sess_2/../sess_1/end", "sess_1"),
        ("/v1/client/sessions/sess_1/%2e%2e/sess_1/end", "sess_1"),
        ("/v1/client/sessions//sess_1//end", "sess_1"),  # as nginx merges slashes
        ("/v1/client/sessions/sess_1%2Fx/end", None),  # an escaped slash stays one
        ("/v1/client/sessions/sess_1/tokens/..", None),
    ],
)
def test_sign_outs_are_matched_on_the_path_as_servers_route_it(
    path: str, session_id: str | None
) -> None:
    found = sign_out_of("POST", path, "")
    assert (found.session_id if found else None) == session_id


@pytest.mark.parametrize(
    ("method", "path"),
    [shape for shape in SHAPES if "{sid}" in shape[1]],
)
async def test_unauthenticated_sign_out_of_someone_elses_session_revokes_nothing(
    stack: Stack, method: str, path: str
) -> None:
    async with Browser(stack.fapi) as alice, Browser(stack.fapi) as stranger:
        sid, token = await edge_minted(stack, alice)
        answer = await stranger.request(method, path.format(sid=sid))
        assert 400 <= answer.status < 500, answer.body
        await assert_minted_at_edge(stack, alice, sid, token)


async def test_a_session_revoked_from_another_device_stops_edge_mints(stack: Stack) -> None:
    async with Browser(stack.fapi) as laptop, Browser(stack.fapi) as phone:
        sid, token = await edge_minted(stack, laptop)
        await phone.sign_in()  # the same user, another client
        answer = await phone.request("POST", f"/v1/me/sessions/{sid}/revoke")
        assert answer.status == 200, answer.body
        assert answer.body["response"]["status"] == "revoked"
        await assert_not_minted_at_edge(stack, laptop, sid, token)
        await phone.sign_in(BOB)  # now the phone's active session is Bob's
        answer = await phone.request("POST", f"/v1/me/sessions/{sid}/revoke")
        assert answer.status == 404, "only the session's own user may revoke it"


async def test_whole_client_sign_out_takes_the_session_from_a_verified_cookie(
    tmp_path: Path, clock: FakeClock
) -> None:
    """An origin whose answer names no session, an edge that never saw the client's
    token requests: only the `__session` cookies can name what was signed out."""

    async def respond(received: Received) -> bytes:
        return answer_bytes(body=b'{"response":{"object":"client","sessions":[]}}')

    async with (
        RawOrigin(respond) as origin,
        edge_in_front(origin.url, tmp_path, clock) as (edge, app),
    ):
        services = app[SERVICES]
        key = services.keyring.active
        now = int(clock.now)
        header = {"alg": key.alg, "kid": key.kid, "typ": "JWT"}

        def token(sid: str, signer: SigningKey = key, iat: int = now) -> str:
            claims = {"iss": ISSUER, "sub": "user_alice", "sid": sid}
            return sign_compact(
                header, {**claims, "iat": iat, "nbf": iat - 10, "exp": iat + 60}, signer
            )

        stranger = write_key(tmp_path / "stranger.pem")
        cookies = {
            "__session": token("sess_expired_long_ago", iat=now - 86_400),
            "__session_Zm9vYmFy": token("sess_suffixed"),
            "__session_forged": token("sess_forged", signer=stranger),
            "__session_garbage": "a.b.c",
            "__sessionx": token("sess_wrong_name"),
        }
        cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
        raw = await exchange(
            edge,
            f"DELETE /v1/client HTTP/1.1\r\nHost: h\r\nCookie: {cookie}\r\n"
            "Connection: close\r\n\r\n".encode(),
        )
        assert parse_answer(raw).status == 200
        revoked = {
            sid
            for sid in ("sess_expired_long_ago", "sess_suffixed", "sess_forged", "sess_wrong_name")
            if await services.store.is_revoked(sid)
        }
    assert revoked == {"sess_expired_long_ago", "sess_suffixed"}
    [received] = origin.forwarded()
    assert received.one("Cookie") == cookie, "the cookies still reach the origin as sent"


async def test_forged_session_cookie_cannot_revoke_someone_else(
    stack: Stack, tmp_path: Path
) -> None:
    attacker_key = write_key(tmp_path / "attacker.pem")
    async with Browser(stack.fapi) as alice, Browser(stack.fapi) as mallory:
        sid, token = await edge_minted(stack, alice)
        header, claims = decode(token)
        forgeries = [
            sign_compact(header, claims, attacker_key),  # the instance kid, a wrong signature
            sign_compact({**header, "kid": attacker_key.kid}, claims, attacker_key),
            token.rsplit(".", 1)[0] + ".bm90LWEtc2lnbmF0dXJl",
            "not-a-jwt",
        ]
        await mallory.sign_in(BOB)
        for index, forged in enumerate(forgeries):
            name = "__session" if index % 2 == 0 else "__session_Zm9v"
            mallory.client.cookie_jar.update_cookies({name: forged}, URL(stack.edge_url))
        answer = await mallory.request("POST", "/v1/client/sessions?_method=DELETE")
        assert answer.status == 200, "the origin signed mallory's own client out"
        await assert_minted_at_edge(stack, alice, sid, token)


async def test_revoked_session_with_the_origin_down_gets_503_not_an_edge_token(
    stack: Stack,
) -> None:
    async with Browser(stack.fapi) as browser:
        sid, token = await edge_minted(stack, browser)
        assert (await browser.request("POST", f"/v1/client/sessions/{sid}/end")).status == 200
        await stack.stop_origin()
        before = minted(stack)
        answer = await browser.refresh(sid, token=token)
    assert answer.status == 503
    assert answer.headers["Retry-After"]
    assert minted(stack) == before


async def test_sign_out_failing_at_the_origin_revokes_nothing(stack: Stack) -> None:
    async with Browser(stack.fapi) as browser:
        sid, token = await edge_minted(stack, browser)
        await stack.origin_faults("error503")
        answer = await browser.request("POST", f"/v1/client/sessions/{sid}/end")
        assert answer.status == 503
        await stack.origin_faults("ok")
        await assert_minted_at_edge(stack, browser, sid, token)


class RevokesWhileSigning:
    """A store through which a sign-out lands exactly while a token is being signed.

    The edge reads the session state, decides to mint, signs, and only then
    settles with the store (keep the claims, and say whether the session is
    revoked): this wrapper revokes the session right before that step, as a
    sign-out handled on another request would.
    """

    def __init__(self, inner: SessionStore, session_id: str) -> None:
        self.inner = inner
        self.session_id = session_id
        self.landed = False

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def settle(
        self, session_id: str, organization_id: str, *, oiat: int, record: ClaimsRecord | None
    ) -> Settled:
        if session_id == self.session_id and not self.landed:
            self.landed = True
            await self.inner.revoke([session_id])
        return await self.inner.settle(session_id, organization_id, oiat=oiat, record=record)


class OriginAnswersWhileSigning:
    """A store through which another tab's `force_origin` refresh is answered by the
    origin, and learned, exactly while this edge is signing a clone of older claims."""

    def __init__(self, inner: SessionStore, other_tab: Browser, session_id: str) -> None:
        self.inner = inner
        self.other_tab = other_tab
        self.session_id = session_id
        self.fresher: str | None = None

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def settle(
        self, session_id: str, organization_id: str, *, oiat: int, record: ClaimsRecord | None
    ) -> Settled:
        if session_id == self.session_id and self.fresher is None:
            answer = await self.other_tab.refresh(session_id, force_origin=True)
            self.fresher = answer.jwt
        return await self.inner.settle(session_id, organization_id, oiat=oiat, record=record)


async def test_fresher_claims_landing_while_a_mint_is_in_flight_win(stack: Stack) -> None:
    services = stack.edge_app[SERVICES]
    async with Browser(stack.fapi) as browser:
        sid, token = await edge_minted(stack, browser)
        racing = OriginAnswersWhileSigning(services.store, browser, sid)
        services.store = racing  # type: ignore[assignment]
        before = minted(stack)
        answer = await browser.refresh(sid, token=token)
    assert racing.fresher is not None
    fresher_oiat = decode(racing.fresher)[0]["oiat"]
    assert fresher_oiat > decode(token)[0]["oiat"], "control: the origin's claims are fresher"
    assert decode(answer.jwt)[0]["oiat"] == fresher_oiat, "no older oiat left the edge"
    assert minted(stack) == before + 1, "cloned again, from the fresher claims"


async def test_sign_out_landing_while_a_mint_is_in_flight_is_honoured(stack: Stack) -> None:
    services = stack.edge_app[SERVICES]
    async with Browser(stack.fapi) as browser:
        sid, token = await edge_minted(stack, browser)
        racing = RevokesWhileSigning(services.store, sid)
        services.store = racing  # type: ignore[assignment]
        before = minted(stack)
        answer = await browser.refresh(sid, token=token)
    assert racing.landed, "the revocation was checked again after signing"
    assert minted(stack) == before, "the token signed before the sign-out never left the edge"
    assert stack.decisions()[("origin", "revoked")] == 1
    # The origin still thinks the session is alive (nobody told it): it answers.
    assert answer.status == 200
    assert decode(answer.jwt)[0]["oiat"] == int(stack.clock.now)


@pytest.mark.parametrize(
    "answer",
    [
        b'{"response": {"object": "client", "sessions": 5}}',
        b'{"response": {"object": "client", "sessions": true}, "client": null}',
        b'{"client": {"sessions": 1.5}}',
    ],
)
async def test_an_odd_sign_out_answer_reaches_the_client_as_the_origin_sent_it(
    tmp_path: Path, answer: bytes
) -> None:
    """What the edge cannot read in a 2xx sign-out answer names no session; it is no 500."""

    async def respond(received: Received) -> bytes:
        return answer_bytes(headers=[("Content-Type", "application/json")], body=answer)

    async with RawOrigin(respond) as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        raw = await exchange(
            edge, b"DELETE /v1/client HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        )
    forwarded = parse_answer(raw)
    assert (forwarded.status, forwarded.body) == (200, answer)
    assert len(origin.forwarded()) == 1
