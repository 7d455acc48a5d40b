"""Errors on the wire: JSON ``{"error": CODE, "message": TEXT}`` with stable codes, never a stack trace.
Domain errors from the library become 400 ``bad_query``; a request past its time limit is 504 ``timeout``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from freqindex.errors import FreqindexError


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    """Translate every error that can reach the app into the documented JSON shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(FreqindexError)
    async def _lib_error(_: Request, exc: FreqindexError):
        return error_response(400, "bad_query", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        if first.get("type") == "json_invalid":
            return error_response(400, "malformed_json", "the body is not valid JSON (or not UTF-8)")
        loc = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        message = f"{loc}: {first.get('msg', 'invalid')}" if loc else first.get("msg", "invalid")
        return error_response(422, "invalid_request", message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        codes = {404: "not_found", 405: "method_not_allowed"}
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):
            return error_response(400, "malformed_json", "the body is not valid JSON (or not UTF-8)")
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(UnicodeDecodeError)
    async def _unicode(_: Request, exc: UnicodeDecodeError):
        return error_response(400, "malformed_json", "the body is not UTF-8")


def unique_ids(items) -> None:
    """Items of one request must have distinct ids (422 otherwise)."""
    seen = set()
    for it in items:
        if it.id in seen:
            raise ApiError(422, "invalid_request", f"item id {it.id!r} appears twice")
        seen.add(it.id)
