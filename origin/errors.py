"""Clerk API errors, and the one place where they become HTTP answers.

    ClerkAPIError                 status, code, message, long_message, meta
    ├── BadRequest                400 form_param_missing / form_param_format_invalid / ...
    ├── Unauthorized              401 authentication_invalid (backend API bearer key)
    ├── SignedOut                 401 signed_out (no client, or the session is over)
    ├── NotFound                  404 resource_not_found
    ├── MethodNotAllowed          405 method_not_allowed
    ├── RequestTooLarge           413 request_body_too_large
    ├── FormError                 422 form_* (with meta.param_name)
    ├── InternalError             500 internal_clerk_error
    └── ServiceUnavailable        503 service_unavailable (fault injection)

Every answer the origin gives on failure has Clerk's body shape
`{"errors": [{"code", "message", "long_message", "meta"}]}`; never a stack trace.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from origin.responses import json_response

log = logging.getLogger("origin")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ClerkAPIError(Exception):
    status = 500
    code = "internal_clerk_error"
    message = "Oops, an unexpected error occurred"

    def __init__(
        self,
        long_message: str | None = None,
        *,
        code: str | None = None,
        message: str | None = None,
        meta: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if code is not None:
            self.code = code
        if message is not None:
            self.message = message
        self.long_message = long_message or self.message
        self.meta: dict[str, Any] = dict(meta or {})
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(f"{self.code}: {self.long_message}")

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.long_message, self.meta)


class BadRequest(ClerkAPIError):
    status = 400
    code = "form_param_format_invalid"
    message = "is invalid"


class Unauthorized(ClerkAPIError):
    status = 401
    code = "authentication_invalid"
    message = "Unauthorized request"


class SignedOut(ClerkAPIError):
    status = 401
    code = "signed_out"
    message = "Signed out"


class NotFound(ClerkAPIError):
    status = 404
    code = "resource_not_found"
    message = "not found"


class MethodNotAllowed(ClerkAPIError):
    status = 405
    code = "method_not_allowed"
    message = "Method not allowed"


class RequestTooLarge(ClerkAPIError):
    status = 413
    code = "request_body_too_large"
    message = "Request body too large"


class FormError(ClerkAPIError):
    status = 422
    code = "form_param_format_invalid"
    message = "is invalid"

    def __init__(self, long_message: str, *, code: str, param_name: str) -> None:
        super().__init__(long_message, code=code, meta={"param_name": param_name})


class InternalError(ClerkAPIError):
    pass


class ServiceUnavailable(ClerkAPIError):
    status = 503
    code = "service_unavailable"
    message = "Service unavailable"


def error_body(code: str, message: str, long_message: str, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "errors": [{"code": code, "message": message, "long_message": long_message, "meta": meta}]
    }


def error_response(exc: ClerkAPIError) -> web.Response:
    response = json_response(exc.body(), status=exc.status, headers=exc.headers)
    response.headers["Cache-Control"] = "no-store"
    return response


def _from_http_exception(exc: web.HTTPException) -> ClerkAPIError:
    if exc.status == 404:
        return NotFound("The requested resource could not be found")
    if exc.status == 405:
        return MethodNotAllowed("The requested method is not allowed on this resource")
    if exc.status == 413:
        return RequestTooLarge("The request body is too large")
    if exc.status < 500:
        return BadRequest(exc.reason or "Bad request", code="bad_request")
    return InternalError()


_JWT_SHAPED = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def _loggable_path(request: web.Request) -> str:
    """The raw path without its query (where clients put tokens), JWT-shaped runs cut."""
    return _JWT_SHAPED.sub("<jwt>", request.raw_path.partition("?")[0][:256])


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into Clerk's error shape, logging it once here."""
    try:
        return await handler(request)
    except ClerkAPIError as exc:
        log.info(
            "clerk error",
            extra={
                "method": request.method,
                "path": _loggable_path(request),
                "status": exc.status,
                "code": exc.code,
            },
        )
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        mapped = _from_http_exception(exc)
        log.info(
            "http error",
            extra={
                "method": request.method,
                "path": _loggable_path(request),
                "status": mapped.status,
            },
        )
        return error_response(mapped)
    except Exception:
        log.exception(
            "unhandled error",
            extra={"method": request.method, "path": _loggable_path(request)},
        )
        return error_response(InternalError())
