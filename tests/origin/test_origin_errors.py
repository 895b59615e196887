"""Every failure answers in Clerk's error shape; CORS preflights are answered."""

from __future__ import annotations

import io

import pytest
from origin_helpers import ADMIN, Client

from origin import seed


def _is_clerk_error(body: object) -> bool:
    if not isinstance(body, dict) or set(body) != {"errors"}:
        return False
    return all(set(e) == {"code", "message", "long_message", "meta"} for e in body["errors"])


async def test_unknown_path_is_a_clerk_404(origin: Client) -> None:
    response = await origin.get("/v1/no/such/thing")
    assert response.status == 404
    body = await response.json()
    assert _is_clerk_error(body)
    assert body["errors"][0]["code"] == "resource_not_found"
    stats = await (await origin.get("/__origin/stats", headers=ADMIN)).json()
    assert stats["unmatched"] == 1


async def test_unknown_root_path_is_a_clerk_404(origin: Client) -> None:
    response = await origin.get("/favicon.ico")
    assert response.status == 404
    assert _is_clerk_error(await response.json())


async def test_wrong_method_is_a_clerk_405(origin: Client) -> None:
    response = await origin.patch("/v1/environment")
    assert response.status == 405
    body = await response.json()
    assert _is_clerk_error(body)
    assert body["errors"][0]["code"] == "method_not_allowed"


async def test_malformed_json_on_the_backend_is_a_clerk_400(origin: Client) -> None:
    response = await origin.patch(
        "/backend/v1/organizations/org_acme/memberships/user_alice",
        data=b"{not json",
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert _is_clerk_error(await response.json())


async def test_an_unreadable_form_is_a_clerk_400(origin: Client) -> None:
    for path in ("/v1/client/sessions/sess_1/tokens", "/v1/client/sign_ins"):
        response = await origin.post(
            path, data=b"", headers={"Content-Type": "multipart/form-data; boundary=x"}
        )
        assert response.status == 400, path
        body = await response.json()
        assert _is_clerk_error(body)
        assert body["errors"][0]["code"] == "form_param_format_invalid"


async def test_a_form_in_an_unknown_charset_is_a_clerk_400(origin: Client) -> None:
    for path in ("/v1/client/sessions/sess_1/tokens", "/v1/client/sign_ins"):
        response = await origin.post(
            path,
            data=b"identifier=alice%40example.com",
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=no-such"},
        )
        assert response.status == 400, path
        body = await response.json()
        assert _is_clerk_error(body)
        assert body["errors"][0]["code"] == "form_param_format_invalid"


@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [
        ("POST", "/v1/client/sign_ins", "application/x-www-form-urlencoded"),
        ("POST", "/v1/client/sessions/sess_1/tokens", "application/x-www-form-urlencoded"),
        ("PATCH", f"/backend/v1/users/{seed.ALICE_ID}/metadata", "application/json"),
        ("POST", "/__origin/faults", "application/json"),
    ],
)
async def test_a_body_that_does_not_decompress_is_a_clerk_400(
    origin: Client, method: str, path: str, content_type: str
) -> None:
    response = await origin.request(
        method,
        path,
        data=b"not gzip at all",
        headers={**ADMIN, "Content-Type": content_type, "Content-Encoding": "gzip"},
    )
    assert response.status == 400
    assert _is_clerk_error(await response.json())


async def test_cors_preflight_is_answered(origin: Client) -> None:
    response = await origin.options(
        "/v1/client/sessions/sess_1/tokens",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"] == "content-type"


async def test_errors_carry_cors_headers_too(origin: Client) -> None:
    response = await origin.post(
        "/v1/client/sessions/sess_1/tokens", headers={"Origin": "http://localhost:3000"}
    )
    assert response.status == 401
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"


async def test_an_oversized_body_is_a_clerk_413(origin: Client) -> None:
    response = await origin.post(
        "/v1/client/sign_ins",
        data=io.BytesIO(b"identifier=" + b"x" * (2 * 1024 * 1024)),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 413
    body = await response.json()
    assert _is_clerk_error(body)
    assert body["errors"][0]["code"] == "request_body_too_large"
