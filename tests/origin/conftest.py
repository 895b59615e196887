"""Fixtures: a key, a movable clock, and the origin running on a loopback port."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from origin_helpers import ISSUER, PUSH_SECRET, SECRET_KEY, Client, FakeClock

from origin import OriginSettings, create_app


@pytest.fixture(scope="session")
def rsa_pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("keys") / "instance.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path, rsa_pem: Path, clock: FakeClock) -> OriginSettings:
    return OriginSettings(
        database=tmp_path / "origin.db",
        signing_key=rsa_pem,
        issuer=ISSUER,
        secret_key=SECRET_KEY,
        push_secret=PUSH_SECRET,
        token_lifetime_s=60,
        clock=clock,
    )


MakeOrigin = Callable[..., Awaitable[Client]]


@pytest.fixture
def make_origin(aiohttp_client: Any, settings: OriginSettings) -> MakeOrigin:
    """Start an origin; keyword arguments override settings."""

    async def make(**overrides: Any) -> Client:
        client: Client = await aiohttp_client(create_app(replace(settings, **overrides)))
        return client

    return make


@pytest.fixture
async def origin(make_origin: MakeOrigin) -> Client:
    return await make_origin()
