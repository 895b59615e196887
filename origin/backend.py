"""Backend API (bearer secret key): membership roles, user metadata, session revocation.

Each change is pushed to the configured edges (see `origin.push`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from origin import shapes
from origin.auth import require_bearer
from origin.errors import BadRequest, FormError, NotFound
from origin.forms import read_form, read_json
from origin.push import PUSHER
from origin.responses import json_response
from origin.state import STATE


async def _body(request: web.Request) -> dict[str, Any]:
    """A JSON object or a form, as a dict."""
    if request.content_type == "application/json":
        data = await read_json(request)
        if not isinstance(data, dict):
            raise BadRequest("The body must be a JSON object", code="request_body_invalid")
        return data
    form = await read_form(request)
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def patch_membership(request: web.Request) -> web.Response:
    state = request.app[STATE]
    require_bearer(request, state.settings.secret_key)
    org_id, user_id = request.match_info["org_id"], request.match_info["user_id"]
    role = (await _body(request)).get("role")
    if not isinstance(role, str) or not role:
        raise FormError("role is required", code="form_param_missing", param_name="role")
    if not state.store.role_exists(role):
        raise FormError(
            f"Role {role} does not exist", code="form_param_value_invalid", param_name="role"
        )
    if state.store.membership(org_id, user_id) is None:
        raise NotFound(f"No membership of user {user_id} in organization {org_id}")
    state.store.set_membership_role(org_id, user_id, role, state.now_ms())
    await request.app[PUSHER].push({"stale_users": [user_id]})
    membership = state.store.membership(org_id, user_id)
    user = state.store.user(user_id)
    if membership is None:
        raise NotFound(f"No membership of user {user_id} in organization {org_id}")
    return json_response(shapes.membership_json(membership, user))


async def patch_user_metadata(request: web.Request) -> web.Response:
    """Merge `public_metadata` into the user's (a null value deletes the key)."""
    state = request.app[STATE]
    require_bearer(request, state.settings.secret_key)
    user_id = request.match_info["user_id"]
    user = state.store.user(user_id)
    if user is None:
        raise NotFound(f"User {user_id} not found")
    patch = (await _body(request)).get("public_metadata", {})
    if not isinstance(patch, dict):
        raise FormError(
            "public_metadata must be an object",
            code="form_param_format_invalid",
            param_name="public_metadata",
        )
    merged = {**user.public_metadata, **patch}
    merged = {k: v for k, v in merged.items() if v is not None}
    state.store.set_public_metadata(user_id, merged, state.now_ms())
    await request.app[PUSHER].push({"stale_users": [user_id]})
    updated = state.store.user(user_id) or user
    return json_response(shapes.user_json(updated, state.store.memberships_of(user_id)))


async def revoke_session(request: web.Request) -> web.Response:
    state = request.app[STATE]
    require_bearer(request, state.settings.secret_key)
    session_id = request.match_info["sid"]
    session = state.store.session(session_id)
    if session is None:
        raise NotFound(f"Session {session_id} not found")
    state.store.set_session_status(session_id, "revoked", state.now_ms())
    await request.app[PUSHER].push({"revoked_sessions": [session_id]})
    return json_response(shapes.backend_session_json(state.store.session(session_id) or session))
