"""The CLI's pieces in-process: help, event loop choice, log shapes, key rotation in time."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from jwcrypto import jwk

from minter import load_private_key
from proxy.cli import main
from proxy.config import ConfigError
from proxy.keygen import write_key
from proxy.keyring import KeyRing
from proxy.logs import JsonFormatter, TextFormatter, safe_path
from proxy.process import ROTATION_LEEWAY_S, event_loop_factory, reload_keys
from proxy.redact import redact
from proxy.services import SERVICES
from tests.stack import Browser, Stack, decode


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in ("serve", "origin", "demo", "keygen", "check-config"):
        assert command in out
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "--workers" in capsys.readouterr().out


# -- event loop ---------------------------------------------------------------------------------


def test_asyncio_is_the_default_loop() -> None:
    assert event_loop_factory("asyncio") is None


def test_auto_uses_uvloop_exactly_when_it_is_installed() -> None:
    installed = importlib.util.find_spec("uvloop") is not None
    assert (event_loop_factory("auto") is not None) == installed


def test_uvloop_asked_for_but_missing_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if it were not installed
    with pytest.raises(ConfigError, match=r'server\.loop: "uvloop" is not installed'):
        event_loop_factory("uvloop")
    assert event_loop_factory("auto") is None


# -- log shapes -------------------------------------------------------------------------------


def request_record() -> logging.LogRecord:
    record = logging.LogRecord(
        "session_minter.request", logging.INFO, __file__, 1, "%s", ("POST /x 200",), None
    )
    fields = {
        "request_id": "abc",
        "route": "token",
        "status": 200,
        "decision": "minted",
        "reason": "edge",
        "latency_ms": 1.5,
    }
    record.__dict__.update(fields)
    return record


def test_json_lines_carry_the_request_fields() -> None:
    line = JsonFormatter().format(request_record())
    assert "\n" not in line
    document = json.loads(line)
    assert document["level"] == "info"
    assert document["logger"] == "session_minter.request"
    assert document["message"] == "POST /x 200"
    assert document["time"].endswith("+00:00")
    assert (document["request_id"], document["decision"], document["latency_ms"]) == (
        "abc",
        "minted",
        1.5,
    )


def test_json_lines_hold_a_traceback_in_one_line() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "RuntimeError: boom" in json.loads(line)["exc"]


def test_text_lines_append_the_request_fields() -> None:
    line = TextFormatter().format(request_record())
    assert line.endswith(
        "session_minter.request: POST /x 200 request_id=abc route=token status=200"
        " decision=minted reason=edge latency_ms=1.5"
    )


def test_logged_paths_hold_no_token_and_no_query() -> None:
    token = "opaque-client-credential"
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl"
    path = safe_path(f"/v1/things/{jwt}/x?expired_token={token}")
    assert jwt not in path
    assert token not in path
    assert path.startswith("/v1/things/<jwt:")
    assert path.endswith(">/x")
    assert len(safe_path("/" + "a" * 5000)) == 256


def test_access_lines_hold_no_jwt_under_any_key_nor_in_a_referer() -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl"
    line = (
        f'127.0.0.1 "POST /v1/client/sessions/sess_1/tokens?expired%5Ftoken={jwt}'
        f'&custom={jwt}&__clerk_db_jwt=opaque HTTP/1.1" 200 "https://app.test/?t={jwt}"'
    )
    cleaned = redact(line)
    assert "eyJ" not in cleaned
    assert "opaque" not in cleaned, "a named credential goes even when not JWT-shaped"
    assert cleaned.count("<jwt:") == 3
    assert cleaned.startswith('127.0.0.1 "POST /v1/client/sessions/sess_1/tokens?expired%5Ftoken=')


# -- key rotation, in time ---------------------------------------------------------------------


async def test_a_rotated_out_key_verifies_for_the_overlap_then_goes(
    stack: Stack, tmp_path: Path
) -> None:
    services = stack.edge_app[SERVICES]
    new_key = write_key(tmp_path / "rotation" / "new.pem")
    config = tmp_path / "rotation" / "edge.toml"
    config.write_text('[keys]\nsigning = ["new.pem"]\n', encoding="utf-8")
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        origin_token = (await browser.refresh(sid)).jwt
        assert reload_keys(services, config)
        assert services.keyring.active.kid == new_key.kid
        overlap = services.settings.tokens.lifetime_s + services.settings.tokens.widest_expired_s
        assert services.keyring.retiring == {
            stack.key.kid: stack.clock.now + overlap + ROTATION_LEEWAY_S
        }
        minted = (await browser.refresh(sid, token=origin_token)).jwt
        assert decode(minted)[0]["kid"] == new_key.kid
        async with browser.client.get(stack.edge_url + "/.well-known/jwks.json") as response:
            kids = [key["kid"] for key in (await response.json())["keys"]]
        assert kids[0] == new_key.kid
        assert stack.key.kid in kids

        stack.clock.advance(overlap + ROTATION_LEEWAY_S)
        assert services.keyring.retiring == {}
        # The instance key is still trusted here, as the origin's: only the edge's copy went.
        assert stack.key.kid in services.keyring.keys
        async with browser.client.get(stack.edge_url + "/metrics") as response:
            text = await response.text()
    assert 'session_minter_signing_keys{state="retiring"} 0.0' in text
    assert 'session_minter_key_reloads_total{result="ok"} 1.0' in text


async def test_a_distinct_edge_key_stops_verifying_after_the_overlap(
    stack: Stack, tmp_path: Path
) -> None:
    services = stack.edge_app[SERVICES]
    folder = tmp_path / "rotation"
    first, second = write_key(folder / "first.pem"), write_key(folder / "second.pem")
    config = folder / "edge.toml"
    config.write_text('[keys]\nsigning = ["first.pem"]\n', encoding="utf-8")
    assert reload_keys(services, config)
    async with Browser(stack.fapi) as browser:
        sid = await browser.sign_in()
        origin_token = (await browser.refresh(sid)).jwt
        by_first = (await browser.refresh(sid, token=origin_token)).jwt
        assert decode(by_first)[0]["kid"] == first.kid
        config.write_text('[keys]\nsigning = ["second.pem"]\n', encoding="utf-8")
        assert reload_keys(services, config)
        assert first.kid in services.keyring.keys
        stack.clock.advance(1)
        assert decode((await browser.refresh(sid, token=by_first)).jwt)[0]["kid"] == second.kid
        tokens = services.settings.tokens
        stack.clock.advance(tokens.lifetime_s + tokens.widest_expired_s + ROTATION_LEEWAY_S)
        assert first.kid not in services.keyring.keys
    assert stack.decisions()[("minted", "edge")] == 2


async def test_a_reload_with_a_bad_config_changes_nothing(stack: Stack, tmp_path: Path) -> None:
    services = stack.edge_app[SERVICES]
    config = tmp_path / "bad.toml"
    config.write_text('[keys]\nsigning = ["absent.pem"]\n', encoding="utf-8")
    assert not reload_keys(services, config)
    assert services.keyring.active.kid == stack.key.kid
    assert services.keyring.retiring == {}


def clashing_key(folder: Path, kid: str) -> Path:
    """A JWK file holding a new key under an existing `kid`."""
    path = folder / "clash.json"
    path.write_text(
        jwk.JWK.generate(kty="RSA", size=2048, kid=kid).export_private(), encoding="utf-8"
    )
    return path


async def test_a_reload_to_another_key_under_the_same_kid_is_refused(
    stack: Stack, tmp_path: Path
) -> None:
    services = stack.edge_app[SERVICES]
    clashing_key(tmp_path, stack.key.kid)
    config = tmp_path / "edge.toml"
    config.write_text('[keys]\nsigning = ["clash.json"]\n', encoding="utf-8")
    assert not reload_keys(services, config), "tokens the old key signed would stop verifying"
    assert services.keyring.active.public.jwk() == stack.key.public.jwk()
    assert services.keyring.retiring == {}


async def test_an_origin_key_under_the_edges_kid_is_logged_and_the_edges_kept(
    stack: Stack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    edge_key = load_private_key(clashing_key(tmp_path, stack.key.kid).read_bytes())
    keyring = KeyRing(
        [edge_key], jwks_url=stack.origin_url + "/v1/jwks", min_refetch_s=10, clock=stack.clock
    )
    async with aiohttp.ClientSession() as session:
        assert await keyring.refresh(session)
    assert keyring.keys[stack.key.kid].jwk() == edge_key.public.jwk()
    assert any(
        "another key under the edge's kid" in record.getMessage() for record in caplog.records
    )


def test_malformed_requests_are_logged_as_one_warning_without_traceback() -> None:
    import logging

    from aiohttp.http_exceptions import BadHttpMessage

    from proxy.logs import MalformedRequestFilter, TextFormatter

    try:
        raise BadHttpMessage("Transfer-Encoding with Content-Length: GET /x HTTP/1.1")
    except BadHttpMessage:
        import sys

        record = logging.LogRecord(
            "aiohttp.server",
            logging.ERROR,
            __file__,
            1,
            "Error handling request",
            (),
            sys.exc_info(),
        )
    assert MalformedRequestFilter().filter(record)
    line = TextFormatter().format(record)
    assert record.levelname == "WARNING"
    assert "Traceback" not in line
    assert "GET /x" not in line
    assert "BadHttpMessage 400" in line


def demo_once(**environment: str) -> subprocess.CompletedProcess[str]:
    """`session-minter demo --once` on free ports, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "proxy", "demo", "--once", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **environment},
    )


