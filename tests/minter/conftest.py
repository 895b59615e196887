"""Session-wide keys and builders for the pure-core tests (no I/O: keys live in memory)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from minter import KeySet, SigningKey, VerifyRules, load_private_key

from .builders import ISSUER, TokenFactory, pem_of


@pytest.fixture(scope="session")
def rsa_private() -> rsa.RSAPrivateKey:
    """The instance key: RSA-2048, generated once per test session."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def other_rsa_private() -> rsa.RSAPrivateKey:
    """A second RSA-2048 key, for signatures that must not verify."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def signing_key(rsa_private: rsa.RSAPrivateKey) -> SigningKey:
    return load_private_key(pem_of(rsa_private))


@pytest.fixture(scope="session")
def ec_signing_key() -> SigningKey:
    return load_private_key(pem_of(ec.generate_private_key(ec.SECP256R1())))


@pytest.fixture(scope="session")
def ed_signing_key() -> SigningKey:
    return load_private_key(pem_of(ed25519.Ed25519PrivateKey.generate()))


@pytest.fixture(scope="session")
def keyset(signing_key: SigningKey) -> KeySet:
    return KeySet([signing_key.public])


@pytest.fixture(scope="session")
def rules() -> VerifyRules:
    return VerifyRules(issuers=frozenset({ISSUER}))


@pytest.fixture(scope="session")
def make_token(signing_key: SigningKey, rsa_private: rsa.RSAPrivateKey) -> TokenFactory:
    return TokenFactory(signing_key, rsa_private)
