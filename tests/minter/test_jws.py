"""minter.jws: canonical base64url, strict JSON, compact splitting."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minter import MalformedToken
from minter.jws import (
    b64url_decode,
    b64url_encode,
    encode_json,
    parse_json_object,
    split_compact,
)

from .builders import json_values

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

# base64url -------------------------------------------------------------------


@given(st.binary(max_size=200))
def test_b64url_round_trips_without_padding(data: bytes) -> None:
    encoded = b64url_encode(data)
    assert "=" not in encoded
    assert set(encoded) <= set(_ALPHABET)
    assert encoded == base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")
    assert b64url_decode(encoded, what="x") == data


@pytest.mark.parametrize(
    ("segment", "expected"),
    [("", b""), ("YQ", b"a"), ("YWI", b"ab"), ("YWJj", b"abc"), ("-_8", b"\xfb\xff")],
)
def test_b64url_decodes_canonical_segments(segment: str, expected: bytes) -> None:
    assert b64url_decode(segment, what="x") == expected


@pytest.mark.parametrize(
    "segment",
    [
        pytest.param("YQ==", id="padding"),
        pytest.param("YQ=", id="partial-padding"),
        pytest.param("YWI=", id="padding-3"),
        pytest.param("+_8", id="standard-alphabet-plus"),
        pytest.param("-/8", id="standard-alphabet-slash"),
        pytest.param("Y Q", id="space"),
        pytest.param("YQ\n", id="trailing-newline"),
        pytest.param("\nYQ", id="leading-newline"),
        pytest.param("YQ.", id="dot"),
        pytest.param("Y\u00e9", id="non-ascii"),
        pytest.param("\uff39\uff31", id="fullwidth-letters"),
        pytest.param("Y", id="length-1-mod-4"),
        pytest.param("YWJjZ", id="length-5"),
    ],
)
def test_b64url_refuses_non_canonical_alphabet_and_length(segment: str) -> None:
    with pytest.raises(MalformedToken) as caught:
        b64url_decode(segment, what="payload")
    assert caught.value.reason == "malformed"
    assert "payload" in caught.value.message


@pytest.mark.parametrize(
    ("segment", "canonical"),
    [("YR", "YQ"), ("YT", "YQ"), ("Yf", "YQ"), ("YWJ", "YWI"), ("YWL", "YWI")],
)
def test_b64url_refuses_stray_trailing_bits(segment: str, canonical: str) -> None:
    # A lenient decoder maps both spellings to the same bytes; only one may pass.
    assert base64.urlsafe_b64decode(segment + "==") == base64.urlsafe_b64decode(canonical + "==")
    assert b64url_decode(canonical, what="x")
    with pytest.raises(MalformedToken, match="canonical"):
        b64url_decode(segment, what="x")


@given(st.binary(min_size=1, max_size=64).filter(lambda data: len(data) % 3 != 0), st.data())
def test_any_stray_trailing_bits_are_refused(data: bytes, draw: st.DataObject) -> None:
    encoded = b64url_encode(data)
    stray_bits = 4 if len(data) % 3 == 1 else 2  # bits of the last character beyond the data
    index = _ALPHABET.index(encoded[-1])
    assert index % (1 << stray_bits) == 0  # the canonical spelling leaves them zero
    stray = draw.draw(st.integers(min_value=1, max_value=(1 << stray_bits) - 1))
    spelled = encoded[:-1] + _ALPHABET[index + stray]
    assert base64.urlsafe_b64decode(spelled + "==") == data  # a lenient decoder agrees
    with pytest.raises(MalformedToken, match="canonical"):
        b64url_decode(spelled, what="x")


# strict JSON -----------------------------------------------------------------


def test_parse_json_object_accepts_an_object() -> None:
    assert parse_json_object(b'{"a":[1,{"b":null}],"c":"\\u00e9"}', what="payload") == {
        "a": [1, {"b": None}],
        "c": "\u00e9",
    }


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(b'{"a":1,"a":1}', id="top-level"),
        pytest.param(b'{"o":{"id":"x","id":"y"}}', id="nested-object"),
        pytest.param(b'{"l":[{"k":1},{"k":1,"k":2}]}', id="object-in-array"),
        pytest.param(b'{"a":{"b":{"c":{"d":1,"d":1}}}}', id="deep"),
        pytest.param(b'{"a":1,"\\u0061":2}', id="escaped-duplicate"),
    ],
)
def test_duplicate_members_are_refused_at_any_depth(text: bytes) -> None:
    with pytest.raises(MalformedToken, match="duplicate"):
        parse_json_object(text, what="payload")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(b'{"a":NaN}', id="nan"),
        pytest.param(b'{"a":Infinity}', id="infinity"),
        pytest.param(b'{"a":-Infinity}', id="minus-infinity"),
        pytest.param(b'{"a":[{"b":NaN}]}', id="nested-nan"),
    ],
)
def test_non_finite_constants_are_refused(text: bytes) -> None:
    with pytest.raises(MalformedToken, match="constant"):
        parse_json_object(text, what="payload")


@pytest.mark.parametrize("literal", [b"1e400", b"-1e400", b"1" + b"0" * 400 + b".0"])
def test_numbers_that_overflow_to_infinity_are_refused(literal: bytes) -> None:
    # Python's json turns these into float("inf"), which orjson would re-sign as null.
    with pytest.raises(MalformedToken):
        parse_json_object(b'{"a":' + literal + b"}", what="payload")


def test_large_finite_floats_are_kept() -> None:
    assert parse_json_object(b'{"a":1.7976931348623157e308,"b":-0.5}', what="x") == {
        "a": 1.7976931348623157e308,
        "b": -0.5,
    }


def test_utf8_byte_order_mark_is_refused() -> None:
    with pytest.raises(MalformedToken):
        parse_json_object(b'\xef\xbb\xbf{"a":1}', what="header")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(b'{"a":"\\ud800"}', id="lone-high-in-value"),
        pytest.param(b'{"a":"\\udc00x"}', id="lone-low-in-value"),
        pytest.param(b'{"\\ud800":1}', id="lone-in-member-name"),
        pytest.param(b'{"a":["ok",{"b":"\\udfff"}]}', id="nested"),
    ],
)
def test_lone_surrogates_are_refused(text: bytes) -> None:
    with pytest.raises(MalformedToken):
        parse_json_object(text, what="payload")


def test_a_surrogate_pair_is_one_character() -> None:
    assert parse_json_object(b'{"a":"\\ud83d\\ude00"}', what="x") == {"a": "\U0001f600"}


@pytest.mark.parametrize(
    ("literal", "ok"),
    [
        (str((1 << 63) - 1), True),
        (str(-(1 << 63)), True),
        (str(1 << 63), False),
        (str(-(1 << 63) - 1), False),
        (str(1 << 64), False),
        ("9" * 5000, False),
    ],
)
def test_integers_must_fit_in_64_bits(literal: str, ok: bool) -> None:
    text = f'{{"a":[{literal}]}}'.encode()
    if ok:
        assert parse_json_object(text, what="x") == {"a": [int(literal)]}
    else:
        with pytest.raises(MalformedToken):
            parse_json_object(text, what="x")


@pytest.mark.parametrize("text", [b"[]", b"[{}]", b'"s"', b"1", b"null", b"true", b"1.5"], ids=repr)
def test_top_level_must_be_an_object(text: bytes) -> None:
    with pytest.raises(MalformedToken, match="not a JSON object"):
        parse_json_object(text, what="payload")


@pytest.mark.parametrize("depth", [300, 1200, 8000])
def test_deep_nesting_is_refused_not_crashing(depth: int) -> None:
    arrays = b'{"a":' + b"[" * depth + b"]" * depth + b"}"
    objects = b'{"a":' * depth + b"1" + b"}" * depth
    for text in (arrays, objects):
        with pytest.raises(MalformedToken):
            parse_json_object(text, what="payload")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(b'{"a":1} x', id="trailing-garbage"),
        pytest.param(b'{"a":1}{}', id="two-documents"),
        pytest.param(b'{"a":"\xff"}', id="invalid-utf8"),
        pytest.param(b'{"a":"\xed\xa0\x80"}', id="utf8-encoded-surrogate"),
        pytest.param(b'{"a":"x\ny"}', id="raw-control-character"),
        pytest.param(b"{'a':1}", id="single-quotes"),
        pytest.param(b'{"a":1,}', id="trailing-comma"),
        pytest.param(b"", id="empty"),
    ],
)
def test_other_non_json_is_refused(text: bytes) -> None:
    with pytest.raises(MalformedToken):
        parse_json_object(text, what="payload")


@given(st.dictionaries(st.text(st.characters(codec="utf-8")), json_values))
def test_encode_json_round_trips_through_the_strict_parser(value: dict[str, object]) -> None:
    encoded = encode_json(value)
    assert parse_json_object(encoded, what="x") == value
    assert json.loads(encoded) == value


# compact form ----------------------------------------------------------------


def test_split_compact_returns_three_segments() -> None:
    assert split_compact("aa.bb.cc", max_bytes=100) == ("aa", "bb", "cc")


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("aa.bb", id="two-segments"),
        pytest.param("aa.bb.cc.dd", id="four-segments"),
        pytest.param("aa.bb.cc.dd.ee", id="five-segments-jwe"),
        pytest.param("aabbcc", id="one-segment"),
    ],
)
def test_split_compact_refuses_other_segment_counts(token: str) -> None:
    with pytest.raises(MalformedToken, match="compact"):
        split_compact(token, max_bytes=100)


@pytest.mark.parametrize("token", [".bb.cc", "aa..cc", "aa.bb.", "..", ""])
def test_split_compact_refuses_empty_segments(token: str) -> None:
    with pytest.raises(MalformedToken):
        split_compact(token, max_bytes=100)


def test_split_compact_caps_the_size() -> None:
    token = "a" * 10 + "." + "b" * 10 + "." + "c" * 10
    assert split_compact(token, max_bytes=len(token)) == ("a" * 10, "b" * 10, "c" * 10)
    with pytest.raises(MalformedToken, match="too large"):
        split_compact(token, max_bytes=len(token) - 1)
    # The cap is checked before splitting, so a huge input is refused at once.
    with pytest.raises(MalformedToken, match="too large"):
        split_compact("." * 100_000, max_bytes=16 * 1024)
