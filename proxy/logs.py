"""Logging: one JSON object per line (or plain text), and one line per request.

`configure_logging` sets the process's root handler on stderr, in the
`server.log_format` shape. Lines go through a bounded queue to a writer
thread (`logwriter`): a stalled stderr never blocks the event loop; lines
that do not fit are dropped and counted. In JSON every record is one object with `time`
(UTC, ISO 8601), `level`, `logger`, `message`, the request fields below when
the record has them, and `exc` (the traceback as one string) for exceptions.

`install_request_log` routes every request of the edge through a step that
counts `session_minter_requests_total{route,status}`, observes
`session_minter_request_seconds{route}`, and logs one line on the
`session_minter.request` logger with:

    request_id  the caller's `X-Request-Id` when it comes from a trusted proxy
                and is well-formed (letters, digits, `._:-`, at most 128),
                else 16 fresh hex characters; echoed in the answer's
                `X-Request-Id` unless the origin's answer already has one
    method, route, path, status
    decision, reason   on the token route: minted / origin / refused, and why
    latency_ms  to the handler's return (a streamed body may still be flowing)

Choices the design leaves open:

- The path is logged without its query (queries carry credentials:
  `expired_token`, `__clerk_db_jwt`), cut to 256 characters, and any
  JWT-shaped run in it is replaced by `<jwt:hint>` with `tokenlog.token_hint`,
  so no whole token reaches a log line.
- Successful `/healthz`, `/readyz` and `/metrics` answers are counted but not
  logged: probes every few seconds would drown the lines that matter.
- A request whose client went away before the answer is logged with status
  499 (as nginx does), then the cancellation goes on; one whose client hung
  up in the middle of its body likewise, without a traceback.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TextIO

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .logwriter import DEFAULT_BUFFER_BYTES, WriterHandler, install
from .metrics import Metrics
from .reading import expect_continue
from .requestlines import RequestLines
from .tokenlog import hash_jwts

__all__ = [
    "REQUEST_NOTE",
    "JsonFormatter",
    "MalformedRequestFilter",
    "RequestNote",
    "TextFormatter",
    "configure_logging",
    "install_request_log",
    "note_decision",
    "note_route",
    "safe_path",
]

request_log = logging.getLogger("session_minter.request")

_FIELDS = ("request_id", "method", "route", "path", "status", "decision", "reason", "latency_ms")
_QUIET_ROUTES = frozenset({"healthz", "readyz", "metrics"})
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_MAX_PATH = 256
_CLIENT_GONE = 499


@dataclass(slots=True, init=False)
class RequestNote:
    """What the handlers tell the request log about one request."""

    request_id: str
    route: str
    decision: str | None
    reason: str | None

    # Written out (`init=False`): mypyc compiles it, a generated one stays interpreted.
    def __init__(
        self,
        request_id: str,
        route: str = "forward",
        decision: str | None = None,
        reason: str | None = None,
    ) -> None:
        self.request_id = request_id
        self.route = route
        self.decision = decision
        self.reason = reason


REQUEST_NOTE = web.RequestKey("session_minter_note", RequestNote)


def note_route(request: web.Request, route: str) -> None:
    note = request.get(REQUEST_NOTE)
    if note is not None:
        note.route = route


def note_decision(request: web.Request, outcome: str, reason: str) -> None:
    note = request.get(REQUEST_NOTE)
    if note is not None:
        note.decision, note.reason = outcome, reason


def safe_path(raw_path: str) -> str:
    """The raw path, without its query, cut short, with JWT-shaped runs hashed."""
    return hash_jwts(raw_path.partition("?")[0][:_MAX_PATH])


# -- formatters -----------------------------------------------------------------


def _fields_of(record: logging.LogRecord) -> dict[str, Any]:
    return {name: record.__dict__[name] for name in _FIELDS if name in record.__dict__}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update(_fields_of(record))
        if record.exc_info:
            document["exc"] = self.formatException(record.exc_info)
        return json.dumps(document, separators=(",", ":"), default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields_of(record)
        if not fields:
            return line
        first, newline, rest = line.partition("\n")
        extra = " ".join(f"{name}={value}" for name, value in fields.items() if value is not None)
        return f"{first} {extra}{newline}{rest}"


class MalformedRequestFilter(logging.Filter):
    """aiohttp logs a request it could not parse (smuggling attempts, oversize or
    broken headers) at ERROR with a traceback that quotes the request; such a
    request is the client's fault, already answered 400: keep one warning line
    naming the problem, without the traceback or the request's bytes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = (
                "malformed request refused: %s %s",
                (
                    type(exc).__name__,
                    exc.code,
                ),
            )
        return True


