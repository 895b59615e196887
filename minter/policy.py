"""The refresh decision: request facts in, Mint | ToOrigin | Refuse out.

The rules, in order (DESIGN.md, "The decision"):

1. template path or force_origin  → origin        (origin down: 503)
2. no token nor expired_token     → origin        (origin down: 422 missing_expired_token)
3. token fails verification       → origin        (origin down: 503)
   (expired longer ago than max_expired_s: the origin; while the origin is
   down the window is wider, outage_max_expired_s, verified by the caller)
4. session revoked or marked stale,
   or the store cannot tell,
   or another client credential    → origin        (origin down: 503)
5. organization_id differs        → origin        (origin down: 503)
6. claims too old                 → origin        (origin down: the outage bound applies)
7. a fresher record is stored     → clone it, when within the bound and the
                                     session is bound to this client; else origin
8. otherwise                      → mint at the edge

Rules 6 and 7 look at the claims that would be minted: the fresher of the
posted token and the stored record, so the age bound is checked on what
actually leaves the edge, and no token older than one already issued for
that session and organization is ever minted. A mint whose `exp` would fall
within `min_remaining_s` of `oiat + bound` goes to the origin instead.

Stored claims are kept per session and organization, whichever app's
request brought them, but `azp` names the app a token was issued to (the
origin sets it from the request's `Origin`): a clone of stored claims
keeps the posted token's `azp`, so several apps sharing one session (two
subdomains on one instance) never receive each other's.

Rule 4's client check binds edge mints to the client the origin last
served the session to (a hash of its `__client` cookie or native
`authorization` header): a token lifted from a page and replayed from
elsewhere is sent to the origin, which checks the credential, instead of
being cloned, so it dies at its own `oiat + max_claims_age`. A session the
edge has not yet seen at the origin is unbound.

`origin_available=False` asks what to do when the origin cannot answer
(breaker open, or it just failed): every ToOrigin becomes a Refuse or, where
the claims allow it, a Mint under the outage bound.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from .claims import ClaimsRecord, record_of
from .errors import TokenRejected
from .verify import VerifiedToken

__all__ = [
    "Bounds",
    "Decision",
    "Mint",
    "Reason",
    "RefreshRequest",
    "Refuse",
    "SessionState",
    "ToOrigin",
    "decide",
]


class Reason(StrEnum):
    TEMPLATE = "template"
    FORCE_ORIGIN = "force_origin"
    NO_TOKEN = "no_token"  # noqa: S105 - a reason label, not a secret
    INVALID = "invalid"
    REVOKED = "revoked"
    STORE = "store"
    CLIENT = "client"
    UNBOUND = "unbound"
    STALE = "stale"
    ORGANIZATION = "org"
    TOO_OLD = "too_old"
    NEAR_BOUND = "near_bound"


@dataclass(frozen=True, slots=True, init=False)
class RefreshRequest:
    session_id: str
    template: str | None
    force_origin: bool
    organization_id: str | None  # None: not sent (keep the token's organization)
    token: str | None  # `token`, else `expired_token`
    client_key: str | None = None  # hash of the client credential (cookie or native header)

    # Written out (`init=False`): mypyc compiles it, a generated one stays interpreted.
    def __init__(
        self,
        session_id: str,
        template: str | None,
        force_origin: bool,
        organization_id: str | None,
        token: str | None,
        client_key: str | None = None,
    ) -> None:
        object.__setattr__(self, "session_id", session_id)
        object.__setattr__(self, "template", template)
        object.__setattr__(self, "force_origin", force_origin)
        object.__setattr__(self, "organization_id", organization_id)
        object.__setattr__(self, "token", token)
        object.__setattr__(self, "client_key", client_key)


@dataclass(frozen=True, slots=True)
class Bounds:
    max_claims_age_s: int = 300
    outage_max_claims_age_s: int = 3600
    lifetime_s: int = 60
    min_remaining_s: int = 10
    max_expired_s: int = 300  # outside an outage; verification admits the outage window


@dataclass(frozen=True, slots=True, init=False)
class SessionState:
    """What the store knows of a session and organization."""

    revoked: bool = False
    stale_mark: int | None = None  # claims with oiat <= mark are stale
    freshest: ClaimsRecord | None = None
    client_key: str | None = None  # the client credential the origin last served it to

    # Written out (`init=False`): mypyc compiles it, a generated one stays interpreted.
    def __init__(
        self,
        revoked: bool = False,
        stale_mark: int | None = None,
        freshest: ClaimsRecord | None = None,
        client_key: str | None = None,
    ) -> None:
        object.__setattr__(self, "revoked", revoked)
        object.__setattr__(self, "stale_mark", stale_mark)
        object.__setattr__(self, "freshest", freshest)
        object.__setattr__(self, "client_key", client_key)


@dataclass(frozen=True, slots=True, init=False)
class Mint:
    record: ClaimsRecord  # the claims to clone
    lifetime_s: int
    not_after: int  # oiat + bound: no exp past it
    outage: bool
    remember: ClaimsRecord | None  # the posted claims, when fresher than the stored ones

    # Written out (`init=False`): mypyc compiles it, a generated one stays interpreted.
    def __init__(
        self,
        record: ClaimsRecord,
        lifetime_s: int,
        not_after: int,
        outage: bool,
        remember: ClaimsRecord | None,
    ) -> None:
        object.__setattr__(self, "record", record)
        object.__setattr__(self, "lifetime_s", lifetime_s)
        object.__setattr__(self, "not_after", not_after)
        object.__setattr__(self, "outage", outage)
        object.__setattr__(self, "remember", remember)


@dataclass(frozen=True, slots=True)
class ToOrigin:
    reason: Reason
    detail: str = ""

    @property
    def label(self) -> str:
        return f"{self.reason}:{self.detail}" if self.detail else str(self.reason)


@dataclass(frozen=True, slots=True)
class Refuse:
    status: int
    code: str
    message: str
    reason: Reason
    retry_after_s: int | None = None


Decision = Mint | ToOrigin | Refuse

_UNAVAILABLE = "origin_unavailable"


def _unavailable(reason: Reason, message: str) -> Refuse:
    return Refuse(503, _UNAVAILABLE, message, reason, retry_after_s=5)


def _route(reason: Reason, available: bool, message: str, detail: str = "") -> Decision:
    return ToOrigin(reason, detail) if available else _unavailable(reason, message)


def decide(
    request: RefreshRequest,
    verified: VerifiedToken | TokenRejected | None,
    state: SessionState | None,
    *,
    now: int,
    bounds: Bounds,
    origin_available: bool = True,
) -> Decision:
    """Decide one refresh.

    `verified` is None when no token was posted; `state` is None when the
    store could not be read (then revocations cannot be seen: no edge mint).
    """
    avail = origin_available
    if request.template is not None:
        return _route(Reason.TEMPLATE, avail, "template tokens need the origin")
    if request.force_origin:
        return _route(Reason.FORCE_ORIGIN, avail, "a fresh token needs the origin")
    if request.token is None or verified is None:
        if avail:
            return ToOrigin(Reason.NO_TOKEN)
        return Refuse(
            422,
            "missing_expired_token",
            "retry with the last active token as expired_token",
            Reason.NO_TOKEN,
        )
    if isinstance(verified, TokenRejected):
        return _route(Reason.INVALID, avail, "the posted token was not accepted", verified.reason)
    if avail and now - verified.exp > bounds.max_expired_s:
        return ToOrigin(Reason.INVALID, "expired")  # only an outage reaches further back
    if state is None:
        return _route(Reason.STORE, avail, "the session store is unavailable")
    if state.revoked:
        return _route(Reason.REVOKED, avail, "this session needs the origin")
    if state.stale_mark is not None and verified.oiat <= state.stale_mark:
        return _route(Reason.STALE, avail, "these claims changed at the origin")
    if state.client_key is not None and request.client_key != state.client_key:
        return _route(Reason.CLIENT, avail, "this client needs the origin")
    wanted_org = request.organization_id
    if wanted_org is not None and wanted_org != verified.organization_id:
        return _route(Reason.ORGANIZATION, avail, "switching organization needs the origin")
    return _plan_mint(verified, state, now=now, bounds=bounds, available=avail)


def _plan_mint(
    verified: VerifiedToken,
    state: SessionState,
    *,
    now: int,
    bounds: Bounds,
    available: bool,
) -> Decision:
    stored = state.freshest
    if stored is not None and state.stale_mark is not None and stored.oiat <= state.stale_mark:
        stored = None
    posted = record_of(verified)
    if stored is not None and stored.oiat > posted.oiat:
        if state.client_key is None:
            # Fresher claims, and no client credential the origin vouched for here:
            # handed out, they would let an older (perhaps stolen) token ride on
            # the session's later refreshes. The origin checks the credential.
            return _route(Reason.UNBOUND, available, "fresher claims need the origin")
        record, remember = _for_the_posting_app(stored, verified), None
    else:
        record, remember = posted, posted if stored is None or posted.oiat > stored.oiat else None
    bound = bounds.max_claims_age_s if available else bounds.outage_max_claims_age_s
    not_after = record.oiat + bound
    if now - record.oiat > bound:
        return _route(Reason.TOO_OLD, available, "claims are older than the outage bound")
    if not_after - now < bounds.min_remaining_s:
        return _route(Reason.NEAR_BOUND, available, "claims are about to reach the bound")
    # The store's lifetime for these claims came from the origin's own answer; a
    # posted token passes for the origin's by `iat == oiat` alone, as does an
    # edge clone made in the second its claims were assembled (perhaps cut
    # short by `not_after`), so the store's is preferred when it has one.
    origin_lifetime = record.origin_lifetime_s
    if stored is not None and stored.oiat == record.oiat and stored.origin_lifetime_s is not None:
        origin_lifetime = stored.origin_lifetime_s
    lifetime = bounds.lifetime_s
    if origin_lifetime is not None:
        lifetime = min(lifetime, origin_lifetime)
    return Mint(
        record=record,
        lifetime_s=lifetime,
        not_after=not_after,
        outage=not available,
        remember=remember,
    )


def _for_the_posting_app(stored: ClaimsRecord, verified: VerifiedToken) -> ClaimsRecord:
    """The stored claims with the posted token's `azp` (or none, when it had none)."""
    azp = verified.claims.get("azp")
    if stored.claims.get("azp") == azp:
        return stored
    claims = dict(stored.claims)
    if azp is None:
        del claims["azp"]
    else:
        claims["azp"] = azp
    return replace(stored, claims=claims)
