"""Helpers shared by the origin tests: constants, a movable clock, FAPI calls, JWT checks."""

from __future__ import annotations

from typing import Any

import jwt
from aiohttp import web
from aiohttp.test_utils import TestClient

from origin import seed

SECRET_KEY = "sk_test_secret"
PUSH_SECRET = "push-secret"
ISSUER = "https://clerk.example.test"
START = 1_700_000_000.0
ADMIN = {"Authorization": f"Bearer {SECRET_KEY}"}

Client = TestClient[web.Request, web.Application]


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def sign_in(
    client: Client,
    email: str = seed.ALICE_EMAIL,
    password: str = seed.ALICE_PASSWORD,
    **kwargs: Any,
) -> dict[str, Any]:
    """Sign in with a password; answer the FAPI body."""
    response = await client.post(
        "/v1/client/sign_ins",
        data={"identifier": email, "password": password, "strategy": "password"},
        **kwargs,
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def public_key(client: Client, kid: str) -> Any:
    response = await client.get("/v1/jwks")
    for jwk in (await response.json())["keys"]:
        if jwk["kid"] == kid:
            return jwt.PyJWK(jwk).key
    raise AssertionError(f"kid {kid} not in the JWKS")


async def verified(client: Client, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of `token`, its signature and issuer checked against the served JWKS.

    The time claims are not checked here (the tests' clock is not the wall clock):
    the tests assert them exactly instead.
    """
    header = jwt.get_unverified_header(token)
    key = await public_key(client, header["kid"])
    claims = jwt.decode(
        token,
        key,
        algorithms=[header["alg"]],
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    return header, claims
