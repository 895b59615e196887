"""The refresh form parser agrees with the plain reading of the form rules.

`reference` is the parser written straight from the rules (every segment
through `unquote_plus`); the edge's parser skips the decoding of components
that need none. On any body and query, both give the same form or refuse
with the same message.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.form import BadRefresh, RefreshForm, parse_refresh

MAX_FIELDS = 64


def _reference_pairs(raw: str, what: str) -> list[tuple[str, str]]:
    segments = [segment for segment in raw.split("&") if segment]
    if len(segments) > MAX_FIELDS:
        raise BadRefresh(f"too many {what} fields")
    pairs = []
    for segment in segments:
        name, _, value = segment.partition("=")
        try:
            pairs.append(
                (unquote_plus(name, errors="strict"), unquote_plus(value, errors="strict"))
            )
        except UnicodeDecodeError as exc:
            raise BadRefresh(f"{what} is not UTF-8") from exc
    return pairs


def reference(body: bytes, query: str) -> RefreshForm:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRefresh("body is not UTF-8") from exc
    fields: dict[str, list[str]] = {}
    for name, value in _reference_pairs(text, "body"):
        fields.setdefault(name, []).append(value)
    query_fields: dict[str, list[str]] = {}
    for name, value in _reference_pairs(query, "query"):
        query_fields.setdefault(name, []).append(value)
    force = [*fields.get("force_origin", []), *query_fields.get("force_origin", [])]
    if any(value not in ("true", "false") for value in force):
        raise BadRefresh("force_origin is true or false")
    expired = [*fields.get("expired_token", []), *query_fields.get("expired_token", [])]
    if len(expired) > 1:
        raise BadRefresh("expired_token is given more than once")

    def single(name: str) -> str | None:
        values = fields.get(name, [])
        if len(values) > 1:
            raise BadRefresh(f"{name} is given more than once")
        return values[0] if values else None

    return RefreshForm(
        organization_id=single("organization_id"),
        token=single("token") or None,
        expired_token=expired[0] if expired and expired[0] else None,
        force_origin="true" in force,
        body=text,
        query=query,
    )


def outcome(parse: object, body: bytes, query: str) -> RefreshForm | str:
    try:
        return parse(body, query)  # type: ignore[operator, no-any-return]
    except BadRefresh as exc:
        return f"refused: {exc}"


names = st.sampled_from(
    [
        "token",
        "expired_token",
        "organization_id",
        "force_origin",
        "_clerk_js_version",
        "tok%65n",
        "x",
    ]
)
values = st.one_of(
    st.sampled_from(
        ["true", "false", "", "eyJ.a.b", "org_1", "a+b", "%E2%82%AC", "%ff", "%", "%2"]
    ),
    st.text(alphabet="ab+%=&09EF", max_size=8),
)
segment = st.one_of(
    st.builds(lambda name, value: f"{name}={value}", names, values),
    names,
    st.just(""),
)
forms = st.lists(segment, max_size=70).map("&".join)


@given(forms, forms)
def test_the_parser_agrees_with_the_reference(body: str, query: str) -> None:
    encoded = body.encode()
    assert outcome(parse_refresh, encoded, query) == outcome(reference, encoded, query)


@pytest.mark.parametrize(
    ("body", "query", "refusal"),
    [
        (b"token=a&token=b", "", "token is given more than once"),
        (b"force_origin=yes", "", "force_origin is true or false"),
        (b"expired_token=a", "expired_token=b", "expired_token is given more than once"),
        (b"token=%ff", "", "body is not UTF-8"),
        (b"\xff", "", "body is not UTF-8"),
        (b"&".join([b"x=1"] * 65), "", "too many body fields"),
        (b"", "&".join(["x=1"] * 65), "too many query fields"),
    ],
)
def test_ambiguous_or_unreadable_forms_are_refused(body: bytes, query: str, refusal: str) -> None:
    with pytest.raises(BadRefresh, match=refusal):
        parse_refresh(body, query)


def test_a_plain_form_reads_as_written() -> None:
    form = parse_refresh(
        b"organization_id=org_1&token=eyJ.a.b&_clerk_js_version=5", "force_origin=true"
    )
    assert (form.organization_id, form.token, form.expired_token, form.force_origin) == (
        "org_1",
        "eyJ.a.b",
        None,
        True,
    )
