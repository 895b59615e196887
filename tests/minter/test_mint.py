"""minter.mint: clone and sign, checked end to end (verify → decide → mint → verify)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from minter import (
    SESSION_TOKEN_CAT,
    Bounds,
    ClaimsRecord,
    KeySet,
    Mint,
    RefreshRequest,
    SessionState,
    SigningKey,
    VerifiedToken,
    VerifyRules,
    decide,
    mint_token,
    sign_compact,
    verify_session_token,
)
from minter.jws import b64url_decode, parse_json_object

from .builders import (
    ISSUER,
    NOW,
    OMIT,
    RESTAMPED,
    SID,
    TokenFactory,
    custom_claims,
    fva_values,
    jwcrypto_verify,
    record,
    session_claims,
)

BOUNDS = Bounds()


def header_of(token: str) -> dict[str, Any]:
    return parse_json_object(b64url_decode(token.split(".")[0], what="h"), what="h")


def verify_at(token: str, keys: KeySet, now: int) -> VerifiedToken:
    rules = VerifyRules(issuers=frozenset({ISSUER}))
    return verify_session_token(token, session_id=SID, keys=keys, rules=rules, now=now)


def plan(source: ClaimsRecord, *, lifetime: int = 60, not_after: int = NOW + 300) -> Mint:
    return Mint(
        record=source, lifetime_s=lifetime, not_after=not_after, outage=False, remember=None
    )


REQUEST = RefreshRequest(
    session_id=SID,
    template=None,
    force_origin=False,
    organization_id=None,
    token="posted",
    client_key="client-a",
)


# header and claims -----------------------------------------------------------------------


def test_minted_header_has_the_signing_keys_alg_and_kid(
    signing_key: SigningKey, keyset: KeySet
) -> None:
    source = record(oiat=NOW - 20)
    token = mint_token(plan(source), key=signing_key, now=NOW, jti="fresh")
    assert header_of(token) == {
        "alg": "RS256",
        "kid": signing_key.kid,
        "typ": "JWT",
        "cat": SESSION_TOKEN_CAT,
        "oiat": NOW - 20,
    }
    minted = verify_at(token, keyset, NOW)
    assert minted.oiat == NOW - 20
    assert minted.from_origin is False
    assert minted.claims["jti"] == "fresh"
    assert (minted.iat, minted.claims["nbf"], minted.exp) == (NOW, NOW - 10, NOW + 60)


def test_minted_header_leaves_out_an_absent_cat(signing_key: SigningKey) -> None:
    source = ClaimsRecord(
        oiat=NOW - 20, cat=None, claims=session_claims(NOW - 20), origin_lifetime_s=60
    )
    assert "cat" not in header_of(mint_token(plan(source), key=signing_key, now=NOW, jti="j"))


def test_oiat_survives_a_chain_of_clones(signing_key: SigningKey, keyset: KeySet) -> None:
    token = mint_token(plan(record(oiat=NOW - 100)), key=signing_key, now=NOW - 60, jti="a")
    for now in (NOW - 30, NOW):
        posted = verify_at(token, keyset, now)
        decision = decide(REQUEST, posted, SessionState(), now=now, bounds=BOUNDS)
        assert isinstance(decision, Mint)
        token = mint_token(decision, key=signing_key, now=now, jti="b")
    assert header_of(token)["oiat"] == NOW - 100
    assert verify_at(token, keyset, NOW).lifetime_s == 60


def test_exp_is_capped_by_not_after(signing_key: SigningKey, keyset: KeySet) -> None:
    token = mint_token(
        plan(record(oiat=NOW - 280), not_after=NOW + 20), key=signing_key, now=NOW, jti="j"
    )
    assert verify_at(token, keyset, NOW).exp == NOW + 20


@pytest.mark.parametrize("key_fixture", ["signing_key", "ec_signing_key", "ed_signing_key"])
def test_minted_tokens_verify_with_jwcrypto_and_pyjwt(
    key_fixture: str, request: pytest.FixtureRequest
) -> None:
    key: SigningKey = request.getfixturevalue(key_fixture)
    token = mint_token(plan(record(oiat=NOW - 20)), key=key, now=NOW, jti="j")
    assert jwcrypto_verify(token, key.public.jwk())["alg"] == key.alg
    decoded = jwt.decode(
        token,
        key.public.key,
        algorithms=[key.alg],
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    assert decoded["sid"] == SID
    assert decoded["iat"] == NOW
    assert verify_at(token, KeySet([key.public]), NOW).kid == key.kid


def test_sign_compact_matches_pyjwt_for_the_same_input(
    signing_key: SigningKey, make_token: TokenFactory, keyset: KeySet
) -> None:
    # RS256 is deterministic: the same header and claims bytes give the same signature.
    ours = verify_at(make_token(), keyset, NOW)
    theirs = verify_at(make_token(signer="pyjwt"), keyset, NOW)
    assert ours.claims == theirs.claims
    assert ours.header == theirs.header
    header = {"alg": "RS256", "kid": signing_key.kid, "typ": "JWT"}
    token = sign_compact(header, {"sub": "u"}, signing_key)
    assert jwt.decode(token, signing_key.public.key, algorithms=["RS256"]) == {"sub": "u"}


# the end-to-end property ---------------------------------------------------------------------


@dataclass(frozen=True)
class Posted:
    oiat: int
    iat: int
    lifetime: int
    claims: dict[str, Any]
    cat: str | None


@st.composite
def posted_tokens(draw: st.DrawFn) -> Posted:
    age = draw(st.integers(min_value=-5, max_value=4000))  # now - oiat, skew included
    oiat = NOW - age
    from_origin = draw(st.booleans())
    iat = oiat if from_origin else draw(st.integers(min_value=oiat, max_value=NOW + 5))
    # Expired for at most max_expired (300 s), else the verifier refuses it.
    lifetime = draw(st.integers(min_value=max(1, NOW - iat - 300), max_value=NOW - iat + 3600))
    claims = {**session_claims(iat, lifetime), **draw(custom_claims)}
    fva = draw(st.one_of(st.none(), fva_values))
    if fva is None:
        del claims["fva"]
    else:
        claims["fva"] = fva
    if draw(st.booleans()):
        del claims["jti"]
    cat = draw(st.sampled_from([SESSION_TOKEN_CAT, None]))
    return Posted(oiat=oiat, iat=iat, lifetime=lifetime, claims=claims, cat=cat)


@settings(max_examples=150, deadline=None)
@given(
    posted=posted_tokens(),
    stored_delta=st.one_of(st.none(), st.integers(min_value=-600, max_value=600)),
    stored_lifetime=st.one_of(st.none(), st.integers(min_value=1, max_value=120)),
    available=st.booleans(),
)
def test_whatever_is_minted_verifies_and_keeps_its_promises(
    make_token: TokenFactory,
    signing_key: SigningKey,
    keyset: KeySet,
    posted: Posted,
    stored_delta: int | None,
    stored_lifetime: int | None,
    available: bool,
) -> None:
    header = {"oiat": posted.oiat, "cat": posted.cat if posted.cat else OMIT}
    token = sign_compact(make_token.header(posted.claims, header), posted.claims, signing_key)
    verified = verify_at(token, keyset, NOW)
    assert verified.claims == posted.claims

    stored = None
    if stored_delta is not None:
        stored_oiat = min(posted.oiat + stored_delta, NOW + 5)
        stored = ClaimsRecord(
            oiat=stored_oiat,
            cat=SESSION_TOKEN_CAT,
            claims={**session_claims(stored_oiat), "stored": True},
            origin_lifetime_s=stored_lifetime,
        )
    state = SessionState(freshest=stored, client_key=REQUEST.client_key)
    untouched = copy.deepcopy(verified.claims)
    decision = decide(REQUEST, verified, state, now=NOW, bounds=BOUNDS, origin_available=available)

    bound = BOUNDS.max_claims_age_s if available else BOUNDS.outage_max_claims_age_s
    freshest = max(posted.oiat, stored.oiat if stored else posted.oiat)
    event(type(decision).__name__)
    if not isinstance(decision, Mint):
        # Only the age rules can send this request away, and only when near or over the bound.
        assert freshest + bound - NOW < BOUNDS.min_remaining_s
        return
    assert freshest + bound - NOW >= BOUNDS.min_remaining_s
    source = decision.record
    assert source.oiat == freshest  # never an older record than one already issued

    minted_token = mint_token(decision, key=signing_key, now=NOW, jti="jti-minted")
    assert verified.claims == untouched  # neither decide nor mint mutates the claims

    # Verifies with minter's own verifier and with jwcrypto against the published JWK.
    minted = verify_at(minted_token, keyset, NOW)
    jose_header = jwcrypto_verify(minted_token, keyset.jwks()["keys"][0])
    assert jose_header == minted.header

    expected_header = {"alg": "RS256", "kid": signing_key.kid, "typ": "JWT", "oiat": source.oiat}
    if source.cat is not None:
        expected_header["cat"] = source.cat
    assert minted.header == expected_header
    assert minted.oiat <= max(posted.oiat, stored.oiat if stored else posted.oiat)

    claims = minted.claims
    iat = max(NOW, source.oiat)
    assert claims["iat"] == iat
    assert claims["nbf"] == claims["iat"] - 10
    assert claims["exp"] <= source.oiat + bound
    assert claims["exp"] <= iat + decision.lifetime_s <= iat + BOUNDS.lifetime_s
    assert claims["exp"] > NOW
    if posted.iat == posted.oiat and source is not stored:
        assert decision.lifetime_s <= posted.lifetime
    assert set(claims) == set(source.claims)
    for name, value in source.claims.items():
        if name not in RESTAMPED:
            assert claims[name] == value, name
    if "jti" in source.claims:
        assert claims["jti"] == "jti-minted"
    if "fva" in source.claims:
        assert [item == -1 for item in claims["fva"]] == [
            item == -1 for item in source.claims["fva"]
        ]
        assert all(new >= old for new, old in zip(claims["fva"], source.claims["fva"], strict=True))


@settings(max_examples=60, deadline=None)
@given(
    fva=fva_values,
    steps=st.lists(st.integers(min_value=0, max_value=90), min_size=1, max_size=4),
    first=st.integers(min_value=-5, max_value=60),
)
def test_a_chain_of_edge_mints_ages_fva_like_one_clone_and_never_shrinks(
    signing_key: SigningKey,
    keyset: KeySet,
    fva: list[int],
    steps: list[int],
    first: int,
) -> None:
    oiat = NOW - 200
    origin = ClaimsRecord(
        oiat=oiat,
        cat=SESSION_TOKEN_CAT,
        claims={**session_claims(oiat, 45), "fva": fva},
        origin_lifetime_s=45,
    )
    bounds = Bounds(outage_max_claims_age_s=3600)
    now = oiat + first
    decision: Any = Mint(
        record=origin, lifetime_s=45, not_after=oiat + 3600, outage=True, remember=None
    )
    state = SessionState(freshest=origin)
    for step in steps:
        token = mint_token(decision, key=signing_key, now=now, jti="j")
        now += step
        posted = verify_at(token, keyset, now)
        assert posted.oiat == oiat
        decision = decide(REQUEST, posted, state, now=now, bounds=bounds, origin_available=False)
        assert isinstance(decision, Mint)
        assert decision.lifetime_s == 45  # the origin's lifetime, not the edge token's
    last = verify_at(mint_token(decision, key=signing_key, now=now, jti="j"), keyset, now)
    direct = verify_at(
        mint_token(
            plan(origin, lifetime=45, not_after=oiat + 3600), key=signing_key, now=now, jti="j"
        ),
        keyset,
        now,
    )
    assert last.claims["fva"] == direct.claims["fva"]
    assert last.lifetime_s == direct.lifetime_s == 45
