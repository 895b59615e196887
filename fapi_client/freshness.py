"""Which of two session tokens is fresher, the way clerk-js picks (`pickFreshestJwt`).

Higher header `oiat` wins; a token without `oiat` loses to one with it; then
higher `iat`; on a full tie the newer answer wins. An empty token is never a
candidate.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

__all__ = ["TokenBox", "TokenFacts", "facts_of"]


@dataclass(frozen=True, slots=True)
class TokenFacts:
    jwt: str
    oiat: int | None
    iat: int
    exp: int
    session_id: str
    organization_id: str

    def fresher_than(self, other: TokenFacts | None) -> bool:
        """At least as fresh as `other` (a full tie counts: the newer answer wins)."""
        if other is None:
            return True
        if (self.oiat is None) != (other.oiat is None):
            return self.oiat is not None
        if self.oiat is not None and other.oiat is not None and self.oiat != other.oiat:
            return self.oiat > other.oiat
        return self.iat >= other.iat


def _segment(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def facts_of(jwt: str) -> TokenFacts | None:
    """Decode (without verifying, as a client does) what the freshness rules need."""
    try:
        header_b64, payload_b64, _ = jwt.split(".")
        header, claims = _segment(header_b64), _segment(payload_b64)
        org = claims.get("o") or {}
        oiat = header.get("oiat")
        return TokenFacts(
            jwt=jwt,
            oiat=oiat if isinstance(oiat, int) else None,
            iat=int(claims["iat"]),
            exp=int(claims["exp"]),
            session_id=str(claims["sid"]),
            organization_id=str(org.get("id") or claims.get("org_id") or ""),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


class TokenBox:
    """The freshest token per organization, shared by every tab of one session."""

    def __init__(self) -> None:
        self._tokens: dict[str, TokenFacts] = {}
        self.rejected_staler = 0

    def get(self, organization_id: str) -> TokenFacts | None:
        return self._tokens.get(organization_id)

    @property
    def last_active(self) -> TokenFacts | None:
        """The most recently issued token of any organization."""
        return max(self._tokens.values(), key=lambda facts: facts.iat, default=None)

    def offer(self, jwt: str) -> bool:
        """Keep `jwt` if it is a token fresher than the one held; False when refused."""
        facts = facts_of(jwt) if jwt else None
        if facts is None:
            return False
        if not facts.fresher_than(self._tokens.get(facts.organization_id)):
            self.rejected_staler += 1
            return False
        self._tokens[facts.organization_id] = facts
        return True
