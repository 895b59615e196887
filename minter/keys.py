"""Keys: parse PEM and JWK material, tie one algorithm to each key, export JWKS.

A key's algorithm is decided here, from the key type (RSA → RS256, EC P-256 →
ES256, Ed25519 → EdDSA) or from the JWK's own `alg` when it names one of
those; a token's `alg` header is only ever compared with it, never obeyed.
`kid` is the JWK's own `kid` when it has one, else the RFC 7638 thumbprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from jwt.exceptions import InvalidKeyError

from .errors import KeyMaterialError
from .jws import b64url_encode

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "KeySet",
    "PublicKey",
    "SigningKey",
    "load_private_key",
    "load_public_jwk",
    "load_public_jwks",
    "thumbprint",
]

SUPPORTED_ALGORITHMS = frozenset({"RS256", "ES256", "EdDSA"})
_MIN_RSA_BITS = 2048

PrivateKeyType = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKeyType = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def _int_b64(value: int) -> str:
    return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def _public_jwk_members(key: PublicKeyType) -> dict[str, str]:
    """The RFC 7638 required members of a public key, in lexicographic order."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {"e": _int_b64(numbers.e), "kty": "RSA", "n": _int_b64(numbers.n)}
    if isinstance(key, ec.EllipticCurvePublicKey):
        numbers_ec = key.public_numbers()
        return {
            "crv": "P-256",
            "kty": "EC",
            "x": b64url_encode(numbers_ec.x.to_bytes(32, "big")),
            "y": b64url_encode(numbers_ec.y.to_bytes(32, "big")),
        }
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(raw)}


def thumbprint(key: PublicKeyType) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url)."""
    canonical = json.dumps(_public_jwk_members(key), separators=(",", ":"), sort_keys=True)
    return b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())


def _algorithm_for(key: PublicKeyType, declared: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < _MIN_RSA_BITS:
            raise KeyMaterialError(f"RSA keys must have at least {_MIN_RSA_BITS} bits")
        natural = "RS256"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyMaterialError("only the P-256 curve is supported for EC keys")
        natural = "ES256"
    elif isinstance(key, ed25519.Ed25519PublicKey):
        natural = "EdDSA"
    else:  # pragma: no cover - guarded by the type union
        raise KeyMaterialError("unsupported key type")
    if declared not in (None, natural):
        raise KeyMaterialError(f"key declares alg {declared!r}, only {natural} fits it")
    return natural


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A verification key with the one algorithm it may be used with."""

    kid: str
    alg: str
    key: PublicKeyType = field(repr=False)

    def verify(self, signature: bytes, signing_input: bytes) -> bool:
        key = self.key
        try:
            if isinstance(key, rsa.RSAPublicKey):
                if len(signature) != (key.key_size + 7) // 8:
                    return False
                key.verify(signature, signing_input, _PKCS1, _SHA256)
            elif isinstance(key, ec.EllipticCurvePublicKey):
                if len(signature) != 64:
                    return False
                r = int.from_bytes(signature[:32], "big")
                s = int.from_bytes(signature[32:], "big")
                if r == 0 or s == 0:
                    return False
                key.verify(encode_dss_signature(r, s), signing_input, _ECDSA_SHA256)
            else:
                key.verify(signature, signing_input)
        except InvalidSignature:
            return False
        return True

    def jwk(self) -> dict[str, str]:
        return {**_public_jwk_members(self.key), "kid": self.kid, "alg": self.alg, "use": "sig"}


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key that signs edge tokens, with its public half."""

    kid: str
    alg: str
    private: PrivateKeyType = field(repr=False)
    public: PublicKey

    def sign(self, signing_input: bytes) -> bytes:
        key = self.private
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(signing_input, _PKCS1, _SHA256)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(key.sign(signing_input, _ECDSA_SHA256))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return key.sign(signing_input)


def _parse_jwk(jwk: Mapping[str, Any], *, private: bool) -> Any:
    kty = jwk.get("kty")
    parsers: dict[str, Any] = {"RSA": RSAAlgorithm, "EC": ECAlgorithm, "OKP": OKPAlgorithm}
    parser = parsers.get(kty) if isinstance(kty, str) else None
    if parser is None:
        raise KeyMaterialError(f"unsupported JWK kty {kty!r}")
    try:
        key = parser.from_jwk(dict(jwk))
    except (InvalidKeyError, ValueError, TypeError, KeyError, UnsupportedAlgorithm) as exc:
        raise KeyMaterialError(f"unusable {kty} JWK") from exc
    is_private = isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    )
    if private and not is_private:
        raise KeyMaterialError("a signing key needs the private JWK members")
    if not private and is_private:
        key = key.public_key()
    return key


def _optional_kid(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 256:
        raise KeyMaterialError("kid must be a non-empty string of at most 256 characters")
    return value


def load_private_key(data: bytes, *, kid: str | None = None) -> SigningKey:
    """Load a PEM (PKCS#8 or traditional) or JSON JWK private key."""
    declared_alg: object = None
    stripped = data.strip()
    if stripped.startswith(b"{"):
        try:
            jwk = json.loads(stripped)
        except ValueError as exc:
            raise KeyMaterialError("key file is neither PEM nor JSON") from exc
        if not isinstance(jwk, dict):
            raise KeyMaterialError("a JWK must be a JSON object")
        private = _parse_jwk(jwk, private=True)
        kid = kid or _optional_kid(jwk.get("kid"))
        declared_alg = jwk.get("alg")
    else:
        try:
            private = serialization.load_pem_private_key(stripped, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KeyMaterialError("key file is not an unencrypted PEM private key") from exc
    if not isinstance(
        private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise KeyMaterialError("only RSA, EC P-256 and Ed25519 private keys are supported")
    public_key = private.public_key()
    alg = _algorithm_for(public_key, declared_alg)
    kid = kid or thumbprint(public_key)
    return SigningKey(kid=kid, alg=alg, private=private, public=PublicKey(kid, alg, public_key))


def load_public_jwk(jwk: Mapping[str, Any]) -> PublicKey:
    """One public JWK (as published in a JWKS) → PublicKey."""
    if jwk.get("use", "sig") != "sig":
        raise KeyMaterialError("JWK is not a signature key")
    key = _parse_jwk(jwk, private=False)
    alg = _algorithm_for(key, jwk.get("alg"))
    kid = _optional_kid(jwk.get("kid")) or thumbprint(key)
    return PublicKey(kid=kid, alg=alg, key=key)


def load_public_jwks(document: Mapping[str, Any]) -> tuple[list[PublicKey], list[str]]:
    """Parse a JWKS document; unusable keys are skipped and their problems returned."""
    keys: list[PublicKey] = []
    problems: list[str] = []
    entries = document.get("keys")
    if not isinstance(entries, list):
        return keys, ["JWKS has no keys array"]
    for entry in entries:
        if not isinstance(entry, dict):
            problems.append("JWKS entry is not an object")
            continue
        try:
            keys.append(load_public_jwk(entry))
        except KeyMaterialError as exc:
            problems.append(str(exc))
    return keys, problems


class KeySet(Mapping[str, PublicKey]):
    """An immutable kid → PublicKey map; the first key with a kid wins."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[PublicKey] = ()) -> None:
        merged: dict[str, PublicKey] = {}
        for key in keys:
            merged.setdefault(key.kid, key)
        self._keys = merged

    def __getitem__(self, kid: str) -> PublicKey:
        return self._keys[kid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def union(self, other: Iterable[PublicKey]) -> KeySet:
        return KeySet([*self._keys.values(), *other])

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [key.jwk() for key in self._keys.values()]}
