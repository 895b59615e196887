"""The modules setup.py compiles are the ones the tests run, and they match their source.

`pip install -e .` compiles the request path in place (setup.py), and an
extension module is imported before the `.py` beside it. So an edit to a
compiled module's source does nothing until the package is built again:
these tests fail then, instead of the suite quietly testing the old code.
`SESSION_MINTER_COMPILE=0` (a pure-Python build) is the one case where
nothing is compiled.
"""

from __future__ import annotations

import importlib
import os
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPILED: list[str] = runpy.run_path(str(ROOT / "setup.py"), run_name="setup")["COMPILED"]
PURE = os.environ.get("SESSION_MINTER_COMPILE", "1") == "0"


def _module_name(source: str) -> str:
    return source.removesuffix(".py").replace("/", ".")


def test_the_compiled_list_names_existing_modules() -> None:
    assert COMPILED
    for source in COMPILED:
        assert (ROOT / source).is_file(), source


@pytest.mark.parametrize("source", COMPILED)
def test_each_listed_module_is_imported_compiled_and_built_from_its_source(source: str) -> None:
    module = importlib.import_module(_module_name(source))
    loaded = Path(module.__file__ or "")
    if PURE:
        assert loaded.suffix == ".py"
        return
    assert loaded.suffix == ".so", f"{source} is not compiled: run `pip install -e .`"
    assert loaded.stat().st_mtime >= (ROOT / source).stat().st_mtime, (
        f"{source} changed after it was compiled: run `pip install -e .` again"
    )


def test_modules_left_interpreted_are_not_compiled() -> None:
    # bench/unsigned_edge.py replaces SigningKey.sign, which a compiled class refuses.
    import minter.keys

    assert Path(minter.keys.__file__ or "").suffix == ".py"
    assert "minter/keys.py" not in COMPILED
