"""FAPI: environment, JWKS, the client resource and password sign-in."""

from __future__ import annotations

import asyncio
import secrets

from aiohttp import web

from origin import keys, shapes
from origin.credentials import find_client, find_or_create_client, hand_out
from origin.environment import environment_json
from origin.errors import FormError, SignedOut
from origin.forms import read_form
from origin.minting import client_payload, mint_session_token
from origin.passwords import verify_password
from origin.responses import json_response
from origin.state import STATE, new_id

ENDED = "ended"
REMOVED = "removed"


def azp_of(request: web.Request) -> str | None:
    return request.headers.get("Origin") or None


async def get_environment(request: web.Request) -> web.Response:
    settings = request.app[STATE].settings
    return json_response(environment_json(settings.issuer, session_minter=settings.session_minter))


async def get_jwks(request: web.Request) -> web.Response:
    state = request.app[STATE]
    document = keys.jwks([state.key.public, *state.published])
    return json_response(document, headers={"Cache-Control": "public, max-age=60"})


async def post_dev_browser(request: web.Request) -> web.Response:
    """Development instances ask for a dev browser first; answer one (it is not used)."""
    return json_response(
        {"object": "dev_browser", "id": new_id("dvb"), "token": secrets.token_urlsafe(24)}
    )


async def get_client(request: web.Request) -> web.Response:
    state = request.app[STATE]
    client = find_client(state, request)
    if client is None:
        return json_response(shapes.envelope(None))
    response = json_response(shapes.envelope(client_payload(state, client, azp_of(request))))
    hand_out(request, response, None)
    return response


async def create_client(request: web.Request) -> web.Response:
    state = request.app[STATE]
    client, credential = find_or_create_client(state, request)
    response = json_response(shapes.envelope(client_payload(state, client, azp_of(request))))
    hand_out(request, response, credential)
    return response


async def _sign_out_all(request: web.Request, status: str) -> web.Response:
    """Sign out of every session; the answer's client lists the sessions that were closed."""
    state = request.app[STATE]
    client = find_client(state, request)
    if client is None:
        raise SignedOut("There is no client to sign out of")
    now_ms = state.now_ms()
    ended = state.store.sessions_of_client(client.id)
    for session in ended:
        state.store.set_session_status(session.id, status, now_ms)
    state.store.set_last_active_session(client.id, None, now_ms)
    ended = [s for s in (state.store.session(x.id) for x in ended) if s is not None]
    body = client_payload(state, client, azp_of(request), sessions=ended)
    response = json_response(shapes.envelope(body))
    hand_out(request, response, None)
    return response


async def delete_client(request: web.Request) -> web.Response:
    """`DELETE /v1/client` (clerk-js `client.destroy()`): sessions end."""
    return await _sign_out_all(request, ENDED)


async def delete_client_sessions(request: web.Request) -> web.Response:
    """`DELETE /v1/client/sessions` (clerk-js `signOut()`): sessions are removed."""
    return await _sign_out_all(request, REMOVED)


async def post_client_sessions(request: web.Request) -> web.Response:
    """clerk-js sends DELETE as `POST ...?_method=DELETE`; a plain POST is not allowed."""
    if request.query.get("_method", "").upper() == "DELETE":
        return await delete_client_sessions(request)
    raise web.HTTPMethodNotAllowed("POST", ["DELETE"])


async def post_client(request: web.Request) -> web.Response:
    if request.query.get("_method", "").upper() == "DELETE":
        return await delete_client(request)
    return await create_client(request)


async def post_sign_in(request: web.Request) -> web.Response:
    """Password sign-in, completed in one request: creates a session."""
    state = request.app[STATE]
    form = await read_form(request)
    identifier = str(form.get("identifier", "")).strip()
    password = str(form.get("password", ""))
    strategy = str(form.get("strategy", "password"))
    if not identifier:
        raise FormError(
            "Enter an email address.", code="form_param_missing", param_name="identifier"
        )
    if strategy != "password":
        raise FormError(
            f"Strategy {strategy!r} is not supported; use password.",
            code="form_param_value_invalid",
            param_name="strategy",
        )
    if not password:
        raise FormError("Enter a password.", code="form_param_missing", param_name="password")
    user = state.store.user_by_email(identifier)
    if user is None:
        raise FormError(
            "Couldn't find your account.", code="form_identifier_not_found", param_name="identifier"
        )
    if not await asyncio.to_thread(verify_password, password, user.password_hash):
        raise FormError(
            "Password is incorrect. Try again, or use another method.",
            code="form_password_incorrect",
            param_name="password",
        )

    client, credential = find_or_create_client(state, request)
    now_ms = state.now_ms()
    session = state.store.create_session(new_id("sess"), client.id, user.id, now_ms, None)
    mint_session_token(state, session, user, None, azp_of(request))
    state.store.set_last_active_session(client.id, session.id, now_ms)
    sign_in = shapes.sign_in_json(new_id("sia"), identifier, user, session.id, now_ms)
    body = shapes.envelope(sign_in, client_payload(state, client, azp_of(request)))
    response = json_response(body)
    hand_out(request, response, credential)
    return response
