"""The asyncio transport for `fapi_client.flow`: aiohttp, a cookie jar, scaled waits."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson

from .flow import (
    DEFAULT_BACKOFF,
    Backoff,
    Flow,
    HttpAnswer,
    HttpRequest,
    RefreshOutcome,
    Wait,
    refresh_flow,
    retry_after_s,
    sign_in_flow,
    sign_out_flow,
)
from .freshness import TokenBox

__all__ = ["AioBrowser"]


class AioBrowser:
    """One browser (one `__client` cookie) with tabs sharing a TokenBox per session.

    `time_scale` multiplies every wait (0 in tests: retries happen at once).
    """

    def __init__(
        self,
        base_url: str,
        *,
        origin: str = "http://localhost:3000",
        time_scale: float = 1.0,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.time_scale = time_scale
        self.backoff = backoff
        self.boxes: dict[str, TokenBox] = {}
        self._http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"Origin": origin}
        )

    async def close(self) -> None:
        await self._http.close()

    async def __aenter__(self) -> AioBrowser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _perform(self, request: HttpRequest) -> HttpAnswer:
        try:
            async with self._http.request(
                request.method,
                self.base_url + request.path,
                data=request.form,
                params=request.query or None,
            ) as response:
                raw = await response.read()
                body: Any = None
                if raw:
                    try:
                        body = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        body = None
                return HttpAnswer(
                    response.status,
                    body,
                    retry_after_s(response.headers.get("Retry-After"), now=time.time()),
                )
        except (TimeoutError, aiohttp.ClientError):
            return HttpAnswer(0)

    async def run(self, flow: Flow) -> Any:
        step = next(flow)
        while True:
            if isinstance(step, Wait):
                await asyncio.sleep(step.seconds * self.time_scale)
                reply: HttpAnswer | None = None
            else:
                reply = await self._perform(step)
            try:
                step = flow.send(reply)
            except StopIteration as done:
                return done.value

    async def sign_in(self, identifier: str, password: str) -> str:
        signed_in = await self.run(sign_in_flow(identifier, password))
        if signed_in is None:
            raise RuntimeError("sign-in failed")
        sid, token = signed_in
        box = self.boxes[sid] = TokenBox()
        if token is not None:
            box.offer(token)  # clerk-js caches the token that comes with the session
        return str(sid)

    async def get_token(
        self, session_id: str, *, organization_id: str = "", skip_cache: bool = False
    ) -> RefreshOutcome:
        box = self.boxes.setdefault(session_id, TokenBox())
        outcome: RefreshOutcome = await self.run(
            refresh_flow(
                box,
                session_id,
                organization_id=organization_id,
                skip_cache=skip_cache,
                backoff=self.backoff,
            )
        )
        return outcome

    async def sign_out(self, session_id: str) -> bool:
        return bool(await self.run(sign_out_flow(session_id)))
