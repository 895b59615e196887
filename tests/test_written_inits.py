"""The value classes whose `__init__` is written out match their dataclass fields.

The classes built on every refresh are dataclasses with `init=False` and an
`__init__` written by hand, which mypyc compiles (a generated one stays
interpreted, about ten times slower; setup.py). These tests hold each one
to its fields: every field is taken, by keyword and in field order, and
stored; the defaults are the fields' defaults; and the frozen ones stay
frozen.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from minter import ClaimsRecord, Mint, RefreshRequest, SessionState, VerifiedToken
from minter.mint import Clone
from proxy.form import RefreshForm
from proxy.logs import RequestNote
from proxy.tokens import _Refresh

RECORD = ClaimsRecord(oiat=1, cat="cl_B7d4PD111AAA", claims={"sid": "sess_1"}, origin_lifetime_s=60)
REQUEST = RefreshRequest(
    session_id="sess_1",
    template=None,
    force_origin=False,
    organization_id="org_1",
    token="a.b.c",
    client_key="client",
)
FORM = RefreshForm(
    organization_id="org_1",
    token="a.b.c",
    expired_token=None,
    force_origin=True,
    body="token=a.b.c",
    query="x=1",
)

# One instance of each, every field given a value unlike its default.
SAMPLES: list[tuple[type[Any], dict[str, Any]]] = [
    (
        ClaimsRecord,
        {"oiat": 7, "cat": "cl_x", "claims": {"sub": "user_1"}, "origin_lifetime_s": 30},
    ),
    (Clone, {"header": {"alg": "RS256"}, "claims": {"sid": "sess_1"}, "needs_jti": True}),
    (
        RefreshRequest,
        {
            "session_id": "sess_2",
            "template": "tmpl",
            "force_origin": True,
            "organization_id": "",
            "token": "t.o.k",
            "client_key": "k",
        },
    ),
    (
        SessionState,
        {"revoked": True, "stale_mark": 5, "freshest": RECORD, "client_key": "client_b"},
    ),
    (
        Mint,
        {"record": RECORD, "lifetime_s": 60, "not_after": 99, "outage": True, "remember": RECORD},
    ),
    (
        VerifiedToken,
        {
            "header": {"kid": "k1"},
            "claims": {"sid": "sess_1"},
            "kid": "k1",
            "oiat": 1,
            "iat": 2,
            "exp": 62,
            "organization_id": "org_1",
            "cat": None,
        },
    ),
    (RefreshForm, dataclasses.asdict(FORM)),
    (_Refresh, {"request": REQUEST, "form": FORM, "verified": None}),
    (RequestNote, {"request_id": "r1", "route": "token", "decision": "minted", "reason": "edge"}),
]


@pytest.mark.parametrize(("cls", "values"), SAMPLES, ids=lambda x: getattr(x, "__name__", ""))
def test_every_field_is_taken_and_stored(cls: type[Any], values: dict[str, Any]) -> None:
    names = [field.name for field in dataclasses.fields(cls)]
    assert sorted(names) == sorted(values), "a sample per field"
    by_keyword = cls(**values)
    for name, value in values.items():
        assert getattr(by_keyword, name) is value
    assert cls(*(values[name] for name in names)) == by_keyword, "positions in field order"
    assert dataclasses.replace(by_keyword) == by_keyword


@pytest.mark.parametrize(("cls", "values"), SAMPLES, ids=lambda x: getattr(x, "__name__", ""))
def test_defaults_are_the_fields_defaults(cls: type[Any], values: dict[str, Any]) -> None:
    defaulted = {f.name: f.default for f in dataclasses.fields(cls)}
    defaulted = {name: v for name, v in defaulted.items() if v is not dataclasses.MISSING}
    required = {name: value for name, value in values.items() if name not in defaulted}
    built = cls(**required)
    for name, default in defaulted.items():
        assert getattr(built, name) == default, name


@pytest.mark.parametrize(("cls", "values"), SAMPLES[:-1], ids=lambda x: getattr(x, "__name__", ""))
def test_the_frozen_ones_stay_frozen(cls: type[Any], values: dict[str, Any]) -> None:
    built = cls(**values)
    name = next(iter(values))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, name, values[name])


def test_the_request_note_is_written_to() -> None:
    note = RequestNote("r1")
    note.decision = "minted"
    assert note == RequestNote("r1", decision="minted")
