"""minter.policy: the refresh decision table, row by row in the order of DESIGN.md."""

from __future__ import annotations

from typing import Any

import pytest

from minter import (
    BadSignature,
    Bounds,
    ClaimRejected,
    ClaimsRecord,
    KeySet,
    Mint,
    Reason,
    RefreshRequest,
    Refuse,
    SessionState,
    TokenExpired,
    TokenRejected,
    ToOrigin,
    VerifiedToken,
    VerifyRules,
    decide,
    record_of,
    verify_session_token,
)

from .builders import ISSUER, NOW, OMIT, ORG, SID, TokenFactory, record, verified

BOUNDS = Bounds()  # max age 300, outage 3600, lifetime 60, min remaining 10
CLIENT = "client-a"  # the credential `request()` carries; the origin served the session to it
FRESH = NOW - 20  # oiat of a token the origin issued 20 s ago


def request(
    *,
    template: str | None = None,
    force_origin: bool = False,
    organization_id: str | None = ORG,
    token: str | None = "posted.jwt.value",
    client_key: str | None = CLIENT,
) -> RefreshRequest:
    return RefreshRequest(
        session_id=SID,
        template=template,
        force_origin=force_origin,
        organization_id=organization_id,
        token=token,
        client_key=client_key,
    )


def run(
    req: RefreshRequest,
    token: VerifiedToken | TokenRejected | None,
    state: SessionState | None = SessionState(),  # noqa: B008 - frozen, shared on purpose
    *,
    now: int = NOW,
    bounds: Bounds = BOUNDS,
    available: bool = True,
) -> Any:
    return decide(req, token, state, now=now, bounds=bounds, origin_available=available)


def assert_unavailable(decision: object, reason: Reason) -> None:
    assert isinstance(decision, Refuse)
    assert (decision.status, decision.code) == (503, "origin_unavailable")
    assert decision.reason is reason
    assert decision.retry_after_s == 5
    assert decision.message


# 8. the baseline: nothing in the way → mint at the edge ---------------------------------


def test_a_fresh_origin_token_is_minted_at_the_edge() -> None:
    token = verified(oiat=FRESH)
    decision = run(request(), token)
    assert decision == Mint(
        record=record_of(token),
        lifetime_s=60,
        not_after=FRESH + 300,
        outage=False,
        remember=record_of(token),
    )


# 1. template path or force_origin --------------------------------------------------------


def test_a_template_token_goes_to_the_origin() -> None:
    decision = run(request(template="supabase"), verified(oiat=FRESH))
    assert decision == ToOrigin(Reason.TEMPLATE)
    assert decision.label == "template"


def test_a_template_token_is_refused_with_503_when_the_origin_is_down() -> None:
    # Never an edge token: the caller asked for the template's claims.
    decision = run(request(template="supabase"), verified(oiat=FRESH), available=False)
    assert_unavailable(decision, Reason.TEMPLATE)


def test_force_origin_goes_to_the_origin_or_is_refused() -> None:
    forced = request(force_origin=True)
    assert run(forced, verified(oiat=FRESH)) == ToOrigin(Reason.FORCE_ORIGIN)
    assert_unavailable(run(forced, verified(oiat=FRESH), available=False), Reason.FORCE_ORIGIN)


def test_template_wins_over_force_origin_and_every_later_rule() -> None:
    both = request(template="t", force_origin=True, token=None)
    assert run(both, None, None) == ToOrigin(Reason.TEMPLATE)


# 2. no token -----------------------------------------------------------------------------


def test_no_token_goes_to_the_origin() -> None:
    assert run(request(token=None), None) == ToOrigin(Reason.NO_TOKEN)


def test_no_token_with_the_origin_down_asks_for_the_expired_token() -> None:
    decision = run(request(token=None), None, available=False)
    assert isinstance(decision, Refuse)
    assert decision.status == 422
    assert decision.code == "missing_expired_token"
    assert decision.reason is Reason.NO_TOKEN
    assert decision.retry_after_s is None
    assert "expired_token" in decision.message


def test_no_token_comes_before_the_store() -> None:
    assert run(request(token=None), None, None) == ToOrigin(Reason.NO_TOKEN)


