"""How credentials appear in logs: never whole, only a short hash."""

from __future__ import annotations

import hashlib
import re

__all__ = ["hash_jwts", "token_hint"]

_JWT_SHAPED = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def token_hint(secret: str) -> str:
    """12 hex characters of SHA-256: enough to correlate, useless to replay."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def hash_jwts(text: str) -> str:
    """`text` with every JWT-shaped run (a JSON header starts `eyJ`) replaced by its hint."""
    if "eyJ" not in text:
        return text
    return _JWT_SHAPED.sub(lambda match: f"<jwt:{token_hint(match[0])}>", text)
