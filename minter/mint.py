"""Clone and sign: a Mint decision plus a key and `now` → a compact JWS.

Two steps, so that a caller can tell identical clones apart before paying
for a signature: `prepare_clone` builds the header and claims (everything
but the fresh `jti`), `sign_clone` fills in the `jti` and signs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .claims import clone_claims
from .jws import b64url_encode, encode_json
from .keys import SigningKey
from .policy import Mint

__all__ = ["Clone", "mint_token", "prepare_clone", "sign_clone", "sign_compact", "sign_encoded"]


def sign_compact(header: dict[str, Any], claims: dict[str, Any], key: SigningKey) -> str:
    return sign_encoded(encode_json(header), encode_json(claims), key)


def sign_encoded(header_json: bytes, claims_json: bytes, key: SigningKey) -> str:
    """Sign a header and claims already encoded by `jws.encode_json`."""
    signing_input = f"{b64url_encode(header_json)}.{b64url_encode(claims_json)}"
    signature = key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url_encode(signature)}"


@dataclass(frozen=True, slots=True, init=False)
class Clone:
    """A clone's header and claims, all but the `jti` (filled in when signing)."""

    header: dict[str, Any]
    claims: dict[str, Any]
    needs_jti: bool

    # Written out (`init=False`): mypyc compiles it, a generated one stays interpreted.
    def __init__(self, header: dict[str, Any], claims: dict[str, Any], needs_jti: bool) -> None:
        object.__setattr__(self, "header", header)
        object.__setattr__(self, "claims", claims)
        object.__setattr__(self, "needs_jti", needs_jti)

    def claims_with(self, *, jti: str) -> dict[str, Any]:
        """The claims to sign, with the fresh `jti` when the source had one."""
        return {**self.claims, "jti": jti} if self.needs_jti else self.claims

    def identity(self) -> bytes:
        """Equal for two clones that differ at most in their `jti`."""
        return encode_json({"h": self.header, "c": self.claims})


def prepare_clone(plan: Mint, *, key: SigningKey, now: int) -> Clone:
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
        jti="",
    )
    return Clone(header=header, claims=claims, needs_jti="jti" in claims)


def sign_clone(clone: Clone, key: SigningKey, *, jti: str) -> str:
    return sign_compact(clone.header, clone.claims_with(jti=jti), key)


def mint_token(plan: Mint, *, key: SigningKey, now: int, jti: str) -> str:
    """Sign a clone of `plan.record` for `now`; `jti` is fresh randomness from the caller."""
    return sign_clone(prepare_clone(plan, key=key, now=now), key, jti=jti)
