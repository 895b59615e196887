"""The token route: `POST {prefix}/v1/client/sessions/{sid}/tokens[/{template}]`.

Read the form, verify the posted token, ask `minter.decide`, then act: mint
at the edge, send the refresh on to the origin (and learn the `oiat` and
claims of what it answers), or refuse in the Clerk error shape. When the
origin fails (connect error, timeout, 502/503/504, or a 200 without a
token), the same question is asked again with the origin unavailable, which
falls back to an edge mint under the outage bound, a 422
`missing_expired_token` or a 503, never an empty token and never a 401.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import secrets
import time
from dataclasses import dataclass

import orjson
from aiohttp import web

from minter import (
    Decision,
    Mint,
    RefreshRequest,
    Refuse,
    SessionState,
    SigningKey,
    TokenRejected,
    ToOrigin,
    UnknownKey,
    VerifiedToken,
    decide,
    prepare_clone,
    record_of,
    sign_encoded,
    verify_session_token,
    verify_signed_here,
)
from minter.jws import encode_json

from .clients import client_key
from .cookieguard import without_sign_out_cookies
from .errors import clerk_error, json_response
from .form import BadRefresh, RefreshForm, parse_refresh
from .forward import OriginAnswer, OriginFailure, fetch_buffered
from .headers import forwarded_response_headers
from .health import UNAVAILABLE_STATUSES
from .limits import LIMITS, SignBusy
from .logs import note_decision
from .reading import read_capped
from .services import SERVICES, Services
from .store import Settled, StoreUnavailable
from .tokenlog import token_hint

__all__ = ["TOKEN_PATH", "handle_refresh"]

log = logging.getLogger(__name__)

TOKEN_PATH = re.compile(
    r"/v1/client/sessions/(?P<sid>[A-Za-z0-9_]{1,128})/tokens(?:/(?P<template>[A-Za-z0-9_.-]{1,128}))?"
)
_FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True, init=False)
class _Refresh:
    request: RefreshRequest
    form: RefreshForm
    verified: VerifiedToken | TokenRejected | None

    # Written out (`init=False`): mypyc compiles it, a generated one stays interpreted.
    def __init__(
        self,
        request: RefreshRequest,
        form: RefreshForm,
        verified: VerifiedToken | TokenRejected | None,
    ) -> None:
        object.__setattr__(self, "request", request)
        object.__setattr__(self, "form", form)
        object.__setattr__(self, "verified", verified)


async def _read_body(request: web.Request, limit: int) -> bytes | web.Response:
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        return clerk_error(request, 415, "unsupported_encoding", "compressed bodies are refused")
    body = await read_capped(request, limit)
    if body is None:
        return clerk_error(request, 413, "request_too_large", "the request body is too large")
    if body and request.content_type != _FORM:
        return clerk_error(request, 415, "unsupported_media_type", f"send {_FORM}")
    return body


async def handle_refresh(
    request: web.Request, session_id: str, template: str | None
) -> web.StreamResponse:
    services = request.app[SERVICES]
    limits = request.app[LIMITS]
    limited = limits.check_ip(request)  # before the body is read or anything verified
    if limited is not None:
        return limited
    body = await _read_body(request, services.settings.server.max_body_bytes)
    if isinstance(body, web.Response):
        return body
    try:
        # The raw query: `query_string` is already percent-decoded (decoding it twice
        # mangles values, and decoded control characters cannot be sent on).
        form = parse_refresh(body, request.raw_path.partition("?")[2])
    except BadRefresh as exc:
        return clerk_error(request, 400, "form_param_format_invalid", str(exc))
    posted = form.token or form.expired_token
    refresh_request = RefreshRequest(
        session_id=session_id,
        template=template,
        force_origin=form.force_origin,
        organization_id=form.organization_id,
        token=posted,
        client_key=client_key(request),
    )
    now = services.now()
    verified: VerifiedToken | TokenRejected | None = None
    if posted is not None and template is None and not form.force_origin:
        verified = await _verify(services, posted, session_id, now, posted_by_client=True)
    if isinstance(verified, VerifiedToken):  # only a verified sid has a session budget
        limited = limits.check_session(request, session_id, refresh_request.client_key)
        if limited is not None:
            return limited
    refresh = _Refresh(refresh_request, form, verified)
    available = services.health.available
    state = _when_store_down(services, await _state(services, verified, session_id), available)
    decision = decide(
        refresh_request,
        verified,
        state,
        now=now,
        bounds=services.bounds,
        origin_available=available,
    )
    return await _act(request, services, refresh, decision, state, now)


async def _verify(
    services: Services, token: str, session_id: str, now: int, *, posted_by_client: bool
) -> VerifiedToken | TokenRejected:
    """Verify a token; one the client posted may be one this edge signed (`signed.py`)."""
    keyring = services.keyring
    # The size cap first: an oversized token is refused without being hashed.
    signed = (
        services.signed.recall(session_id, token)
        if posted_by_client and len(token) <= services.rules.max_token_bytes
        else None
    )
    for attempt in range(2):
        try:
            if signed is not None:
                header_json, claims_json = signed
                return verify_signed_here(
                    header_json,
                    claims_json,
                    session_id=session_id,
                    keys=keyring.keys,
                    rules=services.rules,
                    now=now,
                )
            return verify_session_token(
                token, session_id=session_id, keys=keyring.keys, rules=services.rules, now=now
            )
        except UnknownKey as exc:
            if attempt or not await keyring.refetch_for(exc.kid, services.origin.buffered_session):
                return exc
        except TokenRejected as exc:
            return exc
    raise AssertionError("unreachable")  # pragma: no cover


async def _state(
    services: Services, verified: VerifiedToken | TokenRejected | None, session_id: str
) -> SessionState | None:
    if not isinstance(verified, VerifiedToken):
        return SessionState()
    try:
        return await services.store.state(
            session_id, verified.organization_id, str(verified.claims["sub"])
        )
    except StoreUnavailable:
        services.metrics.store_errors.inc()
        return None


def _when_store_down(
    services: Services, state: SessionState | None, origin_available: bool
) -> SessionState | None:
    """`[store] when_unavailable`: with the store and the origin both down, "origin"
    (the default) keeps `None` (no edge mint: 503), "mint" mints under the outage
    bound without revocation or freshness checks (an empty state)."""
    if (
        state is None
        and not origin_available
        and services.settings.store.when_unavailable == "mint"
    ):
        return SessionState()
    return state


async def _act(
    request: web.Request,
    services: Services,
    refresh: _Refresh,
    decision: Decision,
    state: SessionState | None,
    now: int,
) -> web.StreamResponse:
    if isinstance(decision, Mint):
        return await _mint(request, services, refresh, decision, state, now)
    if isinstance(decision, Refuse):
        return _refuse(request, services, decision)
    return await _to_origin(request, services, refresh, decision, state)


def _record(request: web.Request, services: Services, outcome: str, reason: str) -> None:
    services.metrics.decisions.inc((outcome, reason))
    note_decision(request, outcome, reason)


async def _mint(
    request: web.Request,
    services: Services,
    refresh: _Refresh,
    plan: Mint,
    state: SessionState | None,
    now: int,
) -> web.StreamResponse:
    started = time.perf_counter()
    session_id = refresh.request.session_id
    key = services.keyring.active
    clone = prepare_clone(plan, key=key, now=now)
    coalesce = services.settings.limits.coalesce
    identity, jwt = services.coalescer.recent(clone, key) if coalesce else (None, None)
    if jwt is None:
        header_json = encode_json(clone.header)
        claims_json = encode_json(clone.claims_with(jti=secrets.token_hex(10)))
        try:
            # Identical clones waiting for the same batch share its one signature,
            # and with it the JSON that was signed (its `jti` is the first one's).
            signed, header_json, claims_json = await request.app[LIMITS].signs.run(
                functools.partial(_sign, header_json, claims_json, key), share=identity
            )
        except SignBusy:
            return request.app[LIMITS].busy(request)
        if identity is not None:
            services.coalescer.keep(identity, signed)
        services.signed.add(session_id, signed, header_json, claims_json)
        jwt = signed
    verified: VerifiedToken = refresh.verified  # type: ignore[assignment]
    settled: Settled | None = None
    try:
        # One round trip: see a sign-out, fresher claims or a stale mark that
        # landed while this token was being signed, else keep fresher posted claims.
        settled = await services.store.settle(
            session_id, verified.organization_id, oiat=plan.record.oiat, record=plan.remember
        )
    except StoreUnavailable:
        services.metrics.store_errors.inc()
        state = _when_store_down(services, None, not plan.outage)
        if state is not None:  # `when_unavailable = "mint"` in an outage: it leaves
            settled = Settled.KEPT
    if settled is not Settled.KEPT:
        if settled is Settled.REVOKED:
            state = SessionState(revoked=True)
        elif settled is Settled.SUPERSEDED:  # decided again on what the store now holds
            state = _when_store_down(
                services,
                await _state(services, verified, session_id),
                services.health.available and not plan.outage,
            )
        # Asked again with what the store now says: the token signed above stays here.
        decision = decide(
            refresh.request,
            verified,
            state,
            now=now,
            bounds=services.bounds,
            origin_available=services.health.available and not plan.outage,
        )
        return await _act(request, services, refresh, decision, state, now)
    services.metrics.mint_seconds.observe((), time.perf_counter() - started)
    _record(request, services, "minted", "outage" if plan.outage else "edge")
    body = b'{"object":"token","jwt":"' + jwt.encode("ascii") + b'"}'
    return json_response(request, 200, body)


def _sign(header_json: bytes, claims_json: bytes, key: SigningKey) -> tuple[str, bytes, bytes]:
    """The token, with the JSON it signs (for `signed.py`)."""
    return sign_encoded(header_json, claims_json, key), header_json, claims_json


def _refuse(request: web.Request, services: Services, refusal: Refuse) -> web.Response:
    _record(request, services, "refused", str(refusal.reason))
    return clerk_error(
        request,
        refusal.status,
        refusal.code,
        refusal.message,
        retry_after_s=refusal.retry_after_s,
    )


def _origin_path(request: web.Request, form: RefreshForm) -> str:
    path, query = request.raw_path.partition("?")[0], form.origin_query
    return f"{path}?{query}" if query else path


def _token_in(answer: OriginAnswer) -> str | None:
    try:
        document = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        return None
    jwt = document.get("jwt") if isinstance(document, dict) else None
    return jwt if isinstance(jwt, str) and jwt else None


async def _to_origin(
    request: web.Request,
    services: Services,
    refresh: _Refresh,
    decision: ToOrigin,
    state: SessionState | None,
) -> web.StreamResponse:
    started = time.perf_counter()
    failure: str | None = None
    answer: OriginAnswer | None = None
    jwt: str | None = None
    sent_at = services.health.attempt()
    if sent_at is None:  # half-open, and another request is the probe
        return await _without_origin(request, services, refresh, state)
    try:
        answer = await fetch_buffered(
            services.origin,
            request,
            raw_path=_origin_path(request, refresh.form),
            body=refresh.form.origin_body,
        )
    except OriginFailure as exc:
        failure = exc.kind
        services.health.record_failure(failure, sent_at=sent_at)
    else:
        elapsed = time.perf_counter() - started
        services.metrics.origin_seconds.observe(elapsed)
        jwt = _token_in(answer) if answer.status == 200 else None
        if answer.status == 200 and jwt is None:
            failure = "empty_token"
            services.health.record_failure(failure, sent_at=sent_at)
        else:
            # 4xx and 429 are the origin's own answers: successes for the breaker.
            kind = services.health.record_answer(answer.status, elapsed, sent_at=sent_at)
            if answer.status in UNAVAILABLE_STATUSES:
                failure = kind
            elif kind is not None:  # slow, or a 500: the origin's answer, only counted
                services.metrics.origin_failures.labels(kind).inc()
    if failure is not None or answer is None:
        services.metrics.origin_failures.labels(failure or "unknown").inc()
        return await _without_origin(request, services, refresh, state)
    _record(request, services, "origin", decision.label)
    if jwt is not None and refresh.request.template is None:
        await _learn(services, refresh.request, jwt)
    headers = forwarded_response_headers(answer.headers)
    if answer.status >= 500:
        headers = without_sign_out_cookies(headers, now=services.clock())
    return web.Response(status=answer.status, body=answer.body, headers=headers)


async def _without_origin(
    request: web.Request,
    services: Services,
    refresh: _Refresh,
    state: SessionState | None,
) -> web.StreamResponse:
    """Decide again with the origin unavailable: an outage mint, a 422 or a 503.

    Decided as of now, when the origin has failed, not when the request came:
    the origin may have taken its whole timeout to fail, and a token dated
    before that would leave with that much less of its life and of the claims
    bound (or already expired). The posted token is verified again as of now.
    """
    now = services.now()
    refresh = await _verified_again(services, refresh, now)
    state = _when_store_down(services, state, False)
    fallback = decide(
        refresh.request,
        refresh.verified,
        state,
        now=now,
        bounds=services.bounds,
        origin_available=False,
    )
    if isinstance(fallback, ToOrigin):  # pragma: no cover - decide never routes when down
        raise AssertionError("decide routed to an unavailable origin")
    return await _act(request, services, refresh, fallback, state, now)


async def _verified_again(services: Services, refresh: _Refresh, now: int) -> _Refresh:
    """`refresh` with its posted token verified as of `now`, when it was verified before."""
    posted = refresh.request.token
    if refresh.verified is None or posted is None:
        return refresh
    verified = await _verify(
        services, posted, refresh.request.session_id, now, posted_by_client=True
    )
    return dataclasses.replace(refresh, verified=verified)


async def _learn(services: Services, refreshed: RefreshRequest, jwt: str) -> None:
    """Record the `oiat` and claims of a session token the origin just issued."""
    session_id = refreshed.session_id
    verified = await _verify(services, jwt, session_id, services.now(), posted_by_client=False)
    if isinstance(verified, TokenRejected):
        log.warning("origin token not recorded: %s (token %s)", verified.reason, token_hint(jwt))
        return
    store = services.store
    try:
        await store.remember(session_id, verified.organization_id, record_of(verified))
        if refreshed.client_key is not None:
            await store.note_client_session(refreshed.client_key, session_id)
    except StoreUnavailable:
        services.metrics.store_errors.inc()
