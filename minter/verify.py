"""Verify a session token that a client posted, by the design's rules only.

Checks run cheapest first, and the payload is parsed only after the
signature has been checked:

1. size cap, compact form, canonical base64url, strict JSON header;
2. header members: only `alg`, `kid`, `typ` ("JWT"), `cat`, `oiat`; the
   dangerous ones (`jku`, `x5u`, `x5c`, `jwk`, `crit`, `b64`, `zip`, `enc`)
   are named in the error;
3. `kid` in the key set (else UnknownKey, so the caller may refetch JWKS),
   `alg` equal to the algorithm configured for that key, signature;
4. claims: `sid` equal to the path's byte for byte, `sub` a string and not a
   machine (`mch_`), `iss` allowed, `azp` allowed when configured, times
   integers in [0, 2^53), `iat`/`nbf` not after now + leeway, `exp > iat`,
   expired for at most `max_expired_s`, `oiat` not after `iat` nor now,
   `cat` the session value or absent, `fva` two integers >= -1.

`verify_signed_here` is the same check for a token whose exact bytes this
edge signed itself (the caller remembers them by digest, with the header
and claims JSON it signed): what was settled when it was signed (the
signature, the canonical encoding, the header) is not checked again and no
base64 is decoded; its key must still be one that is accepted, and its
claims are checked against `now` and the path as in step 4.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import (
    AlgorithmMismatch,
    BadSignature,
    ClaimRejected,
    ForbiddenHeader,
    MalformedToken,
    TokenExpired,
    UnknownKey,
)
from .jws import b64url_decode, parse_json_object, parse_own_json, split_compact
from .keys import PublicKey

__all__ = [
    "IGNORED_CAT",
    "MAX_TOKEN_BYTES",
    "SESSION_TOKEN_CAT",
    "VerifiedToken",
    "VerifyRules",
    "check_kept_claims",
    "organization_of",
    "verify_session_token",
    "verify_signed_here",
]

MAX_TOKEN_BYTES = 16 * 1024
SESSION_TOKEN_CAT = "cl_B7d4PD111AAA"  # noqa: S105 - the token class, not a secret
# Instances with Clerk's `use_ignore_jwt_cat` stamp this on every token class, and
# @clerk/backend accepts it as a session token (`isNonSessionJwtCategory`): so does the edge.
IGNORED_CAT = "cl_I7d4PD111III"
_SESSION_CATS = frozenset({SESSION_TOKEN_CAT, IGNORED_CAT})
MAX_TIME = 1 << 53

_FORBIDDEN_HEADER_MEMBERS = frozenset({"jku", "x5u", "x5c", "jwk", "crit", "b64", "zip", "enc"})
_ALLOWED_HEADER_MEMBERS = frozenset({"alg", "kid", "typ", "cat", "oiat"})
_TIME_CLAIMS = ("iat", "nbf", "exp")


@dataclass(frozen=True, slots=True)
class VerifyRules:
    """What a posted token must satisfy beyond its signature."""

    issuers: frozenset[str]
    authorized_parties: frozenset[str] = frozenset()  # empty: any azp
    max_expired_s: int = 300
    leeway_s: int = 5
    max_token_bytes: int = MAX_TOKEN_BYTES


@dataclass(frozen=True, slots=True, init=False)
class VerifiedToken:
    """A token that passed every check: its header, claims and derived facts."""

    header: Mapping[str, Any]
    claims: Mapping[str, Any] = field(repr=False)
    kid: str
    oiat: int  # header oiat, else iat
    iat: int
    exp: int
    organization_id: str  # "" when no organization is active
    cat: str | None

    # Written out (`init=False`): mypyc compiles it, a generated one stays interpreted.
    def __init__(
        self,
        header: Mapping[str, Any],
        claims: Mapping[str, Any],
        kid: str,
        oiat: int,
        iat: int,
        exp: int,
        organization_id: str,
        cat: str | None,
    ) -> None:
        object.__setattr__(self, "header", header)
        object.__setattr__(self, "claims", claims)
        object.__setattr__(self, "kid", kid)
        object.__setattr__(self, "oiat", oiat)
        object.__setattr__(self, "iat", iat)
        object.__setattr__(self, "exp", exp)
        object.__setattr__(self, "organization_id", organization_id)
        object.__setattr__(self, "cat", cat)

    @property
    def from_origin(self) -> bool:
        """Claims assembled when signed (oiat == iat): the origin's own token."""
        return self.oiat == self.iat

    @property
    def lifetime_s(self) -> int:
        return self.exp - self.iat


def organization_of(claims: Mapping[str, Any]) -> str:
    """The active organization id of v2 (`o.id`) or v1 (`org_id`) claims."""
    org = claims.get("o")
    if isinstance(org, Mapping):
        org_id = org.get("id")
        return org_id if isinstance(org_id, str) else ""
    org_id = claims.get("org_id")
    return org_id if isinstance(org_id, str) else ""


def _check_header(header: Mapping[str, Any]) -> tuple[str, str]:
    for member in header:
        if member in _FORBIDDEN_HEADER_MEMBERS:
            raise ForbiddenHeader(f"header member {member!r} is refused", member=member)
        if member not in _ALLOWED_HEADER_MEMBERS:
            raise ForbiddenHeader("unknown header member", member=member)
    typ = header.get("typ", "JWT")
    if typ != "JWT":
        raise ForbiddenHeader("typ must be JWT", member="typ")
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str):
        raise MalformedToken("alg is missing")
    if not isinstance(kid, str) or not kid:
        raise MalformedToken("kid is missing")
    cat = header.get("cat", SESSION_TOKEN_CAT)  # `"cat": null` is not absent
    if not isinstance(cat, str) or cat not in _SESSION_CATS:
        raise ClaimRejected("not a session token", claim="cat")
    return alg, kid


