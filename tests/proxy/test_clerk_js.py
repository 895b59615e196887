"""The real @clerk/clerk-js, headless in Node, gets its tokens through the edge."""

from __future__ import annotations

from pathlib import Path

from proxy.config import ServerSettings
from tests.clerkjs import clerk_js_installed, run_clerk_js
from tests.stack import FakeClock, decode, running_stack


async def test_clerk_js_refreshes_at_the_edge_and_skip_cache_reaches_origin(
    tmp_path: Path, clock: FakeClock
) -> None:
    assert clerk_js_installed(), "run `npm ci` in tests/js (scripts/test does)"
    async with running_stack(tmp_path, clock, server=ServerSettings(prefix="/__clerk")) as stack:
        run = await run_clerk_js(
            stack.fapi,
            ["load", "sign_in", "get_token", "refresh", "get_token_skip_cache", "refresh"],
        )
        assert run.returncode == 0, run.stderr + str(run.events[-3:])
        decisions = stack.decisions()
        origin_stats = await stack.origin_stats()

    token_requests = run.requests("/tokens")
    assert token_requests, "clerk-js asked for tokens"
    refreshes = [r for r in token_requests if "token" in r.get("form", {})]
    assert refreshes, "clerk-js posted its previous token"
    skip_cache = [r for r in token_requests if r.get("form", {}).get("force_origin") == "true"]
    assert len(skip_cache) == 1

    # both plain refreshes were minted at the edge; skipCache reached the origin
    assert decisions[("minted", "edge")] == 2
    assert decisions[("origin", "force_origin")] == 1
    last = origin_stats["last_token_request"]
    assert "token" not in last["form"]
    assert "force_origin" not in last["form"]

    first = run.steps["get_token"]["token"]
    edge_minted = run.steps["refresh"]["token"]
    assert decode(edge_minted)[0]["oiat"] >= decode(first)[0]["oiat"]
    assert decode(edge_minted)[1]["sid"] == decode(first)[1]["sid"]
