"""API errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

Services raise ``ApiError`` subclasses; the handlers installed by ``install_error_handlers``
turn those, FastAPI's request-validation errors, HTTP exceptions, database outages (503) and
anything unexpected (500) into that shape. An unexpected error is logged on one line with where it
happened; neither the response nor the log carries a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.logsafe import describe
from app.core.storage.base import StorageError

log = logging.getLogger("sculpt.api")


class ApiError(Exception):
    status_code = 400
    type = "invalid_request_error"
    default_code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.default_code
        self.headers = headers or {}


class Unauthorized(ApiError):
    status_code = 401
    type = "authentication_error"
    default_code = "invalid_api_key"


class Forbidden(ApiError):
    status_code = 403
    type = "permission_error"
    default_code = "insufficient_scope"


class NotFound(ApiError):
    status_code = 404
    type = "not_found_error"
    default_code = "not_found"


class Conflict(ApiError):
    status_code = 409
    type = "conflict_error"
    default_code = "conflict"


class PayloadTooLarge(ApiError):
    status_code = 413
    default_code = "payload_too_large"


class Unprocessable(ApiError):
    status_code = 422
    default_code = "invalid_value"


class RateLimited(ApiError):
    status_code = 429
    type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class ServiceUnavailable(ApiError):
    status_code = 503
    type = "server_error"
    default_code = "service_unavailable"


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(status: int, message: str, type_: str, param: str | None = None,
                   code: str | None = None, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(message, type_, param, code), status_code=status, headers=headers)


def _location_param(loc: tuple, ctx: dict | None = None) -> str | None:
    # ("body", "continual", "strategy") -> "continual.strategy"; the source part is noise to a client. A
    # validator of a whole object may name the field it refused (ctx "field"), which ends the location.
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form", "cookie")]
    if field := (ctx or {}).get("field"):
        parts.append(str(field))
    return ".".join(parts) or None


def _validation_message(errors: list[dict]) -> str:
    lines = []
    for err in errors[:5]:
        where = _location_param(tuple(err.get("loc", ())), err.get("ctx")) or "request"
        if err.get("type") == "extra_forbidden":
            lines.append(f"{where}: unknown field")
        else:
            lines.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(lines)


_STATUS_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
                 405: "invalid_request_error", 409: "conflict_error", 429: "rate_limit_error"}
_STATUS_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status_code, exc.message, exc.type, exc.param, exc.code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if errors and errors[0].get("type") == "json_invalid":
            return _invalid_json(errors[0])
        param = _location_param(tuple(errors[0].get("loc", ())), errors[0].get("ctx")) if errors else None
        return error_response(422, _validation_message(errors), "invalid_request_error", param, "invalid_value")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = _STATUS_TYPES.get(exc.status_code, "server_error" if exc.status_code >= 500
                                  else "invalid_request_error")
        return error_response(exc.status_code, str(exc.detail), type_, None, _STATUS_CODES.get(exc.status_code),
                              exc.headers)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated or isinstance(exc, OperationalError):
            # PostgreSQL restarting or unreachable: a clear, retryable answer; the pool recovers by itself.
            return error_response(503, "The database is unreachable; retry shortly", "server_error",
                                  code="database_unavailable", headers={"Retry-After": "5"})
        return _internal_error(request, exc)

    @app.exception_handler(StorageError)
    async def _artifact_store(request: Request, exc: StorageError) -> JSONResponse:
        # Unreachable or refusing store: retryable; the details (bucket, endpoint) are for operators only.
        log.error("artifact store failed on %s %s: %s", request.method, request.url.path, describe(exc))
        return error_response(503, "The artifact store is unreachable; retry shortly", "server_error",
                              code="artifact_store_unavailable", headers={"Retry-After": "5"})

    @app.exception_handler(SQLAlchemyTimeoutError)
    async def _pool_exhausted(_request: Request, _exc: SQLAlchemyTimeoutError) -> JSONResponse:
        return error_response(503, "The server is busy (no database connection free); retry shortly",
                              "server_error", code="server_busy", headers={"Retry-After": "2"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _internal_error(request, exc)


def _invalid_json(error: dict) -> JSONResponse:
    # FastAPI reports it at ("body", <character offset>): the offset is where, not a field to name.
    offset = error.get("loc", ("body", None))[-1]
    reason = (error.get("ctx") or {}).get("error") or "malformed"
    where = f" at character {offset}" if isinstance(offset, int) else ""
    return error_response(422, f"The request body is not valid JSON: {reason}{where}", "invalid_request_error",
                          None, "invalid_json")


def _internal_error(request: Request, exc: BaseException) -> JSONResponse:
    log.error("unhandled error on %s %s: %s", request.method, request.url.path, describe(exc))
    return error_response(500, "The server hit an unexpected error; it has been logged.", "server_error",
                          None, "internal_error")
