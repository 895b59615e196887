"""The build: the modules a token refresh runs through are compiled to C by mypyc.

Everything else about the package is in `pyproject.toml`. A refresh minted
at the edge is an RS256 signature plus a few hundred microseconds of Python
(reading the form, checking the posted token, the policy, the store, the
answer). mypyc compiles that Python, which is typed for `mypy --strict`
already, into C, and the edge runs about 40% fewer instructions of its own
per mint (README, "Performance"). The compiled modules behave as the source
says, and they check their annotations at run time as well.

A dataclass's generated `__init__` stays interpreted under mypyc, so the
value classes built on every refresh write theirs out (`init=False`);
`tests/test_written_inits.py` holds them to their fields.

`SESSION_MINTER_COMPILE=0` builds the pure-Python package instead (no C
compiler needed): the same behaviour, slower.

Only the request path is compiled. Start-up, configuration and the command
line stay interpreted, and so do modules that define async generators
(which mypyc does not compile) or that tests and benchmarks patch
(`minter.keys`: `bench/unsigned_edge.py` replaces its signature).
"""

from __future__ import annotations

import os

from setuptools import setup

COMPILED = [
    "minter/claims.py",
    "minter/jws.py",
    "minter/mint.py",
    "minter/policy.py",
    "minter/verify.py",
    "proxy/batch.py",
    "proxy/bearer.py",
    "proxy/clients.py",
    "proxy/coalesce.py",
    "proxy/cookieguard.py",
    "proxy/errors.py",
    "proxy/expiring.py",
    "proxy/form.py",
    "proxy/headers.py",
    "proxy/limits.py",
    "proxy/health.py",
    "proxy/logs.py",
    "proxy/metrics.py",
    "proxy/reading.py",
    "proxy/redact.py",
    "proxy/requestlines.py",
    "proxy/routes.py",
    "proxy/services.py",
    "proxy/signed.py",
    "proxy/signout.py",
    "proxy/tokenlog.py",
    "proxy/tokens.py",
    "proxy/store/base.py",
    "proxy/store/memory.py",
    "proxy/store/pending.py",
    "proxy/store/redis.py",
]


def _extensions() -> list[object]:
    if os.environ.get("SESSION_MINTER_COMPILE", "1") == "0":
        return []
    from mypyc.build import mypycify

    return list(mypycify(COMPILED, opt_level="3"))


if __name__ == "__main__":  # as setuptools runs it; tests read COMPILED
    setup(ext_modules=_extensions())
