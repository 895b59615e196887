"""How credentials appear in logs: never whole, only a short hash."""

from __future__ import annotations

import hashlib

__all__ = ["token_hint"]


def token_hint(secret: str) -> str:
    """12 hex characters of SHA-256: enough to correlate, useless to replay."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:12]