# 3. invalid token ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "detail"),
    [
        (BadSignature("x"), "signature"),
        (ClaimRejected("x", claim="sid"), "claim:sid"),
        (TokenExpired("x"), "expired"),
    ],
)
def test_an_invalid_token_goes_to_the_origin_with_its_reason(
    error: TokenRejected, detail: str
) -> None:
    decision = run(request(), error)
    assert decision == ToOrigin(Reason.INVALID, detail)
    assert decision.label == f"invalid:{detail}"


def test_an_invalid_token_with_the_origin_down_is_refused_with_retry_after() -> None:
    assert_unavailable(run(request(), BadSignature("x"), available=False), Reason.INVALID)


def test_an_invalid_token_comes_before_the_store() -> None:
    assert run(request(), BadSignature("x"), None) == ToOrigin(Reason.INVALID, "signature")


# 4. store down, revoked, stale -------------------------------------------------------------


def test_store_unavailable_means_no_edge_mint() -> None:
    assert run(request(), verified(oiat=FRESH), None) == ToOrigin(Reason.STORE)
    assert_unavailable(run(request(), verified(oiat=FRESH), None, available=False), Reason.STORE)


def test_a_revoked_session_goes_to_the_origin() -> None:
    revoked = SessionState(revoked=True, freshest=record(oiat=FRESH))
    assert run(request(), verified(oiat=FRESH), revoked) == ToOrigin(Reason.REVOKED)
    assert_unavailable(
        run(request(), verified(oiat=FRESH), revoked, available=False), Reason.REVOKED
    )


@pytest.mark.parametrize("presented", [None, "client-b"])
def test_another_client_than_the_bound_one_goes_to_the_origin(presented: str | None) -> None:
    bound = SessionState(client_key="client-a")
    elsewhere = request(client_key=presented)
    assert run(elsewhere, verified(oiat=FRESH), bound) == ToOrigin(Reason.CLIENT)
    assert_unavailable(run(elsewhere, verified(oiat=FRESH), bound, available=False), Reason.CLIENT)


def test_the_bound_client_and_an_unbound_session_are_minted() -> None:
    assert isinstance(
        run(request(), verified(oiat=FRESH), SessionState(client_key="client-a")), Mint
    )
    assert isinstance(run(request(client_key=None), verified(oiat=FRESH), SessionState()), Mint)


def test_revoked_comes_before_an_organization_switch() -> None:
    switch = request(organization_id="org_other")
    assert run(switch, verified(oiat=FRESH), SessionState(revoked=True)) == ToOrigin(Reason.REVOKED)


@pytest.mark.parametrize("mark", [FRESH, FRESH + 1, NOW])
def test_claims_at_or_below_the_stale_mark_go_to_the_origin(mark: int) -> None:
    state = SessionState(stale_mark=mark)
    assert run(request(), verified(oiat=FRESH), state) == ToOrigin(Reason.STALE)
    assert_unavailable(run(request(), verified(oiat=FRESH), state, available=False), Reason.STALE)


def test_claims_above_the_stale_mark_are_minted() -> None:
    token = verified(oiat=FRESH)
    decision = run(request(), token, SessionState(stale_mark=FRESH - 1))
    assert isinstance(decision, Mint)
    assert decision.record == record_of(token)


def test_a_stored_record_at_or_below_the_stale_mark_is_never_cloned() -> None:
    posted = verified(oiat=FRESH, iat=NOW - 5, lifetime=30)  # edge-minted, from FRESH claims
    stale_stored = record(oiat=FRESH - 10, origin_lifetime_s=20)
    state = SessionState(stale_mark=FRESH - 10, freshest=stale_stored)
    decision = run(request(), posted, state)
    assert isinstance(decision, Mint)
    assert decision.record == record_of(posted)
    assert decision.remember == record_of(posted)
    assert decision.lifetime_s == 60  # nothing borrowed from the stale record


