"""The instance signing key: load it from PEM or JWK, derive its `kid`, sign, publish.

Supported: RSA (RS256, at least 2048 bits), EC P-256 (ES256) and Ed25519 (EdDSA).
The `kid` is the JWK's own `kid` when the file is a JWK that has one, else the
RFC 7638 thumbprint of the public JWK.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}


class KeyFileError(ValueError):
    """A key file that cannot be used: unreadable, unsupported type, too weak."""


@dataclass(frozen=True)
class PublicJWK:
    kid: str
    alg: str
    jwk: dict[str, Any]
    """The public JWK with `kid`, `alg` and `use`."""


@dataclass(frozen=True)
class SigningKey:
    private_key: PrivateKey
    public: PublicJWK

    @property
    def kid(self) -> str:
        return self.public.kid

    @property
    def alg(self) -> str:
        return self.public.alg

    def sign(self, claims: dict[str, Any], headers: dict[str, Any]) -> str:
        """Sign `claims` with this key; `headers` adds to `alg`, `kid` and `typ`."""
        return jwt.encode(
            dict(claims),
            self.private_key,
            algorithm=self.alg,
            headers={"kid": self.kid, "typ": "JWT", **headers},
        )


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint, SHA-256, base64url without padding."""
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None:
        raise KeyFileError(f"unsupported kty for a thumbprint: {jwk.get('kty')!r}")
    canonical = json.dumps(
        {name: jwk[name] for name in members}, separators=(",", ":"), sort_keys=True
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _alg_for(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise KeyFileError(f"RSA key too small: {key.key_size} bits")
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyFileError(f"unsupported EC curve: {key.curve.name}")
        return "ES256"
    return "EdDSA"


def _public_jwk_dict(key: PublicKey) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPublicKey):
        return RSAAlgorithm.to_jwk(key, as_dict=True)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ECAlgorithm.to_jwk(key, as_dict=True)
    return OKPAlgorithm.to_jwk(key, as_dict=True)


def _public_of(key: PrivateKey | PublicKey) -> PublicKey:
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        return key.public_key()
    return key


def _describe(key: PrivateKey | PublicKey, own_kid: str | None, own_alg: str | None) -> PublicJWK:
    alg = _alg_for(key)
    if own_alg is not None and own_alg != alg:
        raise KeyFileError(f"JWK alg {own_alg!r} does not match its key type ({alg})")
    jwk = {
        k: v
        for k, v in _public_jwk_dict(_public_of(key)).items()
        if k in ("kty", "n", "e", "crv", "x", "y")
    }
    kid = own_kid or thumbprint(jwk)
    return PublicJWK(kid=kid, alg=alg, jwk={**jwk, "kid": kid, "alg": alg, "use": "sig"})


def _parse(data: bytes, source: str) -> tuple[PrivateKey | PublicKey, str | None, str | None]:
    """Parse a PEM (private or public) or a JWK; answer the key and the JWK's kid/alg."""
    text = data.strip()
    if text.startswith(b"{"):
        try:
            obj = json.loads(text)
            key = jwt.PyJWK(obj).key
        except (ValueError, jwt.PyJWTError) as exc:
            raise KeyFileError(f"{source}: not a usable JWK: {exc}") from exc
        if not isinstance(key, PrivateKey | PublicKey):
            raise KeyFileError(f"{source}: unsupported JWK key type")
        kid, alg = obj.get("kid"), obj.get("alg")
        own_kid = kid if isinstance(kid, str) and kid else None
        return key, own_kid, alg if isinstance(alg, str) else None
    try:
        if b"PRIVATE KEY" in text:
            loaded: Any = serialization.load_pem_private_key(text, password=None)
        else:
            loaded = serialization.load_pem_public_key(text)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{source}: not a usable PEM key: {exc}") from exc
    if not isinstance(loaded, PrivateKey | PublicKey):
        raise KeyFileError(f"{source}: unsupported key type {type(loaded).__name__}")
    return loaded, None, None


def load_signing_key(path: Path) -> SigningKey:
    """Load a private key file (PEM or JWK) for signing."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read signing key {path}: {exc}") from exc
    key, kid, alg = _parse(data, str(path))
    if not isinstance(key, PrivateKey):
        raise KeyFileError(f"{path}: a signing key must be a private key")
    return SigningKey(private_key=key, public=_describe(key, kid, alg))


def load_public_jwk(path: Path) -> PublicJWK:
    """Load any key file (PEM or JWK, public or private) for publishing in the JWKS."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key {path}: {exc}") from exc
    key, kid, alg = _parse(data, str(path))
    return _describe(key, kid, alg)


def jwks(keys: list[PublicJWK]) -> dict[str, Any]:
    """The JWKS document, each `kid` once, in the given order."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for key in keys:
        if key.kid not in seen:
            seen.add(key.kid)
            out.append(dict(key.jwk))
    return {"keys": out}