def configure_logging(
    log_format: str, level: int = logging.INFO, buffer_bytes: int = DEFAULT_BUFFER_BYTES
) -> None:
    """Replace the root handlers with one on stderr in `log_format` ("json" or "text").

    Records and request lines are queued (at most `buffer_bytes`) for a writer
    thread that writes them to stderr's file descriptor. A stderr without one
    (a test's capture) keeps a plain stream handler.
    """
    formatter: logging.Formatter = JsonFormatter() if log_format == "json" else TextFormatter()
    global _fast_lines
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # io.UnsupportedOperation is both
        fd = -1
    handler: logging.Handler
    if fd >= 0:
        sys.stderr.flush()  # what was written before goes out first
        writer = install(fd, buffer_bytes, _dropped_notice(formatter))
        handler = WriterHandler(writer)
        _fast_lines = RequestLines(log_format, writer.put)
    else:
        handler = logging.StreamHandler(sys.stderr)
        _fast_lines = RequestLines(log_format, _stream_sink(sys.stderr))
    handler.setFormatter(formatter)
    handler.addFilter(MalformedRequestFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)


def _dropped_notice(formatter: logging.Formatter) -> Callable[[int], str]:
    """The line the writer writes after a gap, in the log's format."""

    def notice(dropped: int) -> str:
        record = logging.LogRecord(
            "session_minter.logs",
            logging.WARNING,
            __file__,
            0,
            "%d log lines dropped: stderr was not read fast enough",
            (dropped,),
            None,
        )
        return formatter.format(record) + "\n"

    return notice


def _stream_sink(stream: TextIO) -> Callable[[str], None]:
    def sink(text: str) -> None:
        stream.write(text)
        stream.flush()

    return sink


_fast_lines: RequestLines | None = None  # set by configure_logging


# -- the request log ------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _request_id(request: web.Request, trusted_proxies: frozenset[str]) -> str:
    given = request.headers.get("X-Request-Id")
    if given and request.remote in trusted_proxies and _REQUEST_ID.fullmatch(given):
        return given
    return secrets.token_hex(8)


def install_request_log(
    app: web.Application, handler: Handler, metrics: Metrics, trusted_proxies: frozenset[str]
) -> None:
    """Route every request of `app` to `handler`, counted and logged, and stamp
    `X-Request-Id` on every answer.

    The count-and-log step wraps the app's one catch-all handler directly
    rather than running as a middleware: same effect, less machinery per
    request.
    """

    async def observe(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        note = RequestNote(_request_id(request, trusted_proxies))
        request[REQUEST_NOTE] = note
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = _CLIENT_GONE
            raise
        except ConnectionResetError:
            # The client hung up while its body was being read: nobody is left to
            # answer, and nothing failed here (aiohttp drops the unsendable answer).
            status = _CLIENT_GONE
            return web.Response(status=_CLIENT_GONE)
        finally:
            elapsed = time.perf_counter() - started
            metrics.requests.inc((note.route, str(status)))
            metrics.request_seconds.observe((note.route,), elapsed)
            if note.route not in _QUIET_ROUTES or status != 200:
                _log_request(request, note, status, elapsed)

    async def stamp(request: web.Request, response: web.StreamResponse) -> None:
        note = request.get(REQUEST_NOTE)
        if note is not None and "X-Request-Id" not in response.headers:
            response.headers["X-Request-Id"] = note.request_id

    app.router.add_route("*", "/{tail:.*}", observe, expect_handler=expect_continue)
    app.on_response_prepare.append(stamp)


def _log_request(request: web.Request, note: RequestNote, status: int, elapsed: float) -> None:
    path = safe_path(request.raw_path)
    summary = f"{request.method} {path} {status}"
    if note.decision is not None:
        summary += f" {note.decision}:{note.reason}"
    fields = {
        "request_id": note.request_id,
        "method": request.method,
        "route": note.route,
        "path": path,
        "status": status,
        "decision": note.decision,
        "reason": note.reason,
        "latency_ms": round(elapsed * 1000, 3),
    }
    if _fast_lines is not None and request_log.isEnabledFor(logging.INFO):
        _fast_lines.write(summary, fields)
    else:
        request_log.info("%s", summary, extra=fields)
