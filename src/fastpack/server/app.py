"""The ASGI application: a thin HTTP front end over fastpack's publish and store functions (SPEC §6)."""

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from fastpack import __version__
from fastpack.errors import FastpackError
from fastpack.server import objects, uploads
from fastpack.server.auth import ADMIN_HEADER, Principal, authorize
from fastpack.server.config import PUBLISH, READ, ServerConfig
from fastpack.server.middleware import RequestContextMiddleware
from fastpack.server.ratelimit import RateLimiter
from fastpack.server.responses import error_response, fastpack_error_response
from fastpack.server.schemas import Health

_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE"}

# Declared for the OpenAPI document only; `authorize` reads the headers itself.
_bearer = HTTPBearer(auto_error=False, description="a token from FASTPACK_API_TOKENS or the token file")
_admin = APIKeyHeader(
    name=ADMIN_HEADER, auto_error=False, description="legacy `true`; honoured only when the server trusts it"
)


def _requirement(need: str) -> Any:
    def require(
        request: Request,
        _token: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        _admin_header: Annotated[str | None, Depends(_admin)],
    ) -> Principal:
        principal = authorize(request.app.state.config, request.headers, need)
        request.scope.setdefault("state", {})["principal"] = principal.id
        return principal

    return require


def create_app(config: ServerConfig) -> FastAPI:
    app = FastAPI(
        title="fastpack extension bundle API",
        version=__version__,
        description="Upload, finalize and serve content-addressed extension bundles (fastpack SPEC §6).",
        docs_url=None,
        redoc_url=None,
    )
    app.state.config = config
    app.include_router(uploads.build_router(_requirement(PUBLISH)))
    app.include_router(objects.build_router(_requirement(READ)))

    @app.get("/healthz", response_model=Health, tags=["health"], summary="Liveness", operation_id="healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.exception_handler(FastpackError)
    async def fastpack_error(request: Request, exc: FastpackError) -> JSONResponse:
        _note_code(request, exc.code)
        if exc.status >= 500:
            from fastpack.server.logging import get_logger

            get_logger().error(
                "request failed",
                extra={"fields": {"request_id": _request_id(request), "code": exc.code, "error": str(exc)}},
            )
        return fastpack_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        issues = [_issue(error) for error in exc.errors()]
        _note_code(request, "BAD_REQUEST")
        summary = "; ".join(f"{issue['path']}: {issue['message']}" for issue in issues)
        return error_response(400, f"invalid request: {summary}", "BAD_REQUEST", {"issues": issues})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        _note_code(request, code)
        message = f"no route for {request.method} {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        return error_response(exc.status_code, message, code, headers=exc.headers)

    app.openapi = _openapi_without_422(app)  # type: ignore[method-assign]
    app.add_middleware(
        RequestContextMiddleware,
        limiter=RateLimiter(config.rate_limit, config.rate_window),
        known_tokens=frozenset(config.tokens),
    )
    return app


def _request_id(request: Request) -> str | None:
    state: dict[str, Any] = request.scope.get("state", {})
    return state.get("request_id")


def _note_code(request: Request, code: str) -> None:
    request.scope.setdefault("state", {})["error_code"] = code


def _issue(error: Any) -> dict[str, str]:
    """A pydantic error as `{path, message}`, the shape manifest issues use too."""
    location = [str(part) for part in error.get("loc", ()) if part != "body"]
    return {"path": ".".join(location) or "$", "message": error.get("msg", "invalid")}


def _openapi_without_422(app: FastAPI) -> Any:
    """FastAPI documents 422 for validation errors; this API answers 400 with the common error body."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
        return schema

    return openapi
