"""Clone and sign: a Mint decision plus a key and `now` → a compact JWS."""

from __future__ import annotations

from typing import Any

from .claims import clone_claims
from .jws import b64url_encode, encode_json
from .keys import SigningKey
from .policy import Mint

__all__ = ["mint_token", "sign_compact"]


def sign_compact(header: dict[str, Any], claims: dict[str, Any], key: SigningKey) -> str:
    signing_input = f"{b64url_encode(encode_json(header))}.{b64url_encode(encode_json(claims))}"
    signature = key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url_encode(signature)}"


def mint_token(plan: Mint, *, key: SigningKey, now: int, jti: str) -> str:
    """Sign a clone of `plan.record` for `now`; `jti` is fresh randomness from the caller."""
    record = plan.record
    header: dict[str, Any] = {"alg": key.alg, "kid": key.kid, "typ": "JWT"}
    if record.cat is not None:
        header["cat"] = record.cat
    header["oiat"] = record.oiat
    claims = clone_claims(
        record.claims,
        oiat=record.oiat,
        now=now,
        lifetime_s=plan.lifetime_s,
        not_after=plan.not_after,
        jti=jti,
    )
    return sign_compact(header, claims, key)
