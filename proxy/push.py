"""`POST {prefix}/__minter/push`: the origin tells the edge what changed.

`Authorization: Bearer <[push] secret>` (compared in constant time; 401
without it) and a JSON body `{"revoked_sessions": [sid...],
"stale_sessions": [sid...], "stale_users": [user_id...]}`. Revoked sessions
are never minted at the edge again; stale ones have claims with an `oiat`
up to now, plus the verifier's clock-skew allowance (`leeway_s`, 5 s), sent
to the origin: `oiat` is read off the origin's clock, the mark off the
edge's, and an edge whose clock runs behind would otherwise keep cloning
claims assembled just before the change. The price is that claims the
origin assembles within those seconds after the push go to it once more.
An empty configured secret turns the endpoint off (every call gets 401),
so a missing setting never opens it.
"""

from __future__ import annotations

import logging

import orjson
from aiohttp import web

from .bearer import bearer_matches
from .errors import clerk_error, json_response
from .reading import read_capped
from .services import SERVICES
from .store import StoreUnavailable

__all__ = ["handle_push"]

log = logging.getLogger(__name__)

_MAX_PUSH_BYTES = 256 * 1024
_MAX_IDS = 10_000
_LISTS = ("revoked_sessions", "stale_sessions", "stale_users")


def _id_list(document: dict[str, object], name: str) -> list[str] | None:
    value = document.get(name, [])
    if not isinstance(value, list) or len(value) > _MAX_IDS:
        return None
    if not all(isinstance(item, str) and 0 < len(item) <= 128 for item in value):
        return None
    return [str(item) for item in value]


async def handle_push(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    if not bearer_matches(request, services.settings.push.secret):
        return clerk_error(request, 401, "unauthorized", "the push secret is missing or wrong")
    body = await read_capped(request, _MAX_PUSH_BYTES)
    if body is None:
        return clerk_error(request, 413, "request_too_large", "the push body is too large")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return clerk_error(request, 400, "invalid_json", "the push body is not JSON")
    if not isinstance(document, dict) or set(document) - set(_LISTS):
        return clerk_error(request, 400, "invalid_push", f"expected an object with {_LISTS}")
    lists = {name: _id_list(document, name) for name in _LISTS}
    if any(value is None for value in lists.values()):
        return clerk_error(request, 400, "invalid_push", "each list holds id strings")
    revoked, stale_sessions, stale_users = (lists[name] or [] for name in _LISTS)
    try:
        await services.store.revoke(revoked)
        await services.store.mark_stale(
            session_ids=stale_sessions,
            user_ids=stale_users,
            mark=services.now() + services.rules.leeway_s,
        )
    except StoreUnavailable:
        services.metrics.store_errors.inc()
        return clerk_error(
            request, 503, "store_unavailable", "the push was not recorded", retry_after_s=1
        )
    services.metrics.revocations.labels("push").inc(len(revoked))
    log.info(
        "push: %d revoked, %d stale sessions, %d stale users",
        len(revoked),
        len(stale_sessions),
        len(stale_users),
    )
    counts = {name: len(lists[name] or []) for name in _LISTS}
    return json_response(request, 200, orjson.dumps({"object": "push", **counts}))
