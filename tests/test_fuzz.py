"""Hypothesis against the token route (real edge, real origin) and against the verifier.

Properties: the edge never answers 500 (nor any 5xx while the origin is
healthy), errors come in the Clerk shape, nothing is minted for a token that
is not the session's correctly signed token, and memory stays bounded.

Hypothesis and function-scoped fixtures do not mix, so each HTTP test opens
one `SharedStack` (origin + edge on their own event-loop thread) and runs its
examples against it.
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote_plus

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from fuzz.verify_target import (
    KEY,
    SID,
    fuzz_one_input,
    hypothesis_inputs,
    structured_input,
    token_from,
)
from minter import MAX_TOKEN_BYTES
from proxy.config import LimitSettings, ServerSettings
from proxy.limits import LIMITS
from tests.stack import Browser, FakeClock, Stack, decode, running_stack

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent
HTTP = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
GENEROUS = LimitSettings(
    per_ip_per_s=1e6, per_ip_burst=10**6, per_session_per_s=1e6, per_session_burst=10**6
)
MAX_RSS_GROWTH_KB = 200 * 1024


class SharedStack:
    """A real stack on its own event loop thread, shared by every example of one test."""

    def __init__(self, **sections: Any) -> None:
        self._sections = sections
        self._folder = tempfile.TemporaryDirectory(prefix="fuzz-stack-")
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=120)

    def __enter__(self) -> SharedStack:
        self._thread.start()
        self._context = running_stack(
            Path(self._folder.name), FakeClock(time.time()), **self._sections
        )
        self.stack: Stack = self.call(self._context.__aenter__())
        self.browser = Browser(self.stack.fapi)
        self.call(self.browser.__aenter__())
        self.sid = self.call(self.browser.sign_in())
        self.token = self.call(self.browser.refresh(self.sid)).jwt
        self.rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.call(self.browser.__aexit__(None, None, None))
            self.call(self._context.__aexit__(None, None, None))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
            self._folder.cleanup()

    def minted(self) -> float:
        return sum(n for (outcome, _), n in self.stack.decisions().items() if outcome == "minted")

    async def raw(
        self, path_and_query: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        url = URL(self.stack.fapi + path_and_query, encoded=True)
        async with self.browser.client.post(url, data=body, headers=headers) as response:
            return response.status, await response.read()

    def check_answer(self, status: int, body: bytes) -> None:
        assert status < 500, (status, body[:200])
        if status >= 400:
            document = orjson.loads(body)
            [error] = document["errors"]
            assert {"code", "message"} <= set(error)
        if status == 200:
            jwt = orjson.loads(body)["jwt"]
            _, claims = decode(jwt)
            assert claims["sid"] == self.sid
            assert claims["sub"] == "user_alice"

    def check_memory(self) -> None:
        growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self.rss_kb
        assert growth < MAX_RSS_GROWTH_KB, f"peak RSS grew by {growth} KiB"


def token_path(sid: str) -> str:
    return f"/v1/client/sessions/{sid}/tokens"


def splices(token: str) -> st.SearchStrategy[str]:
    """The genuine token with a few characters replaced, inserted or removed."""
    return st.builds(
        lambda at, cut, text: token[:at] + text + token[at + cut :],
        st.integers(0, len(token)),
        st.integers(0, 6),
        st.text(max_size=6),
    ).filter(lambda forged: forged != token)


def test_fuzzed_tokens_are_never_minted_unless_genuine() -> None:
    with SharedStack(limits=GENEROUS) as shared:
        genuine = shared.token
        strategy = st.one_of(
            splices(genuine),
            st.text(max_size=300),
            st.builds(lambda data: token_from(data), hypothesis_inputs()),
            st.just(genuine),
        )

        @HTTP
        @given(token=strategy, in_query=st.booleans())
        def post(token: str, in_query: bool) -> None:
            before = shared.minted()
            quoted = quote_plus(token.encode("utf-8", "surrogatepass"))  # lone surrogates too
            if in_query:
                body, query = b"organization_id=", "?expired_token=" + quoted
            else:
                body, query = f"organization_id=&token={quoted}".encode(), ""
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            status, answer = shared.call(shared.raw(token_path(shared.sid) + query, body, headers))
            shared.check_answer(status, answer)
            if token != genuine:
                assert shared.minted() == before, "minted from a token that is not genuine"

        post()
        shared.check_memory()


FORM_FIELDS = st.sampled_from(
    ["token", "organization_id", "force_origin", "expired_token", "tab_state", "x", ""]
)


def test_fuzzed_bodies_never_answer_500() -> None:
    with SharedStack(limits=GENEROUS) as shared:
        forms = st.lists(st.tuples(FORM_FIELDS, st.text(max_size=40)), max_size=8).map(
            lambda pairs: "&".join(
                f"{quote_plus(k)}={quote_plus(v, errors='surrogatepass')}" for k, v in pairs
            ).encode()
        )
        bodies = st.one_of(
            forms, st.binary(max_size=4096), st.binary(min_size=65_000, max_size=70_000)
        )
        content_types = st.sampled_from(
            [
                "application/x-www-form-urlencoded",
                "application/x-www-form-urlencoded; charset=utf-8",
                "application/json",
                "multipart/form-data; boundary=x",
                "text/plain",
                "",
            ]
        )

        @HTTP
        @given(
            body=bodies, content_type=content_types, encoding=st.sampled_from(["", "gzip", "br"])
        )
        def post(body: bytes, content_type: str, encoding: str) -> None:
            headers = {"Content-Type": content_type} if content_type else {}
            if encoding:
                headers["Content-Encoding"] = encoding
            status, answer = shared.call(shared.raw(token_path(shared.sid), body, headers))
            shared.check_answer(status, answer)
            assert shared.minted() == 0

        post()
        shared.check_memory()


QUERY_ALPHABET = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="#")


def test_fuzzed_query_strings_never_answer_500() -> None:
    with SharedStack(limits=GENEROUS) as shared:
        names = st.sampled_from(
            ["force_origin", "expired_token", "_clerk_js_version", "__clerk_api_version", "debug"]
        ) | st.text(QUERY_ALPHABET, max_size=10)
        pieces = st.one_of(
            st.tuples(names, st.text(QUERY_ALPHABET, max_size=30)).map(lambda p: f"{p[0]}={p[1]}"),
            st.sampled_from(
                ["%ff", "%", "%zz", "force_origin=true", "force_origin=TRUE", "&&", "="]
            ),
        )
        queries = st.lists(pieces, max_size=6).map("&".join)
        sids = st.one_of(st.just(None), st.text(QUERY_ALPHABET, min_size=1, max_size=20))

        @HTTP
        @given(query=queries, sid=sids)
        def post(query: str, sid: str | None) -> None:
            path = token_path(shared.sid if sid is None else sid.replace("/", "_"))
            body = f"organization_id=&token={shared.token}".encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            before = shared.minted()
            status, answer = shared.call(shared.raw(f"{path}?{query}", body, headers))
            assert status < 500, (status, answer[:200])
            if sid is not None and sid != shared.sid:
                assert shared.minted() == before, "the token was minted for another session path"

        post()
        shared.check_memory()


HEADER_NAME = st.text(
    st.sampled_from(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_!#$%&'*+.^`|~"
    ),
    min_size=1,
    max_size=20,
)
HEADER_VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120)
FRAMING = {"content-length", "transfer-encoding", "host", "connection", "expect", "upgrade"}


def test_fuzzed_headers_never_answer_500() -> None:
    server = ServerSettings(trusted_proxies=("127.0.0.1",))
    with SharedStack(limits=GENEROUS, server=server) as shared:
        names = st.one_of(
            st.sampled_from(
                [
                    "Content-Type",
                    "Content-Encoding",
                    "Origin",
                    "Cookie",
                    "Authorization",
                    "X-Forwarded-For",
                    "X-Forwarded-Proto",
                    "X-Forwarded-Host",
                    "Accept-Encoding",
                ]
            ),
            HEADER_NAME,
        ).filter(lambda name: name.lower() not in FRAMING)
        headers = st.dictionaries(names, HEADER_VALUE, max_size=8)

        @HTTP
        @given(headers=headers)
        def post(headers: dict[str, str]) -> None:
            body = f"organization_id=&token={shared.token}".encode()
            status, answer = shared.call(shared.raw(token_path(shared.sid), body, headers))
            assert status < 500, (status, answer[:200])
            if status >= 400:
                assert orjson.loads(answer)["errors"]

        post()
        buckets = shared.stack.edge_app[LIMITS].per_ip
        assert len(buckets) <= buckets.max_keys
        shared.check_memory()


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hypothesis_inputs())
def test_verifier_only_ever_refuses_or_accepts_what_an_independent_check_accepts(
    data: bytes,
) -> None:
    fuzz_one_input(data)


def test_verifier_memory_stays_bounded_on_hostile_inputs() -> None:
    """Oversized, deeply nested and wide inputs: the peak stays small and nothing leaks."""
    deep = {"sid": SID, "deep": 1}
    text = orjson.dumps(deep).decode()[:-1]
    inputs = [
        b"\x00" + b"A" * (10 * MAX_TOKEN_BYTES),
        b"\x00" + b"a." * MAX_TOKEN_BYTES,
        structured_input({"alg": "RS256", "kid": KEY.kid}, {"sid": SID, "x": [[0] * 2000]}),
        b"\x02"
        + b'{"alg":"RS256","kid":"'
        + KEY.kid.encode()
        + b'"}\x00'
        + (text + ',"n":' + "[" * 5000 + "]" * 5000 + "}").encode(),
        b"\x02"
        + b'{"alg":"RS256","kid":"'
        + KEY.kid.encode()
        + b'"}\x00'
        + b'{"a":"'
        + b"\\u0041" * 2000
        + b'"}',
    ]
    for data in inputs:  # warm up caches and lazy imports
        fuzz_one_input(data)
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for _ in range(20):
            for data in inputs:
                fuzz_one_input(data)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - baseline < 8 * 1024 * 1024, f"peak {peak - baseline} bytes"
    assert current - baseline < 256 * 1024, f"retained {current - baseline} bytes"


def test_fuzz_target_short_run() -> None:
    """The on-demand fuzz target, run for a few hundred inputs as CI does."""
    with tempfile.TemporaryDirectory() as work:
        done = subprocess.run(  # noqa: S603 - our own script, with fixed arguments
            [sys.executable, str(REPO / "fuzz" / "verify_target.py"), "--runs", "300"],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        output = done.stdout + done.stderr
        assert "Done 300 runs" in output or "hypothesis: 300 inputs, no failure" in output
        assert not list(Path(work).glob("crash-*"))
