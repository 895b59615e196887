"""The error tree of the pure core.

```
MinterError
├── KeyMaterialError          a key file or JWK that cannot be used
└── TokenRejected             a posted token that must not be cloned (.reason)
    ├── MalformedToken        not a compact JWS, bad base64url, bad JSON, too large
    ├── ForbiddenHeader       jku/x5u/x5c/jwk/crit/b64/zip, unknown members or typ
    ├── UnknownKey            kid not in the key set (the caller may refetch JWKS)
    ├── AlgorithmMismatch     alg differs from the one configured for the key
    ├── BadSignature          signature does not verify
    └── ClaimRejected         a claim breaks a rule (.claim)
        └── TokenExpired      expired for longer than max_expired
```

`reason` is a short, stable label (used for metrics and logs); the messages
never hold the token itself.
"""

from __future__ import annotations

__all__ = [
    "AlgorithmMismatch",
    "BadSignature",
    "ClaimRejected",
    "ForbiddenHeader",
    "KeyMaterialError",
    "MalformedToken",
    "MinterError",
    "TokenExpired",
    "TokenRejected",
    "UnknownKey",
]


class MinterError(Exception):
    """Base of every error raised by `minter`."""


class KeyMaterialError(MinterError):
    """A key file or JWK cannot be used (wrong type, unsupported curve, broken)."""


class TokenRejected(MinterError):
    """A posted token that the edge refuses to clone."""

    reason: str = "invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MalformedToken(TokenRejected):
    reason = "malformed"


class ForbiddenHeader(TokenRejected):
    reason = "header"

    def __init__(self, message: str, *, member: str) -> None:
        super().__init__(message)
        self.member = member


class UnknownKey(TokenRejected):
    reason = "unknown_kid"

    def __init__(self, message: str, *, kid: str) -> None:
        super().__init__(message)
        self.kid = kid


class AlgorithmMismatch(TokenRejected):
    reason = "alg"


class BadSignature(TokenRejected):
    reason = "signature"


class ClaimRejected(TokenRejected):
    """A claim breaks a rule; `claim` names it (e.g. "sid", "iss", "oiat")."""

    def __init__(self, message: str, *, claim: str) -> None:
        super().__init__(message)
        self.claim = claim

    @property
    def reason(self) -> str:  # type: ignore[override]
        return f"claim:{self.claim}"


class TokenExpired(ClaimRejected):
    def __init__(self, message: str) -> None:
        super().__init__(message, claim="exp")

    @property
    def reason(self) -> str:  # type: ignore[override]
        return "expired"
