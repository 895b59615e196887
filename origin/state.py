"""What the request handlers share, stored on the app under `web.AppKey`s."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from aiohttp import web

from origin.keys import PublicJWK, SigningKey
from origin.settings import OriginSettings
from origin.store import Store


@dataclass(frozen=True)
class OriginState:
    settings: OriginSettings
    store: Store
    key: SigningKey
    published: tuple[PublicJWK, ...]

    def now_s(self) -> int:
        return int(self.settings.clock())

    def now_ms(self) -> int:
        return int(self.settings.clock() * 1000)


def new_id(prefix: str) -> str:
    """A Clerk-looking id: `sess_...`, `client_...`, `sia_...`."""
    return f"{prefix}_{secrets.token_hex(12)}"


STATE = web.AppKey("origin_state", OriginState)