# 5. organization ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "token_org"),
    [
        pytest.param("org_other", ORG, id="other-org"),
        pytest.param("", ORG, id="personal-vs-org"),
        pytest.param(ORG, "", id="org-vs-personal"),
        pytest.param(ORG.upper(), ORG, id="case"),
    ],
)
def test_an_organization_switch_goes_to_the_origin(requested: str, token_org: str) -> None:
    token = verified(oiat=FRESH, org=token_org)
    assert token.organization_id == token_org
    decision = run(request(organization_id=requested), token)
    assert decision == ToOrigin(Reason.ORGANIZATION)
    assert_unavailable(
        run(request(organization_id=requested), token, available=False), Reason.ORGANIZATION
    )


@pytest.mark.parametrize(
    ("requested", "token_org"), [(ORG, ORG), ("", ""), (None, ORG), (None, "")]
)
def test_the_same_organization_or_none_sent_is_minted(
    requested: str | None, token_org: str
) -> None:
    decision = run(request(organization_id=requested), verified(oiat=FRESH, org=token_org))
    assert isinstance(decision, Mint)
    assert decision.record.claims.get("o", {}).get("id", "") == token_org


def test_a_v1_org_id_claim_is_compared_too(make_token: TokenFactory, keyset: KeySet) -> None:
    rules = VerifyRules(issuers=frozenset({ISSUER}))
    token = verify_session_token(
        make_token(o=OMIT, v=OMIT, org_id="org_v1"),
        session_id=SID,
        keys=keyset,
        rules=rules,
        now=NOW,
    )
    assert isinstance(run(request(organization_id="org_v1"), token), Mint)
    assert run(request(organization_id=ORG), token) == ToOrigin(Reason.ORGANIZATION)


# 6. age ------------------------------------------------------------------------------------


def test_the_age_bound_is_strict() -> None:
    # With no margin, exactly the bound still mints and one second more does not.
    no_margin = Bounds(min_remaining_s=0)
    at_bound = run(request(), verified(oiat=NOW - 300), bounds=no_margin)
    assert isinstance(at_bound, Mint)
    assert at_bound.not_after == NOW
    over = run(request(), verified(oiat=NOW - 301), bounds=no_margin)
    assert over == ToOrigin(Reason.TOO_OLD)


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (301, ToOrigin(Reason.TOO_OLD)),
        (300, ToOrigin(Reason.NEAR_BOUND)),
        (291, ToOrigin(Reason.NEAR_BOUND)),
        (290, None),  # exactly 10 s left: mint
        (0, None),
    ],
)
def test_too_old_and_near_the_bound_go_to_the_origin(age: int, expected: ToOrigin | None) -> None:
    decision = run(request(), verified(oiat=NOW - age))
    if expected is None:
        assert isinstance(decision, Mint)
        assert decision.not_after == NOW - age + 300
        assert decision.not_after - NOW >= BOUNDS.min_remaining_s
    else:
        assert decision == expected


def test_the_outage_bound_applies_while_the_origin_is_down() -> None:
    old = verified(oiat=NOW - 1000, iat=NOW - 10)
    assert run(request(), old) == ToOrigin(Reason.TOO_OLD)
    decision = run(request(), old, available=False)
    assert decision == Mint(
        record=record_of(old),
        lifetime_s=60,
        not_after=NOW - 1000 + 3600,
        outage=True,
        remember=record_of(old),
    )


def test_beyond_the_outage_bound_is_refused_while_the_origin_is_down() -> None:
    assert_unavailable(run(request(), verified(oiat=NOW - 3601), available=False), Reason.TOO_OLD)
    assert_unavailable(
        run(request(), verified(oiat=NOW - 3595), available=False), Reason.NEAR_BOUND
    )
    assert isinstance(run(request(), verified(oiat=NOW - 3590), available=False), Mint)


def test_a_fresh_token_minted_during_an_outage_is_flagged() -> None:
    decision = run(request(), verified(oiat=FRESH), available=False)
    assert isinstance(decision, Mint)
    assert decision.outage is True
    assert decision.not_after == FRESH + 3600


