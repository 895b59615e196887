"""minter.keys: loading PEM and JWK keys, kids, thumbprints, JWKS, the key set."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwcrypto import jwk

from minter import (
    KeyMaterialError,
    KeySet,
    PublicKey,
    SigningKey,
    load_private_key,
    load_public_jwk,
    load_public_jwks,
    sign_compact,
    thumbprint,
)
from minter.jws import b64url_decode, b64url_encode

from .builders import jwcrypto_verify, pem_of

# RFC 7638, section 3.1: the example RSA key and its SHA-256 thumbprint.
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
    "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
    "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
    "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
# The digest octets as the RFC lists them, so the expected value is not only a string copy.
RFC7638_OCTETS = bytes(
    json.loads(
        "[55, 54, 203, 177, 120, 124, 184, 48, 156, 119, 238, 140, 55, 5, 197, 225,"
        " 111, 251, 158, 133, 151, 21, 144, 31, 30, 76, 89, 177, 17, 130, 245, 123]"
    )
)


def weak_rsa() -> rsa.RSAPrivateKey:
    # A key below the 2048-bit minimum, made only to be refused.
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505


def private_jwk(private: Any, **members: Any) -> dict[str, Any]:
    exported: dict[str, Any] = jwk.JWK.from_pyca(private).export_private(as_dict=True)
    exported.pop("kid", None)
    return {**exported, **members}


def public_jwk(private: Any, **members: Any) -> dict[str, Any]:
    exported: dict[str, Any] = jwk.JWK.from_pyca(private.public_key()).export_public(as_dict=True)
    exported.pop("kid", None)
    return {**exported, **members}


def round_trip_with_jwcrypto(key: SigningKey) -> None:
    header = {"alg": key.alg, "kid": key.kid, "typ": "JWT"}
    token = sign_compact(header, {"sub": "user_1"}, key)
    signing_input, _, signature = token.rpartition(".")
    assert key.public.verify(b64url_decode(signature, what="s"), signing_input.encode())
    assert jwcrypto_verify(token, key.public.jwk())["kid"] == key.kid


# PEM ---------------------------------------------------------------------------


def test_pkcs8_rsa_pem_signs_rs256_with_a_thumbprint_kid(rsa_private: rsa.RSAPrivateKey) -> None:
    key = load_private_key(pem_of(rsa_private))
    assert key.alg == "RS256"
    assert key.public.alg == "RS256"
    assert key.kid == key.public.kid
    assert key.kid == jwk.JWK.from_pyca(rsa_private.public_key()).thumbprint()
    round_trip_with_jwcrypto(key)


def test_traditional_rsa_pem_is_the_same_key(rsa_private: rsa.RSAPrivateKey) -> None:
    traditional = pem_of(rsa_private, serialization.PrivateFormat.TraditionalOpenSSL)
    assert traditional.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    key = load_private_key(traditional)
    assert key.kid == load_private_key(pem_of(rsa_private)).kid
    assert key.alg == "RS256"


def test_pem_with_surrounding_whitespace_loads(rsa_private: rsa.RSAPrivateKey) -> None:
    assert load_private_key(b"\n\n" + pem_of(rsa_private) + b"\n  \n").alg == "RS256"


def test_explicit_kid_overrides_the_thumbprint(rsa_private: rsa.RSAPrivateKey) -> None:
    key = load_private_key(pem_of(rsa_private), kid="ins_2024")
    assert key.kid == "ins_2024"
    assert key.public.kid == "ins_2024"
    assert key.public.jwk()["kid"] == "ins_2024"


def test_ec_p256_pem_signs_es256() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    key = load_private_key(pem_of(private))
    assert key.alg == "ES256"
    assert key.kid == jwk.JWK.from_pyca(private.public_key()).thumbprint()
    signature = key.sign(b"input")
    assert len(signature) == 64  # raw r||s, not DER
    assert key.public.verify(signature, b"input")
    assert not key.public.verify(signature, b"other")
    round_trip_with_jwcrypto(key)


def test_ed25519_pem_signs_eddsa() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    key = load_private_key(pem_of(private))
    assert key.alg == "EdDSA"
    assert key.kid == jwk.JWK.from_pyca(private.public_key()).thumbprint()
    round_trip_with_jwcrypto(key)


def test_rsa_key_size_not_a_multiple_of_8_verifies() -> None:
    # A 2052-bit modulus gives 257-byte signatures (ceil(bits / 8)).
    private = rsa.generate_private_key(public_exponent=65537, key_size=2052)
    key = load_private_key(pem_of(private))
    signature = key.sign(b"input")
    assert len(signature) == 257
    assert key.public.verify(signature, b"input")
    assert not key.public.verify(signature[:-1], b"input")
    round_trip_with_jwcrypto(key)


def test_rsa_below_2048_bits_is_refused() -> None:
    small = weak_rsa()
    with pytest.raises(KeyMaterialError, match="2048"):
        load_private_key(pem_of(small))
    with pytest.raises(KeyMaterialError, match="2048"):
        load_public_jwk(public_jwk(small))


def test_ec_p384_is_refused() -> None:
    private = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(KeyMaterialError, match="P-256"):
        load_private_key(pem_of(private))
    with pytest.raises(KeyMaterialError, match="P-256"):
        load_public_jwk(public_jwk(private))


def test_ed448_is_refused() -> None:
    with pytest.raises(KeyMaterialError):
        load_private_key(pem_of(ed448.Ed448PrivateKey.generate()))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not a key", id="text"),
        pytest.param(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", id="bad"),
        pytest.param(b"{not json", id="broken-json"),
        pytest.param(b"[1, 2]", id="json-array"),
        pytest.param(b'{"kty": "oct", "k": "c2VjcmV0"}', id="symmetric-jwk"),
        pytest.param(b'{"kty": "RSA", "n": "AQAB"}', id="incomplete-rsa-jwk"),
    ],
)
def test_unusable_private_key_material_is_refused(data: bytes) -> None:
    with pytest.raises(KeyMaterialError):
        load_private_key(data)


def test_encrypted_pem_is_refused(rsa_private: rsa.RSAPrivateKey) -> None:
    encrypted = rsa_private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret-pass"),
    )
    with pytest.raises(KeyMaterialError, match="unencrypted"):
        load_private_key(encrypted)


def test_public_pem_is_not_a_signing_key(rsa_private: rsa.RSAPrivateKey) -> None:
    public = rsa_private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(KeyMaterialError):
        load_private_key(public)


# private JWK -------------------------------------------------------------------


def test_private_jwk_with_its_own_kid(rsa_private: rsa.RSAPrivateKey) -> None:
    data = json.dumps(private_jwk(rsa_private, kid="ins_abc", alg="RS256")).encode()
    key = load_private_key(data)
    assert key.kid == "ins_abc"
    assert key.alg == "RS256"
    assert load_private_key(data, kid="override").kid == "override"
    round_trip_with_jwcrypto(key)


def test_private_jwk_without_kid_gets_the_thumbprint(rsa_private: rsa.RSAPrivateKey) -> None:
    key = load_private_key(json.dumps(private_jwk(rsa_private)).encode())
    assert key.kid == thumbprint(rsa_private.public_key())
    assert key.kid == load_private_key(pem_of(rsa_private)).kid


@pytest.mark.parametrize(
    "private",
    [ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()],
    ids=["ec", "okp"],
)
def test_private_jwk_of_other_key_types(private: Any) -> None:
    key = load_private_key(json.dumps(private_jwk(private, kid="k1")).encode())
    assert key.kid == "k1"
    round_trip_with_jwcrypto(key)


def test_public_jwk_is_not_a_signing_key(rsa_private: rsa.RSAPrivateKey) -> None:
    with pytest.raises(KeyMaterialError, match="private"):
        load_private_key(json.dumps(public_jwk(rsa_private)).encode())


@pytest.mark.parametrize("kid", ["", 7, "k" * 257, ["a"]], ids=repr)
def test_jwk_kid_must_be_a_short_string(rsa_private: rsa.RSAPrivateKey, kid: object) -> None:
    with pytest.raises(KeyMaterialError, match="kid"):
        load_private_key(json.dumps(private_jwk(rsa_private, kid=kid)).encode())
    with pytest.raises(KeyMaterialError, match="kid"):
        load_public_jwk(public_jwk(rsa_private, kid=kid))


# declared algorithms -------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS384", "RS512", "PS256", "ES256", "HS256", "none", 256])
def test_declared_alg_must_be_the_one_the_rsa_key_fits(
    rsa_private: rsa.RSAPrivateKey, alg: object
) -> None:
    with pytest.raises(KeyMaterialError, match="alg"):
        load_private_key(json.dumps(private_jwk(rsa_private, alg=alg)).encode())
    with pytest.raises(KeyMaterialError, match="alg"):
        load_public_jwk(public_jwk(rsa_private, alg=alg))


def test_declared_alg_must_fit_ec_and_okp_keys() -> None:
    with pytest.raises(KeyMaterialError, match="alg"):
        load_public_jwk(public_jwk(ec.generate_private_key(ec.SECP256R1()), alg="RS256"))
    with pytest.raises(KeyMaterialError, match="alg"):
        load_public_jwk(public_jwk(ed25519.Ed25519PrivateKey.generate(), alg="ES256"))
    assert load_public_jwk(public_jwk(ed25519.Ed25519PrivateKey.generate(), alg="EdDSA")).alg == (
        "EdDSA"
    )


# public JWK and thumbprints ------------------------------------------------------


def test_rfc7638_example_thumbprint() -> None:
    assert b64url_encode(RFC7638_OCTETS) == RFC7638_THUMBPRINT
    example = {"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}
    key = load_public_jwk(example)
    assert key.kid == "2011-04-29"
    assert key.alg == "RS256"
    assert thumbprint(key.key) == RFC7638_THUMBPRINT
    without_kid = load_public_jwk({"kty": "RSA", "n": RFC7638_N, "e": "AQAB"})
    assert without_kid.kid == RFC7638_THUMBPRINT


def test_thumbprints_agree_with_jwcrypto_for_every_key_type() -> None:
    for private in (
        rsa.generate_private_key(public_exponent=3, key_size=2048),
        ec.generate_private_key(ec.SECP256R1()),
        ed25519.Ed25519PrivateKey.generate(),
    ):
        expected = jwk.JWK.from_pyca(private.public_key()).thumbprint()
        assert thumbprint(private.public_key()) == expected


def test_public_jwk_with_use_enc_is_refused(rsa_private: rsa.RSAPrivateKey) -> None:
    with pytest.raises(KeyMaterialError, match="signature"):
        load_public_jwk(public_jwk(rsa_private, use="enc"))
    assert load_public_jwk(public_jwk(rsa_private, use="sig")).alg == "RS256"


def test_a_private_jwk_in_a_jwks_is_reduced_to_its_public_half(
    rsa_private: rsa.RSAPrivateKey,
) -> None:
    key = load_public_jwk(private_jwk(rsa_private))
    assert isinstance(key.key, rsa.RSAPublicKey)
    assert "d" not in key.jwk()


def test_public_key_verify_refuses_wrong_sizes_and_zero_ec_scalars(
    signing_key: SigningKey,
) -> None:
    signature = signing_key.sign(b"input")
    assert signing_key.public.verify(signature, b"input")
    assert not signing_key.public.verify(signature[:-1], b"input")
    assert not signing_key.public.verify(signature + b"\x00", b"input")
    assert not signing_key.public.verify(b"", b"input")
    ec_key = load_private_key(pem_of(ec.generate_private_key(ec.SECP256R1())))
    good = ec_key.sign(b"input")
    assert ec_key.public.verify(good, b"input")
    assert not ec_key.public.verify(bytes(32) + good[32:], b"input")
    assert not ec_key.public.verify(good[:32] + bytes(32), b"input")
    assert not ec_key.public.verify(good[:63], b"input")


def test_key_material_stays_out_of_repr(signing_key: SigningKey) -> None:
    text = repr(signing_key)
    assert signing_key.kid in text
    assert "RSAPrivateKey" not in text
    assert "RSAPublicKey" not in text


# JWKS --------------------------------------------------------------------------


def test_jwks_parsing_skips_bad_entries_and_reports_them(rsa_private: rsa.RSAPrivateKey) -> None:
    good_ec = ec.generate_private_key(ec.SECP256R1())
    document = {
        "keys": [
            public_jwk(rsa_private, kid="good-rsa", alg="RS256", use="sig"),
            "not an object",
            public_jwk(weak_rsa(), kid="tiny"),
            public_jwk(ec.generate_private_key(ec.SECP384R1()), kid="p384"),
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kid": "no-kty"},
            public_jwk(rsa_private, kid="enc", use="enc"),
            public_jwk(rsa_private, kid="ps", alg="PS256"),
            public_jwk(good_ec, kid="good-ec"),
        ]
    }
    keys, problems = load_public_jwks(document)
    assert [key.kid for key in keys] == ["good-rsa", "good-ec"]
    assert [key.alg for key in keys] == ["RS256", "ES256"]
    assert len(problems) == 7
    assert "JWKS entry is not an object" in problems
    assert any("2048" in problem for problem in problems)
    assert any("P-256" in problem for problem in problems)


@pytest.mark.parametrize("document", [{}, {"keys": {}}, {"keys": None}, {"keys": "x"}], ids=repr)
def test_jwks_without_a_keys_array(document: dict[str, Any]) -> None:
    assert load_public_jwks(document) == ([], ["JWKS has no keys array"])


def test_keyset_first_key_with_a_kid_wins(
    rsa_private: rsa.RSAPrivateKey, other_rsa_private: rsa.RSAPrivateKey
) -> None:
    first = load_private_key(pem_of(rsa_private), kid="shared").public
    second = load_private_key(pem_of(other_rsa_private), kid="shared").public
    third = load_private_key(pem_of(other_rsa_private), kid="third").public
    keys = KeySet([first, second, third])
    assert len(keys) == 2
    assert list(keys) == ["shared", "third"]
    assert keys["shared"] is first
    assert keys.get("missing") is None
    merged = keys.union([second, load_private_key(pem_of(rsa_private), kid="fourth").public])
    assert merged["shared"] is first
    assert list(merged) == ["shared", "third", "fourth"]
    assert len(keys) == 2  # union returns a new set


def test_keyset_jwks_entries_verify_with_jwcrypto(
    signing_key: SigningKey, ec_signing_key: SigningKey, ed_signing_key: SigningKey
) -> None:
    keys = KeySet([signing_key.public, ec_signing_key.public, ed_signing_key.public])
    document = keys.jwks()
    assert [entry["kid"] for entry in document["keys"]] == [
        signing_key.kid,
        ec_signing_key.kid,
        ed_signing_key.kid,
    ]
    for entry, key in zip(
        document["keys"], (signing_key, ec_signing_key, ed_signing_key), strict=True
    ):
        assert entry["use"] == "sig"
        assert entry["alg"] == key.alg
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(entry)
        token = sign_compact({"alg": key.alg, "kid": key.kid}, {"sub": "user_1"}, key)
        assert jwcrypto_verify(token, entry)["kid"] == key.kid
    # The document parses back into the same keys.
    parsed, problems = load_public_jwks(json.loads(json.dumps(document)))
    assert problems == []
    assert [(key.kid, key.alg) for key in parsed] == [
        (key.kid, key.alg) for key in (signing_key, ec_signing_key, ed_signing_key)
    ]


def test_public_key_jwk_is_the_thumbprinted_members_plus_metadata(
    signing_key: SigningKey,
) -> None:
    entry = signing_key.public.jwk()
    assert set(entry) == {"kty", "n", "e", "kid", "alg", "use"}
    assert entry["e"] == "AQAB"
    assert isinstance(signing_key.public, PublicKey)
