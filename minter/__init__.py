"""session-minter's pure core: verify a posted session token, decide, clone, sign.

No I/O, no environment, no wall clock: callers pass `now` (whole Unix
seconds) and the randomness (`jti`).
"""

from .claims import ClaimsRecord, age_fva, clone_claims, record_of
from .errors import (
    AlgorithmMismatch,
    BadSignature,
    ClaimRejected,
    ForbiddenHeader,
    KeyMaterialError,
    MalformedToken,
    MinterError,
    TokenExpired,
    TokenRejected,
    UnknownKey,
)
from .keys import (
    KeySet,
    PublicKey,
    SigningKey,
    load_private_key,
    load_public_jwk,
    load_public_jwks,
    thumbprint,
)
from .mint import Clone, mint_token, prepare_clone, sign_clone, sign_compact, sign_encoded
from .policy import (
    Bounds,
    Decision,
    Mint,
    Reason,
    RefreshRequest,
    Refuse,
    SessionState,
    ToOrigin,
    decide,
)
from .verify import (
    IGNORED_CAT,
    MAX_TOKEN_BYTES,
    SESSION_TOKEN_CAT,
    VerifiedToken,
    VerifyRules,
    organization_of,
    verify_session_token,
    verify_signed_here,
)

__all__ = [
    "IGNORED_CAT",
    "MAX_TOKEN_BYTES",
    "SESSION_TOKEN_CAT",
    "AlgorithmMismatch",
    "BadSignature",
    "Bounds",
    "ClaimRejected",
    "ClaimsRecord",
    "Clone",
    "Decision",
    "ForbiddenHeader",
    "KeyMaterialError",
    "KeySet",
    "MalformedToken",
    "Mint",
    "MinterError",
    "PublicKey",
    "Reason",
    "RefreshRequest",
    "Refuse",
    "SessionState",
    "SigningKey",
    "ToOrigin",
    "TokenExpired",
    "TokenRejected",
    "UnknownKey",
    "VerifiedToken",
    "VerifyRules",
    "age_fva",
    "clone_claims",
    "decide",
    "load_private_key",
    "load_public_jwk",
    "load_public_jwks",
    "mint_token",
    "organization_of",
    "prepare_clone",
    "record_of",
    "sign_clone",
    "sign_compact",
    "sign_encoded",
    "thumbprint",
    "verify_session_token",
    "verify_signed_here",
]