def test_a_token_expired_past_max_expired_goes_to_the_origin_unless_it_is_down() -> None:
    """A laptop that slept, an app back from the background: in normal times the
    origin answers it; in an outage the edge is all there is (the claims bound holds)."""
    slept = verified(oiat=NOW - 700, lifetime=60)  # expired 640 s ago
    assert run(request(), slept) == ToOrigin(Reason.INVALID, "expired")
    decision = run(request(), slept, available=False)
    assert isinstance(decision, Mint)
    assert decision.outage is True
    assert decision.not_after == NOW - 700 + 3600
    just = verified(oiat=NOW - 360, lifetime=60)  # expired 300 s ago: still in the window
    assert isinstance(
        run(request(), just, SessionState(client_key=CLIENT, freshest=record(oiat=NOW - 100))), Mint
    )
    past = verified(oiat=NOW - 361, lifetime=60)  # expired 301 s ago: past it
    state = SessionState(client_key=CLIENT, freshest=record(oiat=NOW - 100))
    assert run(request(), past, state) == ToOrigin(Reason.INVALID, "expired")


# 7. monotonic freshness --------------------------------------------------------------------


def test_a_fresher_stored_record_is_cloned_instead_of_the_posted_token() -> None:
    stored = record(oiat=FRESH + 10, origin_lifetime_s=45)
    decision = run(
        request(), verified(oiat=FRESH), SessionState(client_key=CLIENT, freshest=stored)
    )
    assert decision == Mint(
        record=stored, lifetime_s=45, not_after=FRESH + 10 + 300, outage=False, remember=None
    )


def test_a_clone_of_stored_claims_keeps_the_posting_apps_azp() -> None:
    """Two apps on one session: the stored claims came from the other app's refresh."""
    stored = record(oiat=FRESH + 10)
    stored_claims = {**stored.claims, "azp": "https://dashboard.example.test"}
    other_app = ClaimsRecord(stored.oiat, stored.cat, stored_claims, stored.origin_lifetime_s)
    token = verified(oiat=FRESH)
    assert token.claims["azp"] != stored_claims["azp"]
    decision = run(request(), token, SessionState(client_key=CLIENT, freshest=other_app))
    assert isinstance(decision, Mint)
    assert decision.record.claims["azp"] == token.claims["azp"]
    assert {**decision.record.claims, "azp": "x"} == {**stored_claims, "azp": "x"}
    assert other_app.claims["azp"] == "https://dashboard.example.test", "the store's untouched"
    no_azp = dict(token.claims)
    del no_azp["azp"]
    decision = run(
        request(),
        verified(oiat=FRESH, claims=no_azp),
        SessionState(client_key=CLIENT, freshest=other_app),
    )
    assert isinstance(decision, Mint)
    assert "azp" not in decision.record.claims


def test_fresher_stored_claims_for_a_session_bound_to_no_client_need_the_origin() -> None:
    """Else a stolen older token would ride on the victim's later refreshes."""
    stored = record(oiat=FRESH + 10)
    unbound = SessionState(freshest=stored)
    assert run(request(), verified(oiat=FRESH), unbound) == ToOrigin(Reason.UNBOUND)
    assert_unavailable(
        run(request(), verified(oiat=FRESH), unbound, available=False), Reason.UNBOUND
    )
    posted = verified(oiat=FRESH + 10)  # as fresh as the stored claims: its own are cloned
    assert isinstance(run(request(), posted, unbound), Mint)


def test_a_posted_token_fresher_than_the_store_is_remembered() -> None:
    token = verified(oiat=FRESH)
    decision = run(
        request(), token, SessionState(client_key=CLIENT, freshest=record(oiat=FRESH - 50))
    )
    assert isinstance(decision, Mint)
    assert decision.record == record_of(token)
    assert decision.remember == record_of(token)


def test_a_posted_token_as_fresh_as_the_store_is_not_remembered_again() -> None:
    token = verified(oiat=FRESH)
    decision = run(request(), token, SessionState(client_key=CLIENT, freshest=record(oiat=FRESH)))
    assert isinstance(decision, Mint)
    assert decision.record == record_of(token)
    assert decision.remember is None


