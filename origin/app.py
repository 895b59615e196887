"""The app factory: routes, shared state, middlewares, and the resources' lifetimes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from origin import backend, fapi_client, fapi_sessions, faults, stats
from origin.cors import cors_middleware
from origin.errors import errors_middleware
from origin.faults import FAULTS, Faults, faults_middleware
from origin.keys import load_public_jwk, load_signing_key
from origin.push import pusher_ctx
from origin.settings import OriginSettings
from origin.state import STATE, OriginState
from origin.stats import STATS, Stats, stats_middleware
from origin.store import Store

log = logging.getLogger("origin")

SETTINGS = web.AppKey("origin_settings", OriginSettings)


def _routes(app: web.Application) -> None:
    r = app.router
    # Frontend API
    r.add_get("/v1/environment", fapi_client.get_environment, name="environment")
    r.add_get("/v1/jwks", fapi_client.get_jwks, name="jwks")
    r.add_get("/.well-known/jwks.json", fapi_client.get_jwks, name="jwks_well_known")
    r.add_post("/v1/dev_browser", fapi_client.post_dev_browser, name="dev_browser")
    r.add_get("/v1/client", fapi_client.get_client, name="client_get", allow_head=False)
    r.add_put("/v1/client", fapi_client.create_client, name="client_put")
    r.add_post("/v1/client", fapi_client.post_client, name="client_post")
    r.add_delete("/v1/client", fapi_client.delete_client, name="client_delete")
    r.add_post("/v1/client/sign_ins", fapi_client.post_sign_in, name="sign_ins")
    r.add_delete(
        "/v1/client/sessions", fapi_client.delete_client_sessions, name="client_sessions_delete"
    )
    r.add_post("/v1/client/sessions", fapi_client.post_client_sessions, name="client_sessions_post")
    sessions = "/v1/client/sessions/{sid}"
    r.add_post(sessions + "/tokens", fapi_sessions.post_tokens, name="tokens")
    r.add_post(
        sessions + "/tokens/{template}", fapi_sessions.post_template_token, name="tokens_template"
    )
    r.add_post(sessions + "/touch", fapi_sessions.post_touch, name="session_touch")
    r.add_post(sessions + "/end", fapi_sessions.post_end, name="session_end")
    r.add_post(sessions + "/remove", fapi_sessions.post_remove, name="session_remove")
    r.add_delete(sessions, fapi_sessions.delete_session, name="session_delete")
    r.add_post(sessions, fapi_sessions.post_session, name="session_post")
    r.add_post(
        "/v1/me/sessions/{sid}/revoke", fapi_sessions.post_me_session_revoke, name="me_revoke"
    )
    # Backend API
    r.add_patch(
        "/backend/v1/organizations/{org_id}/memberships/{user_id}",
        backend.patch_membership,
        name="backend_membership",
    )
    r.add_patch(
        "/backend/v1/users/{user_id}/metadata",
        backend.patch_user_metadata,
        name="backend_user_metadata",
    )
    r.add_post("/backend/v1/sessions/{sid}/revoke", backend.revoke_session, name="backend_revoke")
    # Test and load knobs
    r.add_get("/__origin/faults", faults.get_faults, name="faults_get")
    r.add_post("/__origin/faults", faults.set_faults, name="faults_set")
    r.add_get("/__origin/stats", stats.get_stats, name="stats_get")
    r.add_delete("/__origin/stats", stats.reset_stats, name="stats_reset")


async def _state_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: open (create, seed) the database and load the keys; close on exit."""
    settings = app[SETTINGS]
    key = load_signing_key(settings.signing_key)
    published = tuple(load_public_jwk(path) for path in settings.published_keys)
    store = Store.open(settings.database, int(settings.clock() * 1000))
    app[STATE] = OriginState(settings=settings, store=store, key=key, published=published)
    log.info(
        "origin ready", extra={"kid": key.kid, "alg": key.alg, "database": str(settings.database)}
    )
    try:
        yield
    finally:
        store.close()


async def _release_hangs(app: web.Application) -> None:
    app[FAULTS].close()


def create_app(settings: OriginSettings) -> web.Application:
    """The reference origin as an aiohttp app; the database opens when the app starts."""
    app = web.Application(
        middlewares=[cors_middleware, errors_middleware, stats_middleware, faults_middleware],
        client_max_size=1024 * 1024,
    )
    app[SETTINGS] = settings
    app[FAULTS] = Faults()
    app[STATS] = Stats()
    app.cleanup_ctx.append(_state_ctx)
    app.cleanup_ctx.append(pusher_ctx)
    app.on_shutdown.append(_release_hangs)
    _routes(app)
    return app
