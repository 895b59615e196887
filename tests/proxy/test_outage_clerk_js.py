"""The real @clerk/clerk-js, legacy flow (`session_minter` off), through an origin outage.

With `auth_config.session_minter` false, clerk-js never posts `token`. Its
refresh reaches the edge with no token; the origin is down, so the edge
answers 422 `missing_expired_token`, and clerk-js retries once with its last
active token as `expired_token` in the query, which the edge mints.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.config import ServerSettings
from proxy.services import SERVICES
from tests.clerkjs import clerk_js_installed, run_clerk_js
from tests.stack import FakeClock, decode, running_stack


@pytest.mark.parametrize("failure", ["stopped", "error503"])
async def test_legacy_clerk_js_retries_with_expired_token_and_gets_an_edge_token(
    tmp_path: Path, clock: FakeClock, failure: str
) -> None:
    assert clerk_js_installed(), "run `npm ci` in tests/js (scripts/test does)"
    async with running_stack(
        tmp_path,
        clock,
        server=ServerSettings(prefix="/__clerk"),
        origin={"breaker_failures": 1, "timeout_s": 2.0, "connect_timeout_s": 1.0},
        origin_options={"session_minter": False},
    ) as stack:

        async def on_pause(label: str) -> None:
            assert label == "origin_down"
            if failure == "stopped":
                await stack.stop_origin()
            else:
                await stack.origin_faults("error503")

        run = await run_clerk_js(
            stack.fapi, ["load", "sign_in", "pause:origin_down", "refresh"], on_pause=on_pause
        )
        assert run.returncode == 0, run.stderr + str(run.events[-4:])
        decisions = stack.decisions()
        breaker = str(stack.edge_app[SERVICES].health.state)

    assert run.steps["load"]["session_minter"] is False
    signed_in = run.steps["sign_in"]["last_active_token"]["token"]
    assert signed_in, "the sign-in answer carried the session's last active token"

    token_requests = run.requests("/tokens")
    responses = {e["seq"]: e for e in run.events if e.get("event") == "response"}
    assert len(token_requests) == 2, token_requests
    first, retry = token_requests
    assert "token" not in first["form"], "flag off: clerk-js does not post its token"
    assert "expired_token" not in first["query"]
    assert responses[first["seq"]]["status"] == 422
    assert responses[first["seq"]]["error_codes"] == ["missing_expired_token"]
    assert retry["query"]["expired_token"] == signed_in
    assert "token" not in retry["form"]
    assert responses[retry["seq"]]["status"] == 200

    refreshed = run.steps["refresh"]["token"]
    assert refreshed == responses[retry["seq"]]["jwt"]
    assert refreshed != signed_in
    assert decode(refreshed)[0]["oiat"] == decode(signed_in)[0]["oiat"]
    assert decode(refreshed)[1]["sid"] == decode(signed_in)[1]["sid"]
    assert decisions == {("refused", "no_token"): 1, ("minted", "outage"): 1}
    assert breaker == "open"
    statuses = [e["status"] for e in run.events if e.get("event") == "response"]
    assert 401 not in statuses
    assert 403 not in statuses
