"""The ceiling's servers: a bare aiohttp handler answering the same bytes as an edge mint.

    python bench/ceiling_server.py PORT TOKEN_LENGTH [--crypto | --crypto-batched]

With `--crypto` the handler also does the raw `cryptography` RS256 verify and
sign of one mint before answering: the ceiling measured in one process, under
the same load as the edge (the additive ceiling adds a cost measured alone).
With `--crypto-batched` the verify and sign asked for in one loop turn run
together at the start of the next, as the edge's signatures do
(`proxy/batch.py`), which keeps the RSA arithmetic and the HTTP handling
from evicting each other's working set request by request.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from proxy.batch import LoopBatch

BODY = b'{"object":"token","jwt":"' + b"x" * int(sys.argv[2]) + b'"}'
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC = KEY.public_key()
MESSAGE = b"x" * 700
SIGNATURE = KEY.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256())
CRYPTO = "--crypto" in sys.argv
BATCHED = "--crypto-batched" in sys.argv
BATCH = LoopBatch()


def verify_and_sign() -> bytes:
    PUBLIC.verify(SIGNATURE, MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    return KEY.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256())


async def answer(request: web.Request) -> web.Response:
    await request.read()
    if CRYPTO:
        verify_and_sign()
    elif BATCHED:
        await BATCH.run(verify_and_sign)
    return web.Response(
        body=BODY,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


app = web.Application()
app.router.add_route("*", "/{tail:.*}", answer)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
