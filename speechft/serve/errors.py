"""Error answers in OpenAI's shape, `{"error": {"message", "type", "code"}}`, for every failure.

Routes raise `APIError`; the handlers installed by `install_error_handlers` turn it, FastAPI's
own errors (unknown route, wrong method, validation) and any bug into that JSON body, so a
client always gets an answer it can parse and nothing a client sends can stop the server.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1  # what a 503 tells the client to wait before retrying
# Codes for FastAPI's own HTTP errors (the routes raise APIError with their own codes).
_STARLETTE_CODES = {404: "not_found", 405: "method_not_allowed"}


class APIError(Exception):
    """An error answer: HTTP status, OpenAI-style code and type, a message naming the fix."""

    def __init__(self, status: int, message: str, code: str, kind: str = "invalid_request_error",
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.kind = status, message, code, kind
        self.headers = headers or {}


def error_response(status: int, message: str, code: str, kind: str = "invalid_request_error",
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error body every failure is answered with."""
    return JSONResponse({"error": {"message": message, "type": kind, "code": code}}, status_code=status, headers=headers)


def overloaded() -> APIError:
    """503 with Retry-After: more requests wait than the server admits."""
    return APIError(503, "server busy: too many requests are waiting. Fix: retry after a second", "busy",
                    "overloaded_error", {"Retry-After": str(RETRY_AFTER_S)})


def unauthorized() -> APIError:
    """401 for a missing or wrong key."""
    return APIError(401, "missing or wrong API key. Fix: send 'Authorization: Bearer <key>'", "invalid_api_key",
                    "authentication_error", {"WWW-Authenticate": "Bearer"})


def install_error_handlers(app: FastAPI) -> None:
    """Answer APIError, FastAPI's HTTP and validation errors, disconnects and bugs as JSON."""

    async def on_api_error(request: Request, e: APIError) -> Response:
        if e.status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, e.message)
        return error_response(e.status, e.message, e.code, e.kind, e.headers)

    async def on_http_error(request: Request, e: StarletteHTTPException) -> Response:
        code = _STARLETTE_CODES.get(e.status_code, "http_error")
        message = f"{request.method} {request.url.path}: {e.detail}. Fix: see /docs for the routes"
        return error_response(e.status_code, message, code, headers=getattr(e, "headers", None))

    async def on_validation_error(request: Request, e: RequestValidationError) -> Response:
        return error_response(400, f"invalid request: {e.errors()}", "invalid_request")

    async def on_disconnect(request: Request, e: ClientDisconnect) -> Response:
        # The client left mid-upload: nobody reads this answer, uvicorn drops it.
        log.info("%s %s: client disconnected before the body was complete", request.method, request.url.path)
        return error_response(400, "client disconnected before the upload was complete", "client_disconnected")

    async def on_bug(request: Request, e: Exception) -> Response:
        # A bug must cost one request, not the server.
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, f"internal error: {type(e).__name__}: {e}", "internal_error", "server_error")

    app.add_exception_handler(APIError, on_api_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(ClientDisconnect, on_disconnect)
    app.add_exception_handler(Exception, on_bug)
