"""minter.claims: what a clone copies, re-stamps and ages (unit and property tests)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minter import SESSION_TOKEN_CAT, ClaimsRecord, age_fva, clone_claims, record_of

from .builders import JTI, NOW, RESTAMPED, custom_claims, fva_values, session_claims, verified

FAR = 1 << 52  # a not_after that never binds
times = st.integers(min_value=0, max_value=1 << 40)


def clone(source: dict[str, Any], *, oiat: int, now: int, **kwargs: Any) -> dict[str, Any]:
    options = {"lifetime_s": 60, "not_after": FAR, "jti": "jti-new", **kwargs}
    return clone_claims(source, oiat=oiat, now=now, **options)


# record_of ------------------------------------------------------------------------------


def test_record_of_an_origin_token_keeps_its_lifetime() -> None:
    token = verified(oiat=NOW - 20, lifetime=45)
    kept = record_of(token)
    assert kept == ClaimsRecord(
        oiat=NOW - 20, cat=SESSION_TOKEN_CAT, claims=token.claims, origin_lifetime_s=45
    )


def test_record_of_an_edge_token_has_no_origin_lifetime() -> None:
    token = verified(oiat=NOW - 200, iat=NOW - 20, lifetime=25, cat=None)
    kept = record_of(token)
    assert kept.oiat == NOW - 200
    assert kept.cat is None
    assert kept.origin_lifetime_s is None


# age_fva --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fva", "source_iat", "now", "expected"),
    [
        ([3, -1], 1000, 1000, [3, -1]),  # no time passed
        ([3, -1], 1000, 1059, [3, -1]),  # not a whole minute yet
        ([3, -1], 1000, 1060, [4, -1]),
        ([3, 7], 1000, 1000 + 125, [5, 9]),
        ([4, -1], 1061, 1125, [5, -1]),  # a clone made at minute 1 already counted it
        ([-1, -1], 1000, 1000 + 86_400, [-1, -1]),
    ],
)
def test_age_fva_counts_only_minutes_the_source_had_not(
    fva: list[int], source_iat: int, now: int, expected: list[int]
) -> None:
    assert age_fva(fva, source_iat=source_iat, oiat=1000, now=now) == expected


@pytest.mark.parametrize("fva", [None, "3,-1", 3, {"a": 1}])
def test_age_fva_leaves_other_shapes_alone(fva: object) -> None:
    assert age_fva(fva, source_iat=1000, oiat=1000, now=5000) is fva


def test_age_fva_returns_a_new_list() -> None:
    fva = [3, -1]
    aged = age_fva(fva, source_iat=1000, oiat=1000, now=1120)
    assert aged == [5, -1]
    assert fva == [3, -1]


# clone_claims ---------------------------------------------------------------------------


def test_clone_restamps_times_and_jti() -> None:
    source = session_claims(NOW - 20)
    cloned = clone(source, oiat=NOW - 20, now=NOW, lifetime_s=60)
    assert (cloned["iat"], cloned["nbf"], cloned["exp"]) == (NOW, NOW - 10, NOW + 60)
    assert cloned["jti"] == "jti-new" != JTI
    assert cloned["fva"] == [3, -1]  # 20 s is not a minute
    assert {k: v for k, v in cloned.items() if k not in RESTAMPED} == {
        k: v for k, v in source.items() if k not in RESTAMPED
    }


def test_clone_exp_never_passes_not_after() -> None:
    cloned = clone(session_claims(NOW - 280), oiat=NOW - 280, now=NOW, not_after=NOW + 20)
    assert cloned["exp"] == NOW + 20


def test_clone_without_jti_or_fva_adds_neither() -> None:
    source = session_claims(NOW - 20)
    del source["jti"], source["fva"]
    cloned = clone(source, oiat=NOW - 20, now=NOW)
    assert "jti" not in cloned
    assert "fva" not in cloned


def test_a_clock_behind_the_origins_does_not_date_the_clone_before_its_claims() -> None:
    # The verifier accepts an oiat up to 5 s ahead of now (clock skew). A clone
    # dated at now would carry iat < oiat (which the verifier then refuses) and
    # age fva backwards, turning 0 minutes into -1 ("never").
    oiat = NOW + 3
    source = {**session_claims(oiat), "fva": [0, 0]}
    cloned = clone(source, oiat=oiat, now=NOW)
    assert cloned["iat"] == oiat
    assert cloned["nbf"] == oiat - 10
    assert cloned["exp"] == oiat + 60
    assert cloned["fva"] == [0, 0]


@settings(max_examples=300)
@given(
    extra=custom_claims,
    oiat=times,
    source_age=st.integers(min_value=0, max_value=10**6),
    now_offset=st.integers(min_value=-5, max_value=10**7),
    lifetime=st.integers(min_value=1, max_value=3600),
    bound=st.integers(min_value=10, max_value=10**6),
    fva=st.one_of(st.none(), fva_values),
    has_jti=st.booleans(),
)
def test_clone_keeps_every_claim_but_the_restamped_ones(
    extra: dict[str, Any],
    oiat: int,
    source_age: int,
    now_offset: int,
    lifetime: int,
    bound: int,
    fva: list[int] | None,
    has_jti: bool,
) -> None:
    source_iat = oiat + source_age
    source = {**session_claims(source_iat), **extra}
    if fva is None:
        del source["fva"]
    else:
        source["fva"] = fva
    if not has_jti:
        del source["jti"]
    untouched = copy.deepcopy(source)
    now = oiat + now_offset
    cloned = clone(source, oiat=oiat, now=now, lifetime_s=lifetime, not_after=oiat + bound)

    assert source == untouched  # the input is never mutated
    assert cloned is not source
    assert set(cloned) == set(source)
    for name, value in source.items():
        if name not in RESTAMPED:
            assert cloned[name] == value, name
    assert cloned["iat"] == max(now, oiat)
    assert cloned["nbf"] == cloned["iat"] - 10
    assert cloned["exp"] == min(cloned["iat"] + lifetime, oiat + bound)
    assert ("jti" in cloned) is has_jti
    if has_jti:
        assert cloned["jti"] == "jti-new"
    if fva is not None:
        assert [item == -1 for item in cloned["fva"]] == [item == -1 for item in fva]


@settings(max_examples=300)
@given(
    fva=fva_values,
    oiat=times,
    offsets=st.lists(st.integers(min_value=-5, max_value=10**7), min_size=1, max_size=5),
)
def test_a_clone_of_a_clone_is_aged_like_a_direct_clone(
    fva: list[int], oiat: int, offsets: list[int]
) -> None:
    # Start from the origin's claims (iat == oiat) and clone along a chain of edge
    # clocks moving forward; fva must equal one clone made directly at the last time.
    offsets = sorted(offsets)
    origin = {**session_claims(oiat), "fva": fva}
    chained = origin
    for offset in offsets:
        chained = clone(chained, oiat=oiat, now=oiat + offset)
    direct = clone(origin, oiat=oiat, now=oiat + offsets[-1])
    assert chained["fva"] == direct["fva"]
    elapsed = max(offsets[-1], 0) // 60
    assert direct["fva"] == [item if item == -1 else item + elapsed for item in fva]


@settings(max_examples=300)
@given(
    fva=fva_values,
    oiat=times,
    offsets=st.lists(st.integers(min_value=-5, max_value=10**7), min_size=1, max_size=5),
)
def test_fva_never_gets_younger_even_when_clocks_disagree(
    fva: list[int], oiat: int, offsets: list[int]
) -> None:
    # Edges whose clocks disagree clone in any order: a factor never looks more
    # recent than the source said, and a verified factor never becomes -1.
    chained = {**session_claims(oiat), "fva": fva}
    for offset in offsets:
        before = chained["fva"]
        chained = clone(chained, oiat=oiat, now=oiat + offset)
        for old, new in zip(before, chained["fva"], strict=True):
            assert (new == -1) == (old == -1)
            assert new >= old


@given(oiat=times, source_age=st.integers(0, 10**6), now_offset=st.integers(-5, 10**9))
def test_never_verified_stays_never_verified(oiat: int, source_age: int, now_offset: int) -> None:
    source = {**session_claims(oiat + source_age), "fva": [-1, -1]}
    assert clone(source, oiat=oiat, now=oiat + now_offset)["fva"] == [-1, -1]
