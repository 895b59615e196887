"""`session-minter` with the RSA signature replaced by fixed bytes.

    python bench/unsigned_edge.py serve --config FILE

For `bench/instructions.py` only: under callgrind, OpenSSL's big-number loops
would drown the rest of an edge mint, which is what is being counted. The
tokens it answers do not verify; in the steady state nothing checks them,
because a browser posts back the edge's own last token, which the edge knows
by digest (`proxy/signed.py`).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minter.keys import SigningKey


def _fixed_signature(self: SigningKey, signing_input: bytes) -> bytes:
    return b"\x00" * 256


SigningKey.sign = _fixed_signature  # type: ignore[method-assign]

from proxy.cli import main  # noqa: E402

sys.argv = ["session-minter", *sys.argv[1:]]
main()