def test_the_age_bound_is_checked_on_the_fresher_stored_claims() -> None:
    # The posted claims are too old, the stored ones are not: the stored ones are minted.
    stored = record(oiat=NOW - 100)
    posted = verified(oiat=NOW - 400, iat=NOW - 10)  # a clone of claims 400 s old
    decision = run(request(), posted, SessionState(client_key=CLIENT, freshest=stored))
    assert isinstance(decision, Mint)
    assert decision.record is stored
    assert decision.not_after == NOW - 100 + 300


def test_a_fresher_stored_record_near_the_bound_goes_to_the_origin() -> None:
    stored = record(oiat=NOW - 295)
    decision = run(
        request(), verified(oiat=NOW - 299), SessionState(client_key=CLIENT, freshest=stored)
    )
    assert decision == ToOrigin(Reason.NEAR_BOUND)


# lifetime ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("origin_lifetime", "expected"), [(30, 30), (60, 60), (120, 60)])
def test_lifetime_is_the_shorter_of_the_cap_and_the_origin_tokens(
    origin_lifetime: int, expected: int
) -> None:
    decision = run(request(), verified(oiat=FRESH, lifetime=origin_lifetime))
    assert isinstance(decision, Mint)
    assert decision.lifetime_s == expected


def test_an_edge_minted_token_never_shrinks_the_lifetime() -> None:
    # An edge token cut short by not_after (25 s) must not make the next one shorter.
    edge = verified(oiat=FRESH, iat=NOW - 2, lifetime=25)
    assert edge.from_origin is False
    decision = run(request(), edge)
    assert isinstance(decision, Mint)
    assert decision.lifetime_s == 60
    assert decision.record.origin_lifetime_s is None


def test_an_edge_minted_token_borrows_the_stored_origin_lifetime() -> None:
    edge = verified(oiat=FRESH, iat=NOW - 2, lifetime=25)
    stored = record(oiat=FRESH, origin_lifetime_s=40)
    decision = run(request(), edge, SessionState(client_key=CLIENT, freshest=stored))
    assert isinstance(decision, Mint)
    assert decision.lifetime_s == 40
    assert decision.remember is None


def test_an_edge_clone_from_the_second_of_its_claims_does_not_set_the_lifetime() -> None:
    """A clone made in the second its claims were assembled has `iat == oiat`, as
    an origin token has; cut short by `not_after` (a bound below the lifetime),
    it must not pass for the origin's lifetime while the store knows that one."""
    same_second = verified(oiat=FRESH, lifetime=30)
    assert same_second.from_origin  # it looks like the origin's own token
    stored = record(oiat=FRESH, origin_lifetime_s=60)
    decision = run(request(), same_second, SessionState(client_key=CLIENT, freshest=stored))
    assert isinstance(decision, Mint)
    assert decision.lifetime_s == 60


def test_the_lifetime_cap_is_configurable() -> None:
    decision = run(request(), verified(oiat=FRESH), bounds=Bounds(lifetime_s=20))
    assert isinstance(decision, Mint)
    assert decision.lifetime_s == 20


# every ToOrigin becomes a Refuse while the origin is down ------------------------------------


@pytest.mark.parametrize(
    ("req", "token", "state"),
    [
        (request(template="t"), verified(oiat=FRESH), SessionState()),
        (request(force_origin=True), verified(oiat=FRESH), SessionState()),
        (request(), BadSignature("x"), SessionState()),
        (request(), verified(oiat=FRESH), None),
        (request(), verified(oiat=FRESH), SessionState(revoked=True)),
        (request(), verified(oiat=FRESH), SessionState(stale_mark=FRESH)),
        (request(organization_id=""), verified(oiat=FRESH), SessionState()),
        (request(), verified(oiat=NOW - 4000, iat=NOW - 10), SessionState()),
    ],
)
def test_no_edge_token_and_no_401_when_the_origin_is_down(
    req: RefreshRequest, token: VerifiedToken | TokenRejected, state: SessionState | None
) -> None:
    up = run(req, token, state)
    down = run(req, token, state, available=False)
    assert isinstance(up, ToOrigin)
    assert isinstance(down, Refuse)
    assert down.status == 503
    assert down.retry_after_s == 5
    assert down.reason is up.reason
