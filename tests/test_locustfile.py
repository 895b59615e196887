"""The load test runs in docker-compose.yml's stock `locustio/locust` image.

That image holds locust and its own dependencies; compose mounts only
`locustfile.py` and `fapi_client/` beside them. So what those files import
when locust loads them must be the standard library, locust, or
`fapi_client` itself. (Importing the locustfile here would let gevent patch
this process, so it is read as source.)
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from proxy.metrics import Metrics

ROOT = Path(__file__).resolve().parents[1]
IN_THE_IMAGE = frozenset({"locust", "fapi_client"})


def loaded_imports(path: Path) -> set[str]:
    """Top-level packages imported when the module loads (not inside functions)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names - {"__future__"}


def test_the_locustfile_loads_with_what_the_locust_image_holds() -> None:
    loaded = [ROOT / "locustfile.py"] + [
        ROOT / "fapi_client" / name for name in ("__init__.py", "flow.py", "freshness.py")
    ]
    for path in loaded:
        missing = loaded_imports(path) - sys.stdlib_module_names - IN_THE_IMAGE
        assert not missing, f"{path.name} imports {sorted(missing)}"


def decision_pattern() -> re.Pattern[str]:
    """The locustfile's `_DECISION`, compiled from its source."""
    for node in ast.parse((ROOT / "locustfile.py").read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "_DECISION":
            assert isinstance(node.value, ast.Call)
            pattern = ast.literal_eval(node.value.args[0])
            assert isinstance(pattern, str)
            return re.compile(pattern, re.MULTILINE)
    raise AssertionError("no _DECISION in locustfile.py")


def test_the_locustfile_reads_the_edges_decision_counts() -> None:
    metrics = Metrics()
    metrics.decisions.inc(("minted", "edge"), 3)
    metrics.decisions.inc(("origin", "invalid:expired"))
    text = metrics.render().decode()
    found = decision_pattern().findall(text)
    assert sorted(found) == [("minted", "edge", "3.0"), ("origin", "invalid:expired", "1.0")]
