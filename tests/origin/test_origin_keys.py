"""Signing keys: PEM and JWK files, kids, algorithms, the published JWKS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import RSAAlgorithm
from origin_helpers import sign_in, verified

from origin import KeyFileError
from origin.keys import load_public_jwk, load_signing_key, thumbprint

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _pem(key: PrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def test_rfc7638_thumbprint_example() -> None:
    # RFC 7638, section 3.1
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1"
        "L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4"
        "QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbO"
        "pbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csF"
        "Cur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_pem_kid_is_the_thumbprint(rsa_pem: Path) -> None:
    key = load_signing_key(rsa_pem)
    assert key.alg == "RS256"
    assert key.kid == thumbprint(key.public.jwk)
    assert set(key.public.jwk) == {"kty", "n", "e", "kid", "alg", "use"}


def test_jwk_file_keeps_its_own_kid(tmp_path: Path) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = RSAAlgorithm.to_jwk(private, as_dict=True)
    (tmp_path / "with.json").write_text(json.dumps({**jwk, "kid": "instance-2024"}))
    (tmp_path / "without.json").write_text(json.dumps(jwk))
    assert load_signing_key(tmp_path / "with.json").kid == "instance-2024"
    without = load_signing_key(tmp_path / "without.json")
    assert without.kid == thumbprint(without.public.jwk)


@pytest.mark.parametrize(
    ("make", "alg"),
    [
        (lambda: ec.generate_private_key(ec.SECP256R1()), "ES256"),
        (ed25519.Ed25519PrivateKey.generate, "EdDSA"),
    ],
)
async def test_ec_and_ed25519_keys_sign_tokens(
    make_origin: Any, tmp_path: Path, make: Any, alg: str
) -> None:
    origin = await make_origin(signing_key=_pem(make(), tmp_path / "key.pem"))
    sid = (await sign_in(origin))["response"]["created_session_id"]
    response = await origin.post(f"/v1/client/sessions/{sid}/tokens", data={"organization_id": ""})
    header, claims = await verified(origin, (await response.json())["jwt"])
    assert header["alg"] == alg
    assert claims["sid"] == sid


def test_weak_rsa_and_other_curves_are_refused(tmp_path: Path) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - on purpose
    with pytest.raises(KeyFileError, match="too small"):
        load_signing_key(_pem(weak, tmp_path / "weak.pem"))
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(KeyFileError, match="curve"):
        load_signing_key(_pem(p384, tmp_path / "p384.pem"))


def test_a_public_key_cannot_sign(tmp_path: Path) -> None:
    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    path = tmp_path / "public.pem"
    path.write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(KeyFileError, match="private"):
        load_signing_key(path)
    assert load_public_jwk(path).alg == "RS256"


def test_garbage_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("-----BEGIN PRIVATE KEY-----\nnope\n")
    (tmp_path / "bad.json").write_text('{"kty": "RSA"}')
    for name in ("bad.pem", "bad.json", "missing.pem"):
        with pytest.raises(KeyFileError):
            load_signing_key(tmp_path / name)


async def test_published_keys_join_the_jwks(
    make_origin: Any, tmp_path: Path, rsa_pem: Path
) -> None:
    edge = _pem(ec.generate_private_key(ec.SECP256R1()), tmp_path / "edge.pem")
    origin = await make_origin(published_keys=(edge, rsa_pem))
    keys = (await (await origin.get("/v1/jwks")).json())["keys"]
    assert [k["kid"] for k in keys] == [load_signing_key(rsa_pem).kid, load_signing_key(edge).kid]
    assert keys[1]["kty"] == "EC"
    assert jwt.PyJWK(keys[1]).algorithm_name == "ES256"
