"""`{prefix}/__minter/admin/outage`: force outage mode on or off, or hand it back.

`POST` with `Authorization: Bearer <[admin] secret>` and a JSON body
`{"mode": "auto" | "on" | "off"}` sets the mode; `GET` (same credential)
reads it. Both answer the health state `{"object": "outage", "mode",
"breaker", "outage", "recent_failures"}`. With an empty `[admin] secret`
the route is off: 404 whatever is presented. A missing or wrong credential
is 401 (this is not the token route; no browser SDK calls it). The secret is
compared in constant time. The mode lives in this process only: each edge
(and each worker) is set on its own, and a restart returns to the
configured `origin.outage`.
"""

from __future__ import annotations

import logging

import orjson
from aiohttp import web

from .bearer import bearer_matches
from .errors import clerk_error, json_response
from .health import FORCED_MODES
from .reading import read_capped
from .services import SERVICES

__all__ = ["ADMIN_OUTAGE_PATH", "handle_admin_outage"]

log = logging.getLogger(__name__)

ADMIN_OUTAGE_PATH = "/__minter/admin/outage"
_MAX_BODY = 4 * 1024


async def handle_admin_outage(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    secret = services.settings.admin.secret
    if not secret:
        return clerk_error(request, 404, "resource_not_found", "the admin API is disabled")
    if not bearer_matches(request, secret):
        return clerk_error(request, 401, "unauthorized", "the admin secret is missing or wrong")
    health = services.health
    if request.method == "POST":
        body = await read_capped(request, _MAX_BODY)
        if body is None:
            return clerk_error(request, 413, "request_too_large", "the body is too large")
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return clerk_error(request, 400, "invalid_json", "the body is not JSON")
        mode = document.get("mode") if isinstance(document, dict) else None
        if not isinstance(document, dict) or set(document) != {"mode"} or mode not in FORCED_MODES:
            return clerk_error(
                request, 400, "invalid_outage_mode", 'send {"mode": "auto" | "on" | "off"}'
            )
        health.forced = str(mode)
        log.warning("outage mode set to %s by the admin API", mode)
    elif request.method != "GET":
        return clerk_error(request, 405, "method_not_allowed", "use GET or POST")
    return json_response(request, 200, orjson.dumps({"object": "outage", **health.as_json()}))
