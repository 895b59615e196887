"""Fault knobs: 503s, hangs, added latency; and the admin endpoints' guard."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from origin_helpers import ADMIN, Client, sign_in

from origin.faults import FAULTS


async def _set(origin: Client, **body: Any) -> dict[str, Any]:
    response = await origin.post("/__origin/faults", json=body, headers=ADMIN)
    assert response.status == 200
    result: dict[str, Any] = await response.json()
    return result


async def test_error503_fails_every_fapi_request_in_clerk_shape(origin: Client) -> None:
    sid = (await sign_in(origin))["response"]["created_session_id"]
    assert await _set(origin, mode="error503") == {"mode": "error503", "latency_ms": 0, "held": 0}
    for method, path in [
        ("GET", "/v1/environment"),
        ("GET", "/v1/client"),
        ("POST", f"/v1/client/sessions/{sid}/tokens"),
        ("GET", "/v1/jwks"),
    ]:
        response = await origin.request(method, path)
        assert response.status == 503, path
        assert response.headers["Retry-After"] == "1"
        [error] = (await response.json())["errors"]
        assert error["code"] == "service_unavailable"

    # the backend API still answers, and the origin recovers when told to
    response = await origin.post(f"/backend/v1/sessions/{sid}/revoke", headers=ADMIN)
    assert response.status == 200
    await _set(origin, mode="ok")
    assert (await origin.get("/v1/environment")).status == 200


async def test_error503_requests_are_still_counted(origin: Client) -> None:
    await _set(origin, mode="error503")
    await origin.post("/v1/client/sessions/sess_x/tokens", data={"organization_id": "org_1"})
    stats = await (await origin.get("/__origin/stats", headers=ADMIN)).json()
    assert stats["tokens"] == 1
    assert stats["last_token_request"]["form"] == {"organization_id": "org_1"}


async def test_hang_holds_requests_until_the_mode_changes(origin: Client) -> None:
    sid = (await sign_in(origin))["response"]["created_session_id"]
    await _set(origin, mode="hang")
    faults = origin.app[FAULTS]

    pending = asyncio.ensure_future(
        origin.post(f"/v1/client/sessions/{sid}/tokens", data={"organization_id": ""})
    )
    await faults.wait_held(1)
    assert not pending.done()
    shown = await (await origin.get("/__origin/faults", headers=ADMIN)).json()
    assert shown == {"mode": "hang", "latency_ms": 0, "held": 1}

    await _set(origin, mode="ok")
    response = await pending
    assert response.status == 200
    assert (await response.json())["object"] == "token"
    assert faults.held == 0


async def test_hang_then_error503_answers_the_held_requests_with_503(origin: Client) -> None:
    await _set(origin, mode="hang")
    pending = asyncio.ensure_future(origin.get("/v1/environment"))
    await origin.app[FAULTS].wait_held(1)
    await _set(origin, mode="error503")
    assert (await pending).status == 503


async def test_slow_mode_is_shown_and_still_answers(origin: Client) -> None:
    assert await _set(origin, mode="slow", latency_ms=5) == {
        "mode": "slow",
        "latency_ms": 5,
        "held": 0,
    }
    response = await origin.get("/v1/environment")
    assert response.status == 200


async def test_settings_latency_still_answers(make_origin: Any) -> None:
    origin = await make_origin(latency_ms=1)
    assert (await origin.get("/v1/environment")).status == 200


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "explode"},
        {"mode": "slow", "latency_ms": -1},
        {"mode": "slow", "latency_ms": "5"},
        ["ok"],
    ],
)
async def test_bad_fault_settings_are_refused(origin: Client, body: Any) -> None:
    response = await origin.post("/__origin/faults", json=body, headers=ADMIN)
    assert response.status == 400
    assert "errors" in await response.json()
    shown = await (await origin.get("/__origin/faults", headers=ADMIN)).json()
    assert shown["mode"] == "ok"


async def test_fault_settings_are_read_as_utf8_whatever_charset_they_name(
    origin: Client,
) -> None:
    response = await origin.post(
        "/__origin/faults",
        data=b'{"mode": "slow", "latency_ms": 1}',
        headers={**ADMIN, "Content-Type": "application/json; charset=no-such"},
    )
    assert response.status == 200
    assert (await response.json())["mode"] == "slow"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/__origin/faults"),
        ("POST", "/__origin/faults"),
        ("GET", "/__origin/stats"),
        ("DELETE", "/__origin/stats"),
    ],
)
async def test_admin_endpoints_need_the_secret_key(origin: Client, method: str, path: str) -> None:
    response = await origin.request(
        method, path, json={"mode": "error503"}, headers={"Authorization": "Bearer nope"}
    )
    assert response.status == 401
    assert (await response.json())["errors"][0]["code"] == "authentication_invalid"
    assert (await origin.get("/v1/environment")).status == 200


async def test_stats_reset(origin: Client) -> None:
    await origin.get("/v1/environment")
    await origin.get("/v1/environment")
    stats = await (await origin.get("/__origin/stats", headers=ADMIN)).json()
    assert stats["environment"] == 2
    reset = await (await origin.delete("/__origin/stats", headers=ADMIN)).json()
    assert reset == {"last_token_request": None}
