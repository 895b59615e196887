"""Loading the edge's signing keys from the files named in config."""

from __future__ import annotations

from minter import KeyMaterialError, SigningKey, load_private_key

from .config import ConfigError, KeysSettings

__all__ = ["load_signing_keys"]


def load_signing_keys(settings: KeysSettings) -> list[SigningKey]:
    """Every configured key, in order (the first signs); one clear error per problem."""
    keys = []
    for path in settings.signing:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"keys.signing: cannot read {path} ({exc.strerror})") from exc
        try:
            keys.append(load_private_key(data))
        except KeyMaterialError as exc:
            raise ConfigError(f"keys.signing: {path}: {exc}") from exc
    return keys
