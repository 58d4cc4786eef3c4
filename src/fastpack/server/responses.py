"""The one error shape of the API: `{"error", "code", "details"?}`; 5xx bodies say nothing internal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

from fastpack.errors import FastpackError

GENERIC_5XX = {
    500: ("internal server error", "INTERNAL_ERROR"),
    502: ("the storage backend failed; try again later", "STORAGE_ERROR"),
    503: ("service unavailable; try again later", "UNAVAILABLE"),
}


def error_body(message: str, code: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message, "code": code}
    if details is not None:
        body["details"] = details
    return body


def error_response(
    status: int, message: str, code: str, details: Any = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    if status >= 500:
        message, code = GENERIC_5XX.get(status, GENERIC_5XX[500])
        details = None
    return JSONResponse(error_body(message, code, details), status_code=status, headers=headers)


def fastpack_error_response(exc: FastpackError) -> JSONResponse:
    """Client errors keep their message (it names the problem); server errors become generic."""
    return error_response(exc.status, exc.message, exc.code, exc.details)
