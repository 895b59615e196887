"""`session-minter keygen`: write a private key as PEM, readable by its owner only."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from minter import SigningKey, load_private_key

__all__ = ["KEY_TYPES", "generate_key_pem", "write_key"]

KEY_TYPES = ("rsa", "ec", "ed25519")


def generate_key_pem(kind: str = "rsa") -> bytes:
    if kind == "rsa":
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
    elif kind == "ec":
        key = ec.generate_private_key(ec.SECP256R1())
    elif kind == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(f"unknown key type {kind!r}; choose one of {KEY_TYPES}")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_key(path: Path, kind: str = "rsa", *, overwrite: bool = False) -> SigningKey:
    """Generate a key, write it with mode 0600, and return it (with its kid)."""
    pem = generate_key_pem(kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    descriptor = os.open(path, flags, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    return load_private_key(pem)
