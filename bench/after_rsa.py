"""How much slower plain Python runs right after a batch of RS256 signatures.

    python bench/after_rsa.py [--rounds 60]

Each round signs 20 tokens (about one loop turn's batch of the edge under
`bench/run.py`'s load), then times a few milliseconds of dict-and-string
work; a control round spins on the clock for as long instead of signing.
Printed: the ratio of the two timings, measured alternately in one run,
pinned to one CPU where it can be. OpenSSL signs RSA-2048 with AVX-512
code where the CPU has it; run with
`OPENSSL_ia32cap="~0x0:~0xC0230000"` to mask AVX-512 and compare.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

BATCH = 20
CHUNKS = 40  # of plain Python after each batch, about 100 µs each


def plain_python() -> int:
    table = {n: str(n) for n in range(600)}
    return sum(len(text) for text in table.values())


def timed_after(before: Callable[[], None], rounds: int) -> float:
    """Seconds of `plain_python` work per round, each round run right after `before()`."""
    total = 0.0
    for _ in range(rounds):
        before()
        started = time.perf_counter()
        for _ in range(CHUNKS):
            plain_python()
        total += time.perf_counter() - started
    return total / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    message = b"x" * 700

    def sign_batch() -> None:
        for _ in range(BATCH):
            key.sign(message, padding.PKCS1v15(), hashes.SHA256())

    sign_batch()  # warm
    started = time.perf_counter()
    sign_batch()
    batch_s = time.perf_counter() - started

    def spin() -> None:  # scalar work for as long as a batch of signatures
        until = time.perf_counter() + batch_s
        while time.perf_counter() < until:
            pass

    after_sign = after_spin = 0.0
    for _ in range(2):  # alternate, so that a change in the machine's load hits both
        after_sign += timed_after(sign_batch, args.rounds)
        after_spin += timed_after(spin, args.rounds)
    print(f"{BATCH} RS256 signatures: {batch_s / BATCH * 1e6:.0f} us each")
    print(f"plain Python after them: {after_sign / 2 * 1e6:.0f} us per round")
    print(f"the same after spinning: {after_spin / 2 * 1e6:.0f} us per round")
    print(f"ratio after signing / after spinning: {after_sign / after_spin:.2f}")


if __name__ == "__main__":
    main()
