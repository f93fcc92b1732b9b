"""Gateway errors as RFC 9457 problem+json responses, and their description in OpenAPI."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import nats.errors
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from controlroom_gateway.errors import GatewayError
from controlroom_runtime.availability import is_unavailable
from controlroom_runtime.problems import problem

log = logging.getLogger(__name__)

PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
"""OpenAPI description of a problem+json error response (``openapi_doc`` adds its schema)."""

UNAVAILABLE_RETRY_AFTER_SECONDS = 5


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _message(error: Any) -> str:
    """The error's message; a malformed body also says what the parser found wrong."""
    reason = (error.get("ctx") or {}).get("error") if error["type"] == "json_invalid" else None
    return f"{error['msg']}: {reason}" if reason else str(error["msg"])


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if exc.status == 429:
            headers = {"Retry-After": str(exc.extensions.get("retry_after", 1))}
        if exc.status == 503:
            headers = {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)}
        response = problem(
            exc.status, exc.title, exc.detail, instance=request.url.path, **exc.extensions
        )
        if headers:
            response.headers.update(headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": _field(e["loc"]), "message": _message(e), "type": e["type"]}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(422, "Invalid request", detail, instance=request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        title = HTTPStatus(exc.status_code).phrase
        detail = exc.detail if isinstance(exc.detail, str) else None
        response = problem(exc.status_code, title, detail, instance=request.url.path)
        response.headers.update(exc.headers or {})  # e.g. Allow on a 405
        return response

    async def _dependency_error(request: Request, exc: Exception) -> Response:
        # Registered per exception class (not for Exception), so the answer is final: the
        # server does not also re-raise it as an unhandled error.
        if not is_unavailable(exc):
            log.error("request failed", exc_info=exc, extra={"path": request.url.path})
            return problem(500, "Internal error", instance=request.url.path)
        # Postgres or NATS out of reach: nothing was accepted; the same request later will
        # be (a submission with an Idempotency-Key is safe to repeat as it is).
        response = problem(
            503,
            "Service unavailable",
            "a dependency of the API is unreachable; retry later",
            instance=request.url.path,
        )
        response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_SECONDS)
        return response

    for dependency_error in (sqlalchemy.exc.SQLAlchemyError, OSError, nats.errors.Error):
        app.add_exception_handler(dependency_error, _dependency_error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, _exc: Exception) -> Response:
        # Starlette re-raises the exception after this answer is sent, so the server still
        # logs it; the client gets the format of every other error, and no internals.
        return problem(500, "Internal error", instance=request.url.path)
