"""The public surface of `minter`: exactly the curated names, each one real."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import minter

PUBLIC = {
    # errors
    "MinterError",
    "KeyMaterialError",
    "TokenRejected",
    "MalformedToken",
    "ForbiddenHeader",
    "UnknownKey",
    "AlgorithmMismatch",
    "BadSignature",
    "ClaimRejected",
    "TokenExpired",
    # keys
    "KeySet",
    "PublicKey",
    "SigningKey",
    "load_private_key",
    "load_public_jwk",
    "load_public_jwks",
    "thumbprint",
    # verify
    "IGNORED_CAT",
    "MAX_TOKEN_BYTES",
    "SESSION_TOKEN_CAT",
    "VerifiedToken",
    "VerifyRules",
    "organization_of",
    "verify_session_token",
    "verify_signed_here",
    # claims
    "ClaimsRecord",
    "age_fva",
    "clone_claims",
    "record_of",
    # policy
    "Bounds",
    "Decision",
    "Mint",
    "Reason",
    "RefreshRequest",
    "Refuse",
    "SessionState",
    "ToOrigin",
    "decide",
    # mint
    "Clone",
    "mint_token",
    "prepare_clone",
    "sign_clone",
    "sign_compact",
    "sign_encoded",
}

MODULES = ["errors", "jws", "keys", "verify", "claims", "policy", "mint"]


def test_all_is_exactly_the_curated_surface() -> None:
    assert len(minter.__all__) == len(set(minter.__all__))
    assert set(minter.__all__) == PUBLIC


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_public_name_resolves_to_a_minter_object(name: str) -> None:
    value = getattr(minter, name)
    if inspect.isclass(value) or inspect.isfunction(value):
        assert value.__module__.startswith("minter."), value.__module__
    namespace: dict[str, object] = {}
    exec(f"from minter import {name}", namespace)  # noqa: S102 - a fixed, known name
    assert namespace[name] is value


@pytest.mark.parametrize("module_name", MODULES)
def test_each_module_all_resolves_and_feeds_the_package(module_name: str) -> None:
    module = importlib.import_module(f"minter.{module_name}")
    names = module.__all__
    assert len(names) == len(set(names))
    for name in names:
        assert hasattr(module, name), f"minter.{module_name}.{name}"
        if name in PUBLIC:
            assert getattr(minter, name) is getattr(module, name)


def test_every_public_name_is_in_its_modules_all() -> None:
    exported = set().union(*(importlib.import_module(f"minter.{m}").__all__ for m in MODULES))
    assert exported >= PUBLIC


def test_the_error_tree() -> None:
    assert issubclass(minter.KeyMaterialError, minter.MinterError)
    assert issubclass(minter.TokenRejected, minter.MinterError)
    for leaf in (
        minter.MalformedToken,
        minter.ForbiddenHeader,
        minter.UnknownKey,
        minter.AlgorithmMismatch,
        minter.BadSignature,
        minter.ClaimRejected,
    ):
        assert leaf.__bases__ == (minter.TokenRejected,)
    assert minter.TokenExpired.__bases__ == (minter.ClaimRejected,)


IO_MODULES = {"aiohttp", "asyncio", "os", "time", "socket", "pathlib", "redis", "proxy", "origin"}


@pytest.mark.parametrize("module_name", MODULES)
def test_the_core_imports_no_io_layer(module_name: str) -> None:
    # Read from the file: a module compiled by mypyc (setup.py) has no source to inspect.
    tree = ast.parse((Path(minter.__file__).parent / f"{module_name}.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert imported
    assert not imported & IO_MODULES