def _time(claims: Mapping[str, Any], name: str) -> int:
    value = claims.get(name)
    if type(value) is not int or not 0 <= value < MAX_TIME:
        raise ClaimRejected(f"{name} must be an integer time", claim=name)
    return value


def _check_fva(claims: Mapping[str, Any]) -> None:
    if "fva" not in claims:
        return
    fva = claims["fva"]
    if (
        not isinstance(fva, list)
        or len(fva) != 2
        or any(type(item) is not int or not -1 <= item < MAX_TIME for item in fva)
    ):
        raise ClaimRejected("fva must be two integers >= -1", claim="fva")


def check_kept_claims(claims: Mapping[str, Any]) -> None:
    """Claims handed back by a store, checked as a clone needs them (ClaimRejected if not).

    A store keeps the claims of verified tokens only, so these hold for every
    record it wrote: `iat` an integer time (a clone ages `fva` from it) and
    `fva`, when present, as the verifier requires it. Anything else in a
    shared store was written by someone else.
    """
    _time(claims, "iat")
    _check_fva(claims)


def _check_claims(
    claims: Mapping[str, Any],
    header: Mapping[str, Any],
    *,
    session_id: str,
    rules: VerifyRules,
    now: int,
) -> tuple[int, int, int]:
    if claims.get("sid") != session_id:
        raise ClaimRejected("sid does not match the path", claim="sid")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise ClaimRejected("sub must be a string", claim="sub")
    if sub.startswith("mch_"):
        raise ClaimRejected("machine tokens are not session tokens", claim="sub")
    iss, azp = claims.get("iss"), claims.get("azp")
    if not isinstance(iss, str) or iss not in rules.issuers:
        raise ClaimRejected("issuer is not allowed", claim="iss")
    if rules.authorized_parties and (
        not isinstance(azp, str) or azp not in rules.authorized_parties
    ):
        raise ClaimRejected("authorized party is not allowed", claim="azp")
    iat, nbf, exp = (_time(claims, name) for name in _TIME_CLAIMS)
    if iat > now + rules.leeway_s:
        raise ClaimRejected("iat is in the future", claim="iat")
    if nbf > now + rules.leeway_s:
        raise ClaimRejected("token is not valid yet", claim="nbf")
    if exp <= iat:
        raise ClaimRejected("exp is not after iat", claim="exp")
    if now - exp > rules.max_expired_s:
        raise TokenExpired("token expired too long ago")
    oiat = iat
    if "oiat" in header:
        oiat = _time(header, "oiat")
        if oiat > iat:
            raise ClaimRejected("oiat is after iat", claim="oiat")
        if oiat > now + rules.leeway_s:
            raise ClaimRejected("oiat is in the future", claim="oiat")
    _check_fva(claims)
    return oiat, iat, exp


def verify_session_token(
    token: str,
    *,
    session_id: str,
    keys: Mapping[str, PublicKey],
    rules: VerifyRules,
    now: int,
) -> VerifiedToken:
    """Return the verified token, or raise a TokenRejected subclass."""
    header_b64, payload_b64, signature_b64 = split_compact(token, max_bytes=rules.max_token_bytes)
    header = parse_json_object(b64url_decode(header_b64, what="header"), what="header")
    alg, kid = _check_header(header)
    key = _key_for(keys, kid, alg)
    signature = b64url_decode(signature_b64, what="signature")
    # Decoded (not parsed) before the signature: it also refuses non-ASCII segments.
    payload = b64url_decode(payload_b64, what="payload")
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    if not key.verify(signature, signing_input):
        raise BadSignature("signature does not verify")
    claims = parse_json_object(payload, what="payload")
    return _verified(header, claims, kid, session_id=session_id, rules=rules, now=now)


def verify_signed_here(
    header_json: bytes,
    claims_json: bytes,
    *,
    session_id: str,
    keys: Mapping[str, PublicKey],
    rules: VerifyRules,
    now: int,
) -> VerifiedToken:
    """Verify a token this edge signed, from the header and claims JSON it signed;
    raise a TokenRejected subclass.

    Only for a token known to be the edge's own, byte for byte (the caller
    remembers them by digest): its signature, encoding and header are not
    checked again (see the module docstring), nor its base64 decoded again.
    """
    header = parse_own_json(header_json)
    kid = header["kid"]
    _key_for(keys, kid, header["alg"])  # a key retired since no longer vouches for it
    claims = parse_own_json(claims_json)
    return _verified(header, claims, kid, session_id=session_id, rules=rules, now=now)


def _key_for(keys: Mapping[str, PublicKey], kid: str, alg: object) -> PublicKey:
    """The key named by `kid`, used only with the algorithm configured for it."""
    key = keys.get(kid)
    if key is None:
        raise UnknownKey("no key with that kid", kid=kid)
    if alg != key.alg:
        raise AlgorithmMismatch("alg does not match the key")
    return key


def _verified(
    header: Mapping[str, Any],
    claims: Mapping[str, Any],
    kid: str,
    *,
    session_id: str,
    rules: VerifyRules,
    now: int,
) -> VerifiedToken:
    oiat, iat, exp = _check_claims(claims, header, session_id=session_id, rules=rules, now=now)
    return VerifiedToken(
        header=header,
        claims=claims,
        kid=kid,
        oiat=oiat,
        iat=iat,
        exp=exp,
        organization_id=organization_of(claims),
        cat=header.get("cat"),
    )
