"""Errors the API answers with, in the OpenAI error shape ``{"error": {...}}``.

Every failure a client can cause maps to a 4xx here; an engine failure maps to 503. Handlers
are installed on the app so that no exception reaches the client as a bare 500.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from autellix_backend.core import AutellixError, DuplicateError, UnknownProgramError

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

log = logging.getLogger("autellix.server")


class APIError(Exception):
    """An error answered to the client with ``status`` and an OpenAI-style body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "code": self.code,
                "param": self.param,
            }
        }


def bad_request(message: str, *, param: str | None = None, code: str = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


def program_not_found(program_id: str) -> APIError:
    """The same answer whether the program does not exist or belongs to another key."""
    return APIError(404, f"unknown program {program_id!r}", code="program_not_found")


def engine_unavailable(message: str) -> APIError:
    return APIError(503, message, type="engine_unavailable", code="engine_unavailable")


def from_core(exc: AutellixError) -> APIError:
    """Translate a core error raised by a client's input into a 4xx."""
    if isinstance(exc, UnknownProgramError):
        return program_not_found(exc.program_id)
    if isinstance(exc, DuplicateError):
        return APIError(409, str(exc), code="conflict")
    return bad_request(str(exc))


def error_response(exc: Exception, *, method: str = "", path: str = "") -> JSONResponse:
    """The OpenAI-shaped answer to ``exc``; an unexpected one is logged and becomes a 500.

    The app's exception handlers answer with it, and so does the completion routes' front
    (``routes/completions.py``), which serves calls outside the app's middleware.
    """
    if isinstance(exc, APIError):
        return JSONResponse(exc.body(), status_code=exc.status)
    if isinstance(exc, RequestValidationError):
        return JSONResponse(_validation_error(exc).body(), status_code=400)
    if isinstance(exc, StarletteHTTPException):
        error = APIError(exc.status_code, str(exc.detail), code="http_error")
        return JSONResponse(error.body(), status_code=exc.status_code, headers=exc.headers)
    if isinstance(exc, AutellixError):
        error = from_core(exc)
        return JSONResponse(error.body(), status_code=error.status)
    log.exception("unhandled error on %s %s", method, path, exc_info=exc)
    error = APIError(500, "internal error", type="server_error", code="internal_error")
    return JSONResponse(error.body(), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error in the OpenAI shape; unexpected ones are logged and become 500."""

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        return error_response(exc, method=request.method, path=request.url.path)

    for kind in (
        APIError,
        RequestValidationError,
        StarletteHTTPException,
        AutellixError,
        Exception,
    ):
        app.add_exception_handler(kind, on_error)


def _validation_error(exc: RequestValidationError) -> APIError:
    errors = exc.errors()
    if not errors:
        return bad_request("invalid request")
    first = errors[0]
    where = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(where) or None
    if first.get("type") == "json_invalid":
        return bad_request("request body is not valid JSON", code="invalid_json")
    message = str(first.get("msg", "invalid value"))
    return bad_request(f"{param}: {message}" if param else message, param=param)
