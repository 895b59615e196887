"""Constants, token and record builders, and Hypothesis strategies for the minter tests.

Everything here is pure: keys come from the session fixtures in conftest.py,
times are fixed integers, nothing reads the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import strategies as st
from jwcrypto import jwk, jws

from minter import (
    SESSION_TOKEN_CAT,
    ClaimsRecord,
    SigningKey,
    VerifiedToken,
    organization_of,
    sign_compact,
)

NOW = 1_750_000_000  # whole Unix seconds; every test passes it explicitly
SID = "sess_2k9XvQz3mB7aLpT0"
USER = "user_alice"
ISSUER = "https://clerk.example.test"
AZP = "https://app.example.test"
ORG = "org_acme"
JTI = "4b1f0c2e9d8a7b6c5d4e"
TEMPLATE_CAT = "cl_TmPl4t3Xyz0000"

# The claims an edge re-stamps; every other claim must be copied unchanged.
RESTAMPED = frozenset({"iat", "nbf", "exp", "jti", "fva"})
REQUIRED = frozenset({"azp", "iss", "sid", "sub", "iat", "nbf", "exp"})


class _Omit:
    """Marks a header member or claim that the builder must leave out."""

    def __repr__(self) -> str:
        return "OMIT"


OMIT: Any = _Omit()

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def pem_of(
    private: PrivateKey,
    fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8,
) -> bytes:
    return private.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def session_claims(iat: int = NOW - 20, lifetime: int = 60) -> dict[str, Any]:
    """v2 session claims as the origin assembles them at `iat`."""
    return {
        "azp": AZP,
        "exp": iat + lifetime,
        "fea": "o:articles",
        "fva": [3, -1],
        "iat": iat,
        "iss": ISSUER,
        "jti": JTI,
        "nbf": iat - 10,
        "o": {"fpm": "3", "id": ORG, "per": "read,write", "rol": "admin", "slg": "acme"},
        "pla": "u:free",
        "sid": SID,
        "sts": "active",
        "sub": USER,
        "v": 2,
    }


def _apply(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = {**base, **overrides}
    return {name: value for name, value in merged.items() if value is not OMIT}


class TokenFactory:
    """`make_token(**claim_overrides, header={...})` → a signed compact JWS.

    Defaults: an origin session token issued 20 s before NOW (header
    `oiat == iat`, `cat` the session value). Overriding `iat` with an integer
    moves `nbf`, `exp` and the header `oiat` with it unless those are given
    too. `OMIT` as a value removes a member. `signer="pyjwt"` signs with
    pyjwt's `jwt.encode` instead of `minter.sign_compact`.
    """

    def __init__(self, key: SigningKey, private: PrivateKey) -> None:
        self.key = key
        self.private = private

    def header(self, claims: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
        iat = claims.get("iat")
        base: dict[str, Any] = {
            "alg": self.key.alg,
            "kid": self.key.kid,
            "typ": "JWT",
            "cat": SESSION_TOKEN_CAT,
            "oiat": iat if type(iat) is int else OMIT,
        }
        return _apply(base, overrides)

    def claims(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        iat = overrides.get("iat", NOW - 20)
        base = session_claims(iat) if type(iat) is int else session_claims()
        return _apply(base, overrides)

    def __call__(
        self,
        *,
        header: Mapping[str, Any] | None = None,
        key: SigningKey | None = None,
        private: PrivateKey | None = None,
        signer: Literal["minter", "pyjwt"] = "minter",
        **claim_overrides: Any,
    ) -> str:
        claims = self.claims(claim_overrides)
        head = self.header(claims, header or {})
        if signer == "pyjwt":
            extra = {name: value for name, value in head.items() if name != "alg"}
            return jwt.encode(claims, private or self.private, algorithm=head["alg"], headers=extra)
        return sign_compact(head, claims, key or self.key)


def jwcrypto_verify(token: str, public_jwk: Mapping[str, Any]) -> dict[str, Any]:
    """Verify with jwcrypto, an implementation independent of minter; return the header."""
    key = jwk.JWK(**public_jwk)
    verifier = jws.JWS()
    verifier.deserialize(token)
    verifier.verify(key, alg=public_jwk["alg"])
    header: dict[str, Any] = verifier.jose_header
    return header


def verified(
    *,
    oiat: int,
    iat: int | None = None,
    lifetime: int = 60,
    org: str = ORG,
    cat: str | None = SESSION_TOKEN_CAT,
    claims: Mapping[str, Any] | None = None,
    kid: str = "kid-1",
) -> VerifiedToken:
    """A VerifiedToken as verify_session_token would return it (for policy tests)."""
    iat = oiat if iat is None else iat
    body = dict(session_claims(iat, lifetime) if claims is None else claims)
    if claims is None:
        body["o"] = {**body["o"], "id": org} if org else OMIT
        body = _apply(body, {})
    header: dict[str, Any] = {"alg": "RS256", "kid": kid, "typ": "JWT", "oiat": oiat}
    if cat is not None:
        header["cat"] = cat
    return VerifiedToken(
        header=header,
        claims=body,
        kid=kid,
        oiat=oiat,
        iat=iat,
        exp=iat + lifetime,
        organization_id=organization_of(body),
        cat=cat,
    )


def record(*, oiat: int, origin_lifetime_s: int | None = 60, org: str = ORG) -> ClaimsRecord:
    claims = session_claims(oiat)
    claims["o"] = {**claims["o"], "id": org}
    return ClaimsRecord(
        oiat=oiat, cat=SESSION_TOKEN_CAT, claims=claims, origin_lifetime_s=origin_lifetime_s
    )


# Hypothesis strategies -----------------------------------------------------

_text = st.text(st.characters(codec="utf-8"), max_size=12)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
custom_claims = st.dictionaries(
    _text.filter(lambda name: name not in RESTAMPED | REQUIRED | {"o", "org_id", "v"}),
    json_values,
    max_size=6,
)
fva_values = st.lists(
    st.one_of(st.just(-1), st.integers(min_value=0, max_value=10**6)), min_size=2, max_size=2
)