def test_demo_once_walks_through_an_edge_mint_and_exits_0() -> None:
    """The demo the README's first command (`bash scripts/demo`) runs, with --once on free ports."""
    done = demo_once()
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "refresh carrying the previous token: minted at the edge" in out
    assert "same claims, same oiat=" in out
    assert "it verifies against the edge's published JWKS" in out
    assert out.rstrip().endswith("walk-through complete.")


def test_fast_request_lines_have_the_formatters_shapes() -> None:
    import io

    from proxy.requestlines import RequestLines

    fields = {
        "request_id": "abc",
        "route": "token",
        "status": 200,
        "decision": "minted",
        "reason": "edge",
        "latency_ms": 1.5,
    }
    for log_format, formatter in (("json", JsonFormatter()), ("text", TextFormatter())):
        stream = io.StringIO()
        lines = RequestLines(log_format, stream.write)
        lines.write("POST /x 200", fields)
        written = stream.getvalue()
        assert written.count("\n") == 1
        expected = formatter.format(request_record())
        if log_format == "json":
            got, want = json.loads(written), json.loads(expected)
            assert list(got) == list(want)
            assert {k: v for k, v in got.items() if k != "time"} == {
                k: v for k, v in want.items() if k != "time"
            }
        else:
            assert written.rstrip("\n").split(" INFO ", 1)[1] == expected.split(" INFO ", 1)[1]


