"""Outermost ASGI layer: request id, per-client rate limit, last-resort 500, one JSON log line per request.

Plain ASGI (not BaseHTTPMiddleware) so request and response bodies stay streamed.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Container
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastpack.errors import Unauthorized
from fastpack.server.auth import bearer_token
from fastpack.server.config import token_id
from fastpack.server.logging import get_logger
from fastpack.server.ratelimit import RateLimiter
from fastpack.server.responses import error_response

REQUEST_ID_HEADER = "x-request-id"
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
UNLIMITED_PATHS = frozenset({"/healthz"})


def request_id_for(headers: Headers) -> str:
    """Echo a sane client-supplied id (so logs correlate across services), else a fresh one."""
    given = headers.get(REQUEST_ID_HEADER, "")
    return given if _CLIENT_REQUEST_ID.match(given) else uuid.uuid4().hex


def client_key(scope: Scope, headers: Headers, known_tokens: Container[str]) -> str:
    """Rate-limit identity: a known token (callers behind one NAT stay apart), else the address.

    Unknown tokens count against the address, so inventing tokens buys no extra budget.
    """
    try:
        token = bearer_token(headers)
    except Unauthorized:
        token = None
    if token is not None and (digest := token_id(token)) in known_tokens:
        return "token:" + digest[:16]
    client = scope.get("client")
    return "addr:" + (client[0] if client else "unknown")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, limiter: RateLimiter, known_tokens: Container[str]) -> None:
        self.app = app
        self.limiter = limiter
        self.known_tokens = known_tokens
        self.log = get_logger()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = Headers(scope=scope)
        request_id = request_id_for(headers)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        outcome: dict[str, Any] = {"status": None, "bytes_in": 0, "bytes_out": 0}

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                outcome["bytes_in"] += len(message.get("body", b""))
            return message

        async def tagged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
                outcome["status"] = message["status"]
            elif message["type"] == "http.response.body":
                outcome["bytes_out"] += len(message.get("body", b""))
            await send(message)

        client = client_key(scope, headers, self.known_tokens)
        try:
            wait = 0 if scope["path"] in UNLIMITED_PATHS else self.limiter.acquire(client)
            if wait:
                state["error_code"] = "RATE_LIMITED"
                response = error_response(
                    429, f"rate limit exceeded; retry in {wait} s", "RATE_LIMITED", headers={"retry-after": str(wait)}
                )
                await response(scope, receive, tagged_send)
            else:
                await self.app(scope, counting_receive, tagged_send)
        except ClientDisconnect:
            state["error_code"] = "CLIENT_DISCONNECTED"
        except Exception:
            self.log.exception("unhandled error", extra={"fields": {"request_id": request_id}})
            state["error_code"] = "INTERNAL_ERROR"
            if outcome["status"] is None:
                await error_response(500, "", "")(scope, receive, tagged_send)
        finally:
            self._log(scope, state, outcome, client, started)

    def _log(self, scope: Scope, state: dict[str, Any], outcome: dict[str, Any], client: str, started: float) -> None:
        status = outcome["status"] or 499
        fields = {
            "event": "request",
            "request_id": state["request_id"],
            "method": scope["method"],
            "path": scope["path"],
            "query": scope.get("query_string", b"").decode("latin-1"),
            "status": status,
            "code": state.get("error_code"),
            "client": client,
            "principal": state.get("principal"),
            "bytes_in": outcome["bytes_in"],
            "bytes_out": outcome["bytes_out"],
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        }
        level = 40 if status >= 500 else 30 if status >= 400 else 20
        self.log.log(level, "request", extra={"fields": fields})
