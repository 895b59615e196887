"""A reference point: the naive edge mint, aiohttp + pyjwt, with none of the edge's checks.

    python bench/naive_server.py PORT ORIGIN_JWKS_URL EDGE_KEY_PEM

It reads the form, verifies the posted token with `jwt.decode` (the origin's
keys and the edge's own), re-stamps `iat`/`exp`, signs with `jwt.encode` and
answers. No store, limits, logs, metrics, policy or client binding: what
"just clone the JWT" costs, for comparison with the real edge.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web

from minter import load_private_key

PORT, JWKS_URL, PEM = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with urllib.request.urlopen(JWKS_URL) as answer:  # noqa: S310 - the bench's own origin
    KEYS: dict[str, Any] = {k["kid"]: jwt.PyJWK(k).key for k in json.load(answer)["keys"]}
EDGE = load_private_key(Path(PEM).read_bytes())
KEYS[EDGE.kid] = EDGE.private.public_key()


async def mint(request: web.Request) -> web.Response:
    form = await request.post()
    token = str(form["token"])
    kid = jwt.get_unverified_header(token)["kid"]
    claims = jwt.decode(
        token, KEYS[kid], algorithms=["RS256"], options={"verify_exp": False, "verify_aud": False}
    )
    claims["iat"] = int(time.time())
    claims["exp"] = claims["iat"] + 60
    signed = jwt.encode(claims, EDGE.private, algorithm="RS256", headers={"kid": EDGE.kid})
    return web.json_response({"object": "token", "jwt": signed})


app = web.Application()
app.router.add_route("POST", "/{tail:.*}", mint)
web.run_app(app, host="127.0.0.1", port=PORT, print=None, access_log=None)
