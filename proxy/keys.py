"""Loading the edge's signing keys from the files named in config."""

from __future__ import annotations

import logging
from pathlib import Path

from minter import KeyMaterialError, SigningKey, load_private_key

from .config import ConfigError, KeysSettings

log = logging.getLogger(__name__)

# What Clerk's own verifiers take: @clerk/backend's `verifyToken` knows RS256,
# RS384 and RS512 only, and a networkless PEM `jwtKey` is an RSA key.
_CLERK_VERIFIED_ALGS = frozenset({"RS256", "RS384", "RS512"})

__all__ = ["load_signing_keys"]


def load_signing_keys(settings: KeysSettings) -> list[SigningKey]:
    """Every configured key, in order (the first signs); one clear error per problem.

    Two different keys under one `kid` (set in a JWK file) are refused: a
    verifier would find one of them under that name, and reject what the
    other signed.
    """
    keys: list[SigningKey] = []
    paths: dict[str, Path] = {}
    for path in settings.signing:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"keys.signing: cannot read {path} ({exc.strerror})") from exc
        try:
            key = load_private_key(data)
        except KeyMaterialError as exc:
            raise ConfigError(f"keys.signing: {path}: {exc}") from exc
        first = next((known for known in keys if known.kid == key.kid), None)
        if first is not None and first.public.jwk() != key.public.jwk():
            raise ConfigError(
                f"keys.signing: {paths[key.kid]} and {path} are different keys"
                f" with the same kid {key.kid!r}"
            )
        paths.setdefault(key.kid, path)
        keys.append(key)
    if keys and keys[0].alg not in _CLERK_VERIFIED_ALGS:
        log.warning(
            "the signing key %s is %s: Clerk's verifiers (@clerk/backend) accept RSA"
            " session tokens only, and would reject every token this edge signs",
            settings.signing[0],
            keys[0].alg,
        )
    return keys
