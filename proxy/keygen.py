"""`session-minter keygen`: write a private key as PEM, readable by its owner only."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
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
    """Generate a key, write it with mode 0600, and return it (with its kid).

    The key goes to a new 0600 file beside `path` first, then takes its name
    in one step: an existing file's mode is never kept, and a reader (a
    SIGHUP reload) never sees a half-written key.
    """
    pem = generate_key_pem(kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)  # fails if `path` exists: never clobbers
            except FileExistsError:
                raise FileExistsError(errno.EEXIST, "file exists", str(path)) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return load_private_key(pem)
