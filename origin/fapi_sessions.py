"""FAPI: one session of the requesting client: tokens, touch, sign-outs; and
`POST /v1/me/sessions/{sid}/revoke`, the signed-in user ending one of their
sessions on another device."""

from __future__ import annotations

from aiohttp import web

from origin import shapes
from origin.credentials import find_client, hand_out
from origin.errors import NotFound, SignedOut
from origin.fapi_client import azp_of
from origin.forms import read_form
from origin.minting import (
    client_payload,
    mint_session_token,
    mint_template_token,
    session_payload,
)
from origin.responses import json_response
from origin.state import STATE, OriginState
from origin.store import Client, Session, User

NO_STORE = {"Cache-Control": "no-store"}


def _owned_session(state: OriginState, request: web.Request) -> tuple[Client, Session]:
    """The path's session if the requesting client owns it: 401 without a client, else 404."""
    client = find_client(state, request)
    if client is None:
        raise SignedOut("You are signed out: no client was presented")
    session_id = request.match_info["sid"]
    session = state.store.session(session_id)
    if session is None or session.client_id != client.id:
        raise NotFound(f"Session {session_id} not found", meta={"param_name": "session_id"})
    return client, session


def _active_session(state: OriginState, request: web.Request) -> tuple[Client, Session, User]:
    client, session = _owned_session(state, request)
    if session.status == "active" and state.now_ms() >= session.expire_at:
        state.store.set_session_status(session.id, "expired", state.now_ms())
        raise SignedOut(f"Session {session.id} has expired")
    if session.status != "active":
        raise SignedOut(f"Session {session.id} is {session.status}")
    user = state.store.user(session.user_id)
    if user is None:
        raise SignedOut(f"The user of session {session.id} no longer exists")
    return client, session, user


async def post_tokens(request: web.Request) -> web.Response:
    """A session token for `organization_id` (absent: the session's active one).

    A token for another organization leaves the session's active organization and
    `last_active_token` alone: clerk-js's `getToken({organizationId})` "does not
    modify the session's currently active organization"; `touch` switches it.
    """
    state = request.app[STATE]
    form = await read_form(request)
    _, session, user = _active_session(state, request)
    raw_org = form.get("organization_id")
    org_id = (session.last_active_org_id if raw_org is None else str(raw_org)) or None
    token = mint_session_token(
        state,
        session,
        user,
        org_id,
        azp_of(request),
        activate=org_id == session.last_active_org_id,
    )
    response = json_response(shapes.token_json(token), headers=NO_STORE)
    hand_out(request, response, None)
    return response


async def post_template_token(request: web.Request) -> web.Response:
    state = request.app[STATE]
    _, session, user = _active_session(state, request)
    name = request.match_info["template"]
    template = state.store.template(name)
    if template is None:
        raise NotFound(f"JWT template {name} not found", meta={"param_name": "template"})
    token = mint_template_token(state, session, user, template, azp_of(request))
    response = json_response(shapes.token_json(token), headers=NO_STORE)
    hand_out(request, response, None)
    return response


async def post_touch(request: web.Request) -> web.Response:
    """`setActive`: make the session the client's last active one, maybe switch organization."""
    state = request.app[STATE]
    form = await read_form(request)
    client, session, user = _active_session(state, request)
    raw_org = form.get("active_organization_id")
    org_id = session.last_active_org_id if raw_org is None else (str(raw_org) or None)
    if org_id != session.last_active_org_id:
        mint_session_token(state, session, user, org_id, azp_of(request))
    state.store.set_last_active_session(client.id, session.id, state.now_ms())
    return _session_answer(state, request, client, session.id)


def _session_answer(
    state: OriginState, request: web.Request, client: Client, session_id: str
) -> web.Response:
    session = state.store.session(session_id)
    if session is None:
        raise NotFound(f"Session {session_id} not found")
    azp = azp_of(request)
    body = shapes.envelope(session_payload(state, session, azp), client_payload(state, client, azp))
    response = json_response(body)
    hand_out(request, response, None)
    return response


async def _finish(request: web.Request, status: str) -> web.Response:
    state = request.app[STATE]
    client, session = _owned_session(state, request)
    now_ms = state.now_ms()
    if session.status == "active":
        state.store.set_session_status(session.id, status, now_ms)
    if client.last_active_session_id == session.id:
        remaining = state.store.sessions_of_client(client.id)
        state.store.set_last_active_session(
            client.id, remaining[-1].id if remaining else None, now_ms
        )
    return _session_answer(state, request, client, session.id)


async def post_end(request: web.Request) -> web.Response:
    return await _finish(request, "ended")


async def post_remove(request: web.Request) -> web.Response:
    return await _finish(request, "removed")


async def delete_session(request: web.Request) -> web.Response:
    return await _finish(request, "removed")


async def post_session(request: web.Request) -> web.Response:
    """`POST /v1/client/sessions/{sid}?_method=DELETE`; other POSTs are not allowed."""
    if request.query.get("_method", "").upper() == "DELETE":
        return await delete_session(request)
    raise web.HTTPMethodNotAllowed("POST", ["DELETE"])


async def post_me_session_revoke(request: web.Request) -> web.Response:
    """Revoke a session of the signed-in user (the client's last active session's user)."""
    state = request.app[STATE]
    client = find_client(state, request)
    current_id = client.last_active_session_id if client is not None else None
    current = state.store.session(current_id) if current_id is not None else None
    if client is None or current is None or current.status != "active":
        raise SignedOut("You are signed out")
    session_id = request.match_info["sid"]
    session = state.store.session(session_id)
    if session is None or session.user_id != current.user_id:
        raise NotFound(f"Session {session_id} not found", meta={"param_name": "session_id"})
    if session.client_id == client.id:
        return await _finish(request, "revoked")
    if session.status == "active":
        state.store.set_session_status(session.id, "revoked", state.now_ms())
    return _session_answer(state, request, client, session.id)