def test_fast_request_lines_time_each_line_to_the_millisecond() -> None:
    import datetime
    import io
    import time

    from proxy.requestlines import RequestLines

    json_lines, text_lines = (
        RequestLines("json", io.StringIO().write),
        RequestLines("text", io.StringIO().write),
    )
    # Two lines in one second (the second's text is reused), then the next second.
    for now in (1_795_540_637.25, 1_795_540_637.5, 1_795_540_638.125):
        document = json.loads(json_lines._json_line(now, "GET / 200", {}))
        assert document["time"] == datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat(
            timespec="milliseconds"
        )
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        assert text_lines._text_line(now, "GET / 200", {}).startswith(
            f"{stamp},{int(now * 1000) % 1000:03d} INFO "
        )


def test_demo_takes_environment_overrides() -> None:
    """`SESSION_MINTER_*` applies to the demo's embedded defaults (the load test uses it)."""
    done = demo_once(SESSION_MINTER_TOKENS__LIFETIME_S="30")
    assert done.returncode == 0, done.stdout + done.stderr
    edge_token = done.stdout.split("  edge token", 1)[1]
    iat, exp = map(int, re.search(r"iat=(\d+) exp=(\d+)", edge_token).groups())  # type: ignore[union-attr]
    assert exp - iat == 30
