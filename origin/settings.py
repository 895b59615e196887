"""Settings of the reference origin: one frozen dataclass, validated on creation.

Parsing a config file or the environment is the CLI's job; this module only
holds and checks the values.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

Clock = Callable[[], float]


@dataclass(frozen=True, kw_only=True)
class OriginSettings:
    """Everything `create_app` needs. Only `database` and `signing_key` are required."""

    database: Path
    signing_key: Path
    host: str = "127.0.0.1"
    port: int = 8081
    issuer: str = "https://clerk.example.test"
    secret_key: str = "sk_test_change_me"  # noqa: S105 - documented demo default
    edges: tuple[str, ...] = ()
    push_secret: str = "change-me"  # noqa: S105 - documented demo default
    latency_ms: int = 0
    token_lifetime_s: int = 60
    published_keys: tuple[Path, ...] = ()
    """Extra key files (PEM or JWK, public or private) whose public halves join the JWKS."""
    push_timeout_s: float = 2.0
    session_minter: bool = True
    """`auth_config.session_minter` in the environment: clients post `token` when true;
    false makes clerk-js use the legacy `expired_token` retry instead."""
    clock: Clock = time.time
    """Wall clock in Unix seconds; tests pass their own to move time."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port out of range: {self.port}")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must not be negative")
        if self.token_lifetime_s <= 0:
            raise ValueError("token_lifetime_s must be positive")
        if self.push_timeout_s <= 0:
            raise ValueError("push_timeout_s must be positive")
        if not self.issuer:
            raise ValueError("issuer must not be empty")
        if not self.secret_key:
            raise ValueError("secret_key must not be empty")
        for edge in self.edges:
            parts = urlsplit(edge)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"edge is not an http(s) URL: {edge!r}")
        object.__setattr__(self, "edges", tuple(self.edges))
        object.__setattr__(self, "published_keys", tuple(self.published_keys))
