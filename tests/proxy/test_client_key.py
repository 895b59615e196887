"""The client credential edge mints are bound to: `__client`, else `authorization`."""

from __future__ import annotations

import hashlib

from aiohttp.test_utils import make_mocked_request
from hypothesis import example, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from proxy.clients import client_key, credential_digest
from proxy.tokenlog import token_hint

_NAMES = st.sampled_from(["__client", "__client_uat", "__session", "__Client", "x", "a b"])
_VALUES = st.text(st.sampled_from('ab=_-. "\\;,'), max_size=8)
_SPACES = st.sampled_from(["", " ", "  "])


@st.composite
def cookie_headers(draw: st.DrawFn) -> str:
    parts = draw(
        st.lists(
            st.tuples(_SPACES, _NAMES, _SPACES, st.sampled_from(["=", ""]), _SPACES, _VALUES),
            max_size=5,
        )
    )
    return ";".join("".join(part) for part in parts)


_TOKEN_CHARS = "!#$%&'*+-.^_`|~09Az"
_COOKIE_OCTETS = "!#$%&'()*+-./09:<=>?@AZ[]^_`az{|}~"


@st.composite
def plain_cookie_headers(draw: st.DrawFn) -> str:
    """RFC 6265 cookie-strings: the shape browsers send, read without aiohttp's parser."""
    names = st.one_of(
        st.sampled_from(["__client", "__client_uat", "__clientx", "x__client"]),
        st.text(st.sampled_from(_TOKEN_CHARS), min_size=1, max_size=4),
    )
    pairs = draw(
        st.lists(st.tuples(names, st.text(st.sampled_from(_COOKIE_OCTETS), max_size=8)), max_size=6)
    )
    return "; ".join(f"{name}={value}" for name, value in pairs)


@st.composite
def nearly_plain_cookie_headers(draw: st.DrawFn) -> str:
    """A cookie-string with one character put in that the plain shape does not allow."""
    header = draw(plain_cookie_headers())
    at = draw(st.integers(0, len(header)))
    return header[:at] + draw(st.sampled_from(' ";,\\=\t')) + header[at:]


@settings(max_examples=1000)
@given(st.one_of(cookie_headers(), plain_cookie_headers(), nearly_plain_cookie_headers()))
@example("__client=a; __client=b")
@example(' __client = "quoted;value" ; x=1')
@example("x; __client=v")
@example("__client=a=b; __client_uat=0")
@example("__client=")
@example(" __client=a")
def test_the_client_cookie_is_read_as_aiohttp_reads_it(header: str) -> None:
    request = make_mocked_request("POST", "/", headers=CIMultiDict({"Cookie": header}))
    expected = request.cookies.get("__client")
    assert client_key(request) == (credential_digest(expected) if expected else None)


def test_native_clients_are_named_by_their_authorization_header() -> None:
    request = make_mocked_request("POST", "/", headers=CIMultiDict({"Authorization": "abc"}))
    assert client_key(request) == credential_digest("abc")
    assert client_key(make_mocked_request("POST", "/")) is None


def test_the_binding_is_a_128_bit_hash_not_the_log_hint() -> None:
    """The store holds it: a 48-bit hash would let whoever reads the store find a
    cookie with the bound hash in about 2^48 tries."""
    request = make_mocked_request("POST", "/", headers=CIMultiDict({"Cookie": "__client=abc"}))
    key = client_key(request)
    assert key == hashlib.sha256(b"abc").hexdigest()[:32]
    assert key != token_hint("abc")
