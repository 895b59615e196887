"""The raw cryptography cost of one edge mint: one RS256 verify and one RS256 sign."""

from __future__ import annotations

import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def crypto_cost_us(rounds: int = 2000) -> float:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key()
    message = b"x" * 700
    signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    started = time.perf_counter()
    for _ in range(rounds):
        public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return (time.perf_counter() - started) / rounds * 1e6
