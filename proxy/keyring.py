"""The keys the edge trusts and signs with.

The edge's own keys come from config (the first signs, all are published);
the origin's come from its JWKS, fetched at start, refreshed periodically,
refetched when a token names an unknown `kid` (at most once per
`min_refetch_s`, so garbage kids cannot turn into a flood of fetches), and
kept as the last good copy when a fetch fails.

With `cache_file`, the last good origin JWKS is also written there (to a
temporary file in the same folder, fsynced, then renamed over the old one,
so a crash never leaves half a file) whenever it changes, and read back at
start: an edge restarted during an origin outage still verifies the tokens
clients post. A cache file that is missing or unreadable is logged and
ignored; a fetched JWKS always replaces what the file held.

Rotation (`rotate`, run on SIGHUP): the key files named in config are read
again and the first one signs from then on. An edge key that is no longer
configured is not dropped at once: its public half stays published and
trusted for `overlap_s` (tokens it signed are still live, still posted back
for cloning, and still held by verifiers that cached the JWKS), then it
goes. A key configured again while retiring is simply kept.

Every fetch (at start, periodic, unknown kid) is reported to `on_fetch`
with its result, for the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import aiohttp
import orjson

from minter import KeySet, PublicKey, SigningKey, load_public_jwks

from .reading import read_capped_stream

__all__ = ["KeyRing"]

log = logging.getLogger(__name__)
_MAX_JWKS_BYTES = 1024 * 1024


class KeyRing:
    def __init__(
        self,
        signing: Sequence[SigningKey],
        *,
        jwks_url: str,
        min_refetch_s: float,
        clock: Callable[[], float],
        cache_file: Path | None = None,
        on_fetch: Callable[[bool], None] | None = None,
    ) -> None:
        if not signing:
            raise ValueError("at least one signing key is needed")
        self._signing = tuple(signing)
        self._edge_public = [key.public for key in signing]
        self._retiring: dict[str, tuple[PublicKey, float]] = {}  # kid -> (key, until)
        self._next_retirement = float("inf")
        self._on_fetch = on_fetch
        self._origin_keys: list[PublicKey] = []
        self._jwks_url = jwks_url
        self._min_refetch_s = min_refetch_s
        self._clock = clock
        self._last_fetch = float("-inf")
        self._fetch_lock = asyncio.Lock()
        self.origin_keys_known = False
        self.fetches = 0
        self._cache_file = cache_file
        self._cached_body: bytes | None = None
        self._shadowed: set[str] = set()  # kids already logged as clashing
        self._rebuild()
        if cache_file is not None:
            self._load_cache(cache_file)

    @property
    def active(self) -> SigningKey:
        return self._signing[0]

    @property
    def keys(self) -> KeySet:
        self._retire_due()
        return self._keys

    @property
    def jwks_body(self) -> bytes:
        """The JWKS document the edge publishes: its keys, retiring keys, the origin's."""
        self._retire_due()
        return self._jwks_body

    @property
    def jwks_etag(self) -> str:
        self._retire_due()
        return self._jwks_etag

    def _retire_due(self) -> None:
        if self._clock() >= self._next_retirement:
            self._rebuild()

    @property
    def signing(self) -> tuple[SigningKey, ...]:
        return self._signing

    @property
    def retiring(self) -> dict[str, float]:
        """Kids of edge keys still published after a rotation, with when they go."""
        self._retire_due()
        return {kid: until for kid, (_key, until) in self._retiring.items()}

    def rotate(self, signing: Sequence[SigningKey], *, overlap_s: float) -> None:
        """Sign with `signing[0]` from now on; keep dropped edge keys for `overlap_s`."""
        if not signing:
            raise ValueError("at least one signing key is needed")
        now = self._clock()
        published = {key.kid: key for key in self._edge_public}
        published.update({kid: key for kid, (key, _until) in self._retiring.items()})
        for incoming in signing:
            held = published.get(incoming.kid)
            if held is not None and held.jwk() != incoming.public.jwk():
                raise ValueError(
                    f"kid {incoming.kid!r} names another key already published: give the new"
                    " key a kid of its own (tokens the old one signed must still verify)"
                )
        kept = {key.kid for key in signing}
        for key in self._edge_public:
            if key.kid not in kept and key.kid not in self._retiring:
                self._retiring[key.kid] = (key, now + overlap_s)
        for kid in kept:
            self._retiring.pop(kid, None)
        self._signing = tuple(signing)
        self._edge_public = [key.public for key in signing]
        self._rebuild()
        log.warning(
            "signing keys reloaded: kid %s signs; %d published, %d retiring",
            self.active.kid,
            len(self._edge_public),
            len(self._retiring),
        )

    def _rebuild(self) -> None:
        now = self._clock()
        self._retiring = {kid: entry for kid, entry in self._retiring.items() if entry[1] > now}
        self._next_retirement = min(
            (until for _key, until in self._retiring.values()), default=float("inf")
        )
        retiring = [key for key, _until in self._retiring.values()]
        edge = {key.kid: key for key in [*self._edge_public, *retiring]}
        for key in self._origin_keys:
            mine = edge.get(key.kid)
            if mine is not None and mine.jwk() != key.jwk() and key.kid not in self._shadowed:
                self._shadowed.add(key.kid)
                log.error(
                    "the origin's JWKS has another key under the edge's kid %s: tokens the"
                    " origin signs with it will not verify here; give the edge key its own kid",
                    key.kid,
                )
        self._keys = KeySet([*self._edge_public, *retiring, *self._origin_keys])
        body = orjson.dumps(self._keys.jwks())
        self._jwks_body = body
        self._jwks_etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'

    async def refresh(self, session: aiohttp.ClientSession) -> bool:
        """Fetch the origin's JWKS; keep the last good copy on failure."""
        async with self._fetch_lock:
            return await self._fetch(session)

    async def _fetch(self, session: aiohttp.ClientSession) -> bool:
        self._last_fetch = self._clock()
        self.fetches += 1
        ok = await self._fetch_once(session)
        if self._on_fetch is not None:
            self._on_fetch(ok)
        return ok

    async def _fetch_once(self, session: aiohttp.ClientSession) -> bool:
        try:
            async with session.get(self._jwks_url, allow_redirects=False) as response:
                if response.status != 200:
                    log.warning("origin JWKS fetch answered %s", response.status)
                    return False
                body = await read_capped_stream(response.content, _MAX_JWKS_BYTES)
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("origin JWKS fetch failed: %s", type(exc).__name__)
            return False
        if body is None:
            log.warning("origin JWKS is too large")
            return False
        if not self._adopt(body, "origin JWKS"):
            return False
        if self._cache_file is not None and body != self._cached_body:
            try:
                await asyncio.to_thread(_write_atomically, self._cache_file, body)
            except OSError as exc:
                log.error("origin JWKS not cached to %s: %s", self._cache_file, exc.strerror)
            else:
                self._cached_body = body
        return True

    def _adopt(self, body: bytes, source: str) -> bool:
        """Use the keys of a JWKS document; False (keys unchanged) when it has none."""
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            log.warning("%s is not JSON", source)
            return False
        if not isinstance(document, dict):
            log.warning("%s is not an object", source)
            return False
        keys, problems = load_public_jwks(document)
        for problem in problems:
            log.warning("%s: skipped a key: %s", source, problem)
        if not keys:
            return False
        self._origin_keys = keys
        self.origin_keys_known = True
        self._rebuild()
        return True

    def _load_cache(self, path: Path) -> None:
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("origin JWKS cache %s unreadable: %s", path, exc.strerror)
            return
        if len(body) <= _MAX_JWKS_BYTES and self._adopt(body, f"origin JWKS cache {path}"):
            self._cached_body = body
            log.info("origin JWKS loaded from %s (%d keys)", path, len(self._origin_keys))

    async def refetch_for(self, kid: str, session: aiohttp.ClientSession) -> bool:
        """A token named an unknown kid: refetch (rate-limited); True when now known."""
        async with self._fetch_lock:
            if kid in self._keys:
                return True
            if self._clock() - self._last_fetch < self._min_refetch_s:
                return False
            await self._fetch(session)
            return kid in self._keys


def _write_atomically(path: Path, body: bytes) -> None:
    """Replace `path` with `body`: a temporary file beside it, fsynced, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
