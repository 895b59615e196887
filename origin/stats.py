"""Per-route request counts, kept in memory, and the last token request's fields.

`GET /__origin/stats` (bearer secret key) answers e.g.

    {"tokens": 3, "tokens_template": 1, "sign_ins": 1, ...,
     "last_token_request": {"method": "POST", "path": "...", "query": {...}, "form": {...}}}

so that tests can check what the origin actually received (for instance that
an edge stripped `token` and `force_origin`). `DELETE /__origin/stats` resets.
Requests to `/__origin/...` themselves are not counted; unmatched paths count
as `unmatched`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web

from origin.auth import require_bearer
from origin.errors import Handler
from origin.forms import read_form
from origin.responses import json_response
from origin.state import STATE

TOKEN_ROUTES = frozenset({"tokens", "tokens_template"})
# Routes that POST-with-`_method=DELETE` turns into deletes.
_METHOD_OVERRIDES = {
    "client_put": ("client_create", "client_create"),
    "client_post": ("client_create", "client_delete"),
    "session_post": ("session_post", "session_delete"),
    "client_sessions_post": ("client_sessions_post", "client_sessions_delete"),
}


class Stats:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.last_token_request: dict[str, Any] | None = None

    def reset(self) -> None:
        self.counts.clear()
        self.last_token_request = None

    def as_json(self) -> dict[str, Any]:
        return {**self.counts, "last_token_request": self.last_token_request}


STATS = web.AppKey("origin_stats", Stats)


def route_key(request: web.Request) -> str:
    name = request.match_info.route.name
    if name is None:
        return "unmatched"
    if name in _METHOD_OVERRIDES:
        plain, deleting = _METHOD_OVERRIDES[name]
        return deleting if request.query.get("_method", "").upper() == "DELETE" else plain
    return name


@web.middleware
async def stats_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/__origin/"):
        stats = request.app[STATS]
        key = route_key(request)
        stats.counts[key] += 1
        if key in TOKEN_ROUTES:
            form = await read_form(request)
            stats.last_token_request = {
                "method": request.method,
                "path": request.raw_path.split("?", 1)[0],
                "query": {k: v for k, v in request.query.items()},
                "form": {k: v for k, v in form.items() if isinstance(v, str)},
            }
    return await handler(request)


async def get_stats(request: web.Request) -> web.Response:
    require_bearer(request, request.app[STATE].settings.secret_key)
    return json_response(request.app[STATS].as_json())


async def reset_stats(request: web.Request) -> web.Response:
    require_bearer(request, request.app[STATE].settings.secret_key)
    request.app[STATS].reset()
    return json_response(request.app[STATS].as_json())
