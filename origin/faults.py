"""Fault injection for tests and load: added latency, 500s, 503s, hangs.

`settings.latency_ms` delays every FAPI answer. On top of that, the mode set
through `POST /__origin/faults` (bearer secret key):

    ok        answer normally
    error500  answer every FAPI request with a 500 Clerk error (a failing database)
    error503  answer every FAPI request with a 503 Clerk error
    hang      answer nothing until the mode changes (then follow the new mode)
    slow      add the posted `latency_ms` to every FAPI answer

Only FAPI paths (`/v1/...`, `/.well-known/...`) are affected; the backend and
admin APIs always answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from origin.auth import require_bearer
from origin.errors import BadRequest, Handler, InternalError, ServiceUnavailable
from origin.forms import read_json
from origin.responses import json_response
from origin.state import STATE

MODES = ("ok", "error500", "error503", "hang", "slow")
FAPI_PREFIXES = ("/v1/", "/.well-known/")


class Faults:
    def __init__(self) -> None:
        self.mode = "ok"
        self.latency_ms = 0
        self._changed = asyncio.Event()
        self._closing = False
        self.held = 0
        """How many requests `hang` is holding right now."""
        self._held_changed = asyncio.Event()

    def set(self, mode: str, latency_ms: int) -> None:
        self.mode = mode
        self.latency_ms = latency_ms
        self._wake()

    def close(self) -> None:
        """Release requests held by `hang` (on shutdown)."""
        self._closing = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def as_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "latency_ms": self.latency_ms, "held": self.held}

    async def wait_held(self, count: int) -> None:
        """Wait until `hang` holds at least `count` requests."""
        while self.held < count:
            await self._held_changed.wait()

    def _set_held(self, delta: int) -> None:
        self.held += delta
        self._held_changed.set()
        self._held_changed = asyncio.Event()

    async def apply(self, base_latency_ms: int) -> None:
        """Hold, delay or fail the current request according to the mode."""
        if self.mode == "hang" and not self._closing:
            self._set_held(+1)
            try:
                while self.mode == "hang" and not self._closing:
                    await self._changed.wait()
            finally:
                self._set_held(-1)
        if self._closing or self.mode == "error503":
            raise ServiceUnavailable(
                "The service is temporarily unavailable", headers={"Retry-After": "1"}
            )
        if self.mode == "error500":
            raise InternalError("The database could not be reached")
        delay_ms = base_latency_ms + (self.latency_ms if self.mode == "slow" else 0)
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)


FAULTS = web.AppKey("origin_faults", Faults)


def is_fapi(path: str) -> bool:
    return path.startswith(FAPI_PREFIXES)


@web.middleware
async def faults_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_fapi(request.path):
        await request.app[FAULTS].apply(request.app[STATE].settings.latency_ms)
    return await handler(request)


async def get_faults(request: web.Request) -> web.Response:
    require_bearer(request, request.app[STATE].settings.secret_key)
    return json_response(request.app[FAULTS].as_json())


async def set_faults(request: web.Request) -> web.Response:
    require_bearer(request, request.app[STATE].settings.secret_key)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object", code="form_param_format_invalid")
    mode = body.get("mode", "ok")
    latency_ms = body.get("latency_ms", 0)
    if mode not in MODES:
        raise BadRequest(
            f"mode must be one of {', '.join(MODES)}",
            code="form_param_value_invalid",
            meta={"param_name": "mode"},
        )
    if isinstance(latency_ms, bool) or not isinstance(latency_ms, int) or latency_ms < 0:
        raise BadRequest(
            "latency_ms must be a non-negative integer",
            code="form_param_value_invalid",
            meta={"param_name": "latency_ms"},
        )
    faults = request.app[FAULTS]
    faults.set(mode, latency_ms)
    return json_response(faults.as_json())
