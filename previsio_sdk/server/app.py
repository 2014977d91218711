"""The FastAPI application factory."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from .core import Platform
from .deps import CurrentUser
from .errors import PlatformError
from .middleware import install_guards
from .schemas import ErrorBody
from .settings import Settings

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422)
}


class RequestIdMiddleware:
    """Gives every request an id (``X-Request-ID``, taken from the caller when it sends a sane one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if 0 < len(given) <= 64 and given.replace("-", "").isalnum() else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        await self.app(scope, receive, send_with_id)


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def error_response(
    request: Request, status: int, code: str, message: str, details: Any = None
) -> JSONResponse:
    """The JSON answer of every error."""
    body = {
        "error": {"code": code, "message": message, "details": details, "request_id": _request_id(request)}
    }
    return JSONResponse(body, status_code=status)


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
}


def _clean_validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # The values the caller sent are left out: a password sent in the wrong shape must not be echoed.
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Map every failure to ``{"error": {...}}`` with a 4xx status; only a bug gives a 500."""

    @app.exception_handler(PlatformError)
    async def _platform_error(request: Request, exc: PlatformError) -> JSONResponse:
        return error_response(request, exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _clean_validation_errors(list(exc.errors()))
        if any(e["type"] == "json_invalid" for e in errors):
            return error_response(
                request, 400, "malformed_json", "The request body is not valid JSON.", errors
            )
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in errors)
        return error_response(request, 422, "validation_error", f"Invalid request: {where}", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, (UnicodeDecodeError, RecursionError)):
            # FastAPI's body parsing failed past the JSON decoder: invalid UTF-8, or nesting too deep.
            return error_response(request, 400, "malformed_json", "The request body is not valid JSON.")
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        return error_response(request, exc.status_code, code, str(exc.detail))

    @app.exception_handler(IntegrityError)
    async def _integrity_error(request: Request, exc: IntegrityError) -> JSONResponse:
        return error_response(request, 409, "conflict", "The change conflicts with an existing resource.")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unhandled error on %s %s [%s]",
            request.method,
            request.url.path,
            _request_id(request),
            exc_info=exc,
        )
        return error_response(request, 500, "internal_error", "The platform failed to handle this request.")


def create_app(settings: Settings | None = None, platform: Platform | None = None) -> FastAPI:
    """Build the platform's ASGI application.

    Args:
        settings: Settings to use; read from the environment when None.
        platform: An already built platform (tests); built from ``settings`` when None.

    Returns:
        The FastAPI application; the platform is started by its lifespan.
    """
    platform = platform or Platform(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not platform.started:
            platform.start()
        platform.bind_limits()
        yield
        platform.stop()

    app = FastAPI(
        title="previsio platform",
        version=__version__,
        description="Connect projects to data systems and snapshot their data into Parquet datasets.",
        # The description is served below, behind the token like every route but health; the interactive page
        # is not offered, since a browser page cannot send the bearer token to fetch it.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        responses=_ERROR_RESPONSES,
    )
    app.state.platform = platform
    install_error_handlers(app)
    install_guards(app, platform)
    app.add_middleware(RequestIdMiddleware)

    from .routes import (
        connectors,
        datasets,
        datasources,
        exporters,
        health,
        jobs,
        members,
        metrics,
        projects,
        users,
    )

    for module in (
        health,
        metrics,
        projects,
        members,
        connectors,
        datasources,
        datasets,
        jobs,
        exporters,
        users,
    ):
        app.include_router(module.router, prefix=API_PREFIX)

    @app.get(f"{API_PREFIX}/openapi.json", include_in_schema=False)
    def _openapi(_user: CurrentUser) -> dict[str, Any]:
        return app.openapi()

    return app
