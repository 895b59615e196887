"""Dispatch on the raw path: the edge's own routes, the token route, and forwarding.

Matching is on the raw request target, byte for byte (no decoding, no
normalisation), so what is not exactly an edge route is forwarded as sent.
An absolute-form target (`http://host/...`) is refused with a 400: the
edge is a reverse proxy for one origin. (aiohttp's router answers other
targets that are not a path, such as `*`, with its own 404.) A body in a
transfer coding other than `chunked` (`Transfer-Encoding: gzip, chunked`)
is refused with a 501: the parser only undoes the chunking, so the body
would otherwise go on still gzip-coded, with nothing saying so.
The edge's routes live under `{prefix}`; `/healthz`, `/readyz` and
`/metrics` are answered at the root, to `GET` and `HEAD` (`/metrics` only when no
`server.metrics_port` is set; with one, it is served there alone). Each
branch names its route for the request log and the request metrics. A
request body that stops arriving for `server.body_timeout_s` ends the
request with a 408 (`reading.py`).
"""

from __future__ import annotations

import logging
import os

from aiohttp import web

from .admin import ADMIN_OUTAGE_PATH, handle_admin_outage
from .clients import client_key
from .errors import clerk_error
from .forward import OriginFailure, fetch_buffered, forward_streaming
from .headers import forwarded_response_headers, has_unsupported_transfer_coding
from .limits import LIMITS
from .logs import note_route
from .metrics import metrics_response
from .push import handle_push
from .reading import BodyStalled, read_capped
from .services import SERVICES, Services
from .signout import SignOut, session_ids_in, session_ids_in_cookies, sign_out_of
from .store import StoreUnavailable
from .tokens import TOKEN_PATH, handle_refresh

__all__ = ["dispatch"]

log = logging.getLogger(__name__)

_MAX_SIGN_OUT_BODY = 64 * 1024
_OPERATIONS = frozenset({"/healthz", "/readyz", "/metrics"})


async def dispatch(request: web.Request) -> web.StreamResponse:
    try:
        return await _dispatch(request)
    except BodyStalled:
        return clerk_error(request, 408, "request_timeout", "the request body stopped arriving")


async def _dispatch(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    raw_path, _, query = request.raw_path.partition("?")
    if not raw_path.startswith("/"):  # absolute-form: this is no forward proxy
        note_route(request, "refused")
        return clerk_error(
            request, 400, "invalid_request_target", "send the request target as a path"
        )
    if has_unsupported_transfer_coding(request.headers):
        note_route(request, "refused")
        return clerk_error(
            request, 501, "unsupported_transfer_coding", "send the body chunked or with a length"
        )
    server = services.settings.server
    prefix = server.prefix
    if (
        raw_path in _OPERATIONS
        and request.method in ("GET", "HEAD")
        and (raw_path != "/metrics" or not server.metrics_port)
    ):
        note_route(request, raw_path[1:])
        return await _operations(request, services, raw_path)
    if prefix:
        if not raw_path.startswith(prefix + "/"):
            return await _forward(request, services)
        raw_path = raw_path[len(prefix) :]
    if request.method == "POST":
        match = TOKEN_PATH.fullmatch(raw_path)
        if match is not None:
            note_route(request, "token" if match["template"] is None else "template_token")
            return await handle_refresh(request, match["sid"], match["template"])
        if raw_path == "/__minter/push":
            note_route(request, "push")
            return await handle_push(request)
    if raw_path == ADMIN_OUTAGE_PATH:
        note_route(request, "admin")
        return await handle_admin_outage(request)
    if raw_path == "/.well-known/jwks.json" and request.method in ("GET", "HEAD"):
        note_route(request, "jwks")
        return _jwks(request, services)
    sign_out = sign_out_of(request.method, raw_path, query)
    if sign_out is not None:
        note_route(request, "sign_out")
        return await _forward_sign_out(request, services, sign_out)
    return await _forward(request, services)


async def _forward(request: web.Request, services: Services) -> web.StreamResponse:
    """Stream a request to the origin, within its client's share of the pool."""
    with request.app[LIMITS].forward_slot(request) as refused:
        if refused is not None:
            return refused
        return await forward_streaming(services.origin, request)


def _jwks(request: web.Request, services: Services) -> web.Response:
    keyring = services.keyring
    headers = {"Cache-Control": "public, max-age=300", "ETag": keyring.jwks_etag}
    if _matches(request.headers.get("If-None-Match"), keyring.jwks_etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=keyring.jwks_body, content_type="application/json", headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 13.1.2: `*`, or any listed tag equal to `etag` by weak comparison."""
    if if_none_match is None:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag.removeprefix("W/") in tags


async def _operations(request: web.Request, services: Services, path: str) -> web.Response:
    if path == "/healthz":  # the process answers; the pid tells workers apart
        return web.json_response({"status": "ok", "pid": os.getpid()})
    if path == "/metrics":
        return metrics_response(services.metrics)
    return await _readiness(services)


async def _readiness(services: Services) -> web.Response:
    """503 until the edge can do its own work (keys loaded, the origin's JWKS known).

    The session store is reported, not required: with the store down the
    edge mints nothing but still forwards every request and sends every
    refresh to the origin ("degraded"). Every edge shares that store, so
    failing readiness on it would take all of them out of the balancer at
    once, sign-ins included, for want of a cache.
    """
    checks = {
        "keys": bool(services.keyring.signing),
        "origin_jwks": services.keyring.origin_keys_known,
        "store": await services.store.ping(),
    }
    ready = checks["keys"] and checks["origin_jwks"]
    status = "ready" if all(checks.values()) else "degraded" if ready else "not_ready"
    return web.json_response({"status": status, "checks": checks}, status=200 if ready else 503)


async def _forward_sign_out(
    request: web.Request, services: Services, sign_out: SignOut
) -> web.StreamResponse:
    """Forward a sign-out whole, and revoke what it ended once the origin said 2xx."""
    body = await read_capped(request, _MAX_SIGN_OUT_BODY)
    if body is None:
        return clerk_error(request, 413, "request_too_large", "the request body is too large")
    try:
        answer = await fetch_buffered(
            services.origin, request, raw_path=request.raw_path, body=body
        )
    except OriginFailure as exc:
        status = 504 if exc.kind == "timeout" else 502
        return clerk_error(request, status, "origin_unavailable", "the origin could not answer")
    if 200 <= answer.status < 300:
        if sign_out.session_id is not None:
            ended = {sign_out.session_id}
        else:
            ended = session_ids_in(answer.body) | session_ids_in_cookies(
                request.cookies,
                keys=services.keyring.keys,
                rules=services.rules,
                now=services.now(),
            )
            key = client_key(request)
            if key is not None:
                try:
                    ended |= await services.store.client_sessions(key)
                except StoreUnavailable:
                    services.metrics.store_errors.inc()
        try:
            await services.store.revoke(ended)
            services.metrics.revocations.labels("sign_out").inc(len(ended))
        except StoreUnavailable:
            services.metrics.store_errors.inc()
            log.error("sign-out of %d sessions could not be recorded", len(ended))
    return web.Response(
        status=answer.status, body=answer.body, headers=forwarded_response_headers(answer.headers)
    )
