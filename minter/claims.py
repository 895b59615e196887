"""What a clone copies, re-stamps and ages.

Every claim of the source is copied; then `iat = now`, `nbf = now - 10`,
`exp = min(now + lifetime, not_after)`, a fresh `jti` when the source had
one, and `fva` aged by the whole minutes that passed since `oiat` and that
the source had not counted yet, so a clone of a clone is not aged twice.
A clock behind the one that assembled the claims (`now < oiat`, within the
verifier's leeway) clones at `oiat`: a clone is never dated before its
claims. The source mapping is never mutated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .verify import VerifiedToken

__all__ = ["NBF_SKEW_S", "ClaimsRecord", "age_fva", "clone_claims", "record_of"]

NBF_SKEW_S = 10


@dataclass(frozen=True, slots=True, init=False)
class ClaimsRecord:
    """Claims as last assembled by the origin (or the freshest seen), per session and org.

    `origin_lifetime_s` is the lifetime of the origin token they came from,
    None when unknown (they came from an edge-minted token).
    """

    oiat: int
    cat: str | None
    claims: Mapping[str, Any] = field(repr=False)
    origin_lifetime_s: int | None

    # Written out (`init=False`): mypyc compiles it, a generated one stays interpreted.
    def __init__(
        self, oiat: int, cat: str | None, claims: Mapping[str, Any], origin_lifetime_s: int | None
    ) -> None:
        object.__setattr__(self, "oiat", oiat)
        object.__setattr__(self, "cat", cat)
        object.__setattr__(self, "claims", claims)
        object.__setattr__(self, "origin_lifetime_s", origin_lifetime_s)


def record_of(token: VerifiedToken) -> ClaimsRecord:
    """The record to keep for a verified token (from the origin or posted)."""
    return ClaimsRecord(
        oiat=token.oiat,
        cat=token.cat,
        claims=token.claims,
        origin_lifetime_s=token.lifetime_s if token.from_origin else None,
    )


def age_fva(fva: object, *, source_iat: int, oiat: int, now: int) -> object:
    """Age `fva` (minutes since first and second factor; -1 = never)."""
    if not isinstance(fva, list):
        return fva
    # Never negative: a clock that is behind the source's iat must not make a
    # factor younger, nor turn a verified factor into -1 ("never").
    minutes = max(0, (now - oiat) // 60 - (source_iat - oiat) // 60)
    return [item if item == -1 else item + minutes for item in fva]


def clone_claims(
    source: Mapping[str, Any],
    *,
    oiat: int,
    now: int,
    lifetime_s: int,
    not_after: int,
    jti: str,
) -> dict[str, Any]:
    """A new claims dict: the source's, re-stamped for `now`."""
    # Dated at now, the clone would carry iat < oiat (refused by the verifier)
    # and age fva backwards by a minute (0 would become -1, "never").
    now = max(now, oiat)
    claims = dict(source)
    source_iat = source["iat"]
    claims["iat"] = now
    claims["nbf"] = now - NBF_SKEW_S
    claims["exp"] = min(now + lifetime_s, not_after)
    if "jti" in source:
        claims["jti"] = jti
    if "fva" in source:
        claims["fva"] = age_fva(source["fva"], source_iat=source_iat, oiat=oiat, now=now)
    return claims
