"""Who may call what: bearer tokens with a scope, insecure local mode, the legacy admin header."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fastpack.errors import Forbidden, Unauthorized
from fastpack.server.config import PUBLISH, READ, ServerConfig, token_id

ADMIN_HEADER = "x-alga-admin"


@dataclass(frozen=True)
class Principal:
    """The caller as the rest of the server sees it: an opaque id (never the token) and its scope."""

    id: str
    scope: str


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an `Authorization: Bearer` header; a malformed header is an error, not anonymity."""
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def authorize(config: ServerConfig, headers: Mapping[str, str], need: str) -> Principal:
    """The caller, if allowed `need` (READ or PUBLISH); otherwise 401 (who are you?) or 403 (not you)."""
    if config.allow_insecure:
        return Principal("insecure", PUBLISH)
    token = bearer_token(headers)
    if token is not None:
        digest = token_id(token)
        scope = config.tokens.get(digest)
        if scope is None:
            raise Unauthorized("invalid API token")
        principal = Principal(f"token:{digest[:12]}", scope)
        if need == PUBLISH and scope != PUBLISH:
            raise Forbidden("this token may only read; publishing needs a publish token")
        return principal
    if config.trust_admin_header and headers.get(ADMIN_HEADER, "").strip().lower() == "true":
        return Principal("admin-header", PUBLISH)
    if need == READ and config.public_read:
        return Principal("anonymous", READ)
    if not config.tokens and not config.trust_admin_header:
        raise Unauthorized(
            "no API credentials are configured on this server: set FASTPACK_API_TOKENS "
            "(or EXT_BUNDLES_ALLOW_INSECURE=true for local use)"
        )
    raise Unauthorized("missing credentials: send 'Authorization: Bearer <token>'")
