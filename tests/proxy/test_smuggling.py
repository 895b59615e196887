"""Request smuggling: raw bytes to the real edge, a recording origin behind it.

For every ambiguous framing the edge either refuses (400, connection
closed) or normalises, and the origin never sees two requests where the
client sent one, nor the request hidden in a body.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.proxy.raw_origin import RawOrigin, edge_in_front, exchange, parse_answer

HIDDEN = b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"

REFUSED = {
    "cl_then_te": (
        b"POST /v1/client HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + HIDDEN
    ),
    "te_then_cl": (
        b"POST /v1/client HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 40\r\n\r\n0\r\n\r\n" + HIDDEN
    ),
    "duplicate_content_length_differing": (
        b"POST /v1/client HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n"
        b"Content-Length: 38\r\n\r\n" + HIDDEN
    ),
    "duplicate_content_length_equal": (
        b"POST /v1/client HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
        b"Content-Length: 5\r\n\r\nhello" + HIDDEN
    ),
    "content_length_with_sign": (
        b"POST /v1/client HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\nhello" + HIDDEN
    ),
    "obs_fold": b"GET /v1/client HTTP/1.1\r\nHost: h\r\nX-Folded: a\r\n b\r\n\r\n" + HIDDEN,
    "obs_fold_transfer_encoding": (
        b"POST /v1/client HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity,\r\n chunked\r\n"
        b"\r\n0\r\n\r\n" + HIDDEN
    ),
    "bare_lf_everywhere": b"GET /v1/client HTTP/1.1\nHost: h\n\n" + HIDDEN.replace(b"\r", b""),
    "bare_lf_in_one_header": (
        b"GET /v1/client HTTP/1.1\r\nHost: h\nX-Injected: 1\r\n\r\n" + HIDDEN
    ),
    "bare_lf_after_chunk_size": (
        b"POST /v1/client HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\nhello\r\n0\r\n\r\n" + HIDDEN
    ),
    "space_before_colon": (
        b"POST /v1/client HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n"
        b"0\r\n\r\n" + HIDDEN
    ),
    "unknown_transfer_coding": (
        b"POST /v1/client HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n"
        b"0\r\n\r\n" + HIDDEN
    ),
    "chunked_not_last": (
        b"POST /v1/client HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
        b"0\r\n\r\n" + HIDDEN
    ),
    "bad_chunk_size": (
        b"POST /v1/client HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0x5\r\nhello\r\n0\r\n\r\n" + HIDDEN
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
async def test_ambiguous_framing_is_refused_and_nothing_reaches_the_origin(
    tmp_path: Path, name: str
) -> None:
    async with RawOrigin() as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        raw = await exchange(edge, REFUSED[name])
    answer = parse_answer(raw)
    assert answer.status == 400
    [length] = answer.all("Content-Length")
    assert len(answer.body) == int(length), "one answer, then the connection is closed"
    assert b"Traceback" not in raw
    assert origin.forwarded() == []


async def test_chunked_body_holding_a_request_reaches_the_origin_as_one_request(
    tmp_path: Path,
) -> None:
    chunked = b"%x\r\n" % len(HIDDEN) + HIDDEN + b"\r\n0\r\n\r\n"
    async with RawOrigin() as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        raw = await exchange(
            edge,
            b"POST /v1/client HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n" + chunked,
        )
    assert parse_answer(raw).status == 200
    [received] = origin.forwarded()
    assert received.target == "/v1/client"
    assert received.body == HIDDEN, "the hidden request stays a body"


async def test_content_length_body_holding_a_request_stays_a_body(tmp_path: Path) -> None:
    async with RawOrigin() as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        raw = await exchange(
            edge,
            b"POST /v1/client HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % len(HIDDEN) + HIDDEN,
        )
    assert parse_answer(raw).status == 200
    [received] = origin.forwarded()
    assert received.body == HIDDEN
    assert received.all("Content-Length") == [str(len(HIDDEN))]


async def test_pipelined_requests_stay_as_many_as_were_sent(tmp_path: Path) -> None:
    async with RawOrigin() as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        raw = await exchange(
            edge,
            b"POST /v1/one HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
            b"GET /v1/two HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        )
    assert raw.count(b"HTTP/1.1 200") == 2
    assert [(r.method, r.target, r.body) for r in origin.forwarded()] == [
        ("POST", "/v1/one", b"hello"),
        ("GET", "/v1/two", b""),
    ]


async def test_transfer_encoding_from_the_client_is_never_passed_on_verbatim(
    tmp_path: Path,
) -> None:
    """The edge re-frames: the origin never gets the client's TE or a second length."""
    async with RawOrigin() as origin, edge_in_front(origin.url, tmp_path) as (edge, _):
        await exchange(
            edge,
            b"POST /v1/client HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n"
            b"Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        )
    forwarded = origin.forwarded()
    assert len(forwarded) <= 1
    for received in forwarded:
        assert all(v.lower() == "chunked" for v in received.all("Transfer-Encoding"))
        assert len(received.all("Content-Length")) + len(received.all("Transfer-Encoding")) == 1
