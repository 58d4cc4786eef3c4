"""Server configuration, read once from the environment (every variable is documented in docs/server.md)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastpack.errors import UsageError

DEFAULT_MAX_BYTES = 209_715_200
DEFAULT_RATE_LIMIT = 600
DEFAULT_RATE_WINDOW = 60.0
# Per upload, memory is about part size x (concurrency + 1) on S3: 8 MiB x 3 keeps 4 concurrent uploads small.
DEFAULT_UPLOAD_PART_SIZE = 8 << 20
DEFAULT_UPLOAD_CONCURRENCY = 2
MIN_PART_SIZE = 5 << 20

READ = "read"
PUBLISH = "publish"
SCOPES = (READ, PUBLISH)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def token_id(token: str) -> str:
    """Tokens are kept and compared as SHA-256 digests, so logs and memory never hold them in clear."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ServerConfig:
    """Everything the app needs; `store` is any `fastpack.store.Store`, `trust` a `Trust` or None."""

    store: Any
    max_bytes: int = DEFAULT_MAX_BYTES
    allow_insecure: bool = False
    trust_admin_header: bool = False
    public_read: bool = False
    tokens: Mapping[str, str] = field(default_factory=dict)
    rate_limit: int = DEFAULT_RATE_LIMIT
    rate_window: float = DEFAULT_RATE_WINDOW
    upload_part_size: int = DEFAULT_UPLOAD_PART_SIZE
    upload_concurrency: int = DEFAULT_UPLOAD_CONCURRENCY
    trust: Any = None
    trust_source: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, store: Any = None) -> ServerConfig:
        """Build the config from `environ`; `store` overrides the STORAGE_S3_* / FASTPACK_STORE choice."""
        env = os.environ if environ is None else environ
        if store is None:
            from fastpack.store import store_from_env

            store = store_from_env(env)
        trust_source = env.get("SIGNING_TRUST_BUNDLE") or None
        trust = None
        if trust_source:
            from fastpack.sign.trust import Trust

            trust = Trust.load(trust_source)
        return cls(
            store=store,
            max_bytes=_positive_int(env, "EXT_BUNDLES_MAX_BYTES", DEFAULT_MAX_BYTES),
            allow_insecure=_flag(env, "EXT_BUNDLES_ALLOW_INSECURE"),
            trust_admin_header=_flag(env, "FASTPACK_TRUST_ADMIN_HEADER"),
            public_read=_flag(env, "FASTPACK_PUBLIC_READ"),
            tokens=load_tokens(env),
            rate_limit=_non_negative_int(env, "FASTPACK_RATE_LIMIT", DEFAULT_RATE_LIMIT),
            rate_window=_positive_float(env, "FASTPACK_RATE_WINDOW", DEFAULT_RATE_WINDOW),
            upload_part_size=_part_size(env),
            upload_concurrency=_positive_int(env, "FASTPACK_UPLOAD_CONCURRENCY", DEFAULT_UPLOAD_CONCURRENCY),
            trust=trust,
            trust_source=trust_source,
        )


def load_tokens(env: Mapping[str, str]) -> dict[str, str]:
    """token digest → scope, from FASTPACK_API_TOKENS, FASTPACK_API_READ_TOKENS and FASTPACK_API_TOKEN_FILE."""
    tokens: dict[str, str] = {}
    for name, scope in (("FASTPACK_API_READ_TOKENS", READ), ("FASTPACK_API_TOKENS", PUBLISH)):
        for token in env.get(name, "").split(","):
            if token.strip():
                tokens[token_id(token.strip())] = scope
    path = env.get("FASTPACK_API_TOKEN_FILE")
    if path:
        tokens.update(_read_token_file(path))
    return tokens


def _read_token_file(path: str) -> dict[str, str]:
    """One token per line, optionally followed by its scope (`publish`, the default, or `read`); `#` comments."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read FASTPACK_API_TOKEN_FILE: {exc.strerror}", path=path) from None
    tokens = {}
    for number, line in enumerate(lines, 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        scope = words[1] if len(words) > 1 else PUBLISH
        if len(words) > 2 or scope not in SCOPES:
            raise UsageError(f"line {number}: expected 'TOKEN [publish|read]'", path=path)
        tokens[token_id(words[0])] = scope
    return tokens


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UsageError(f"{name} must be true or false, got {value!r}")


def _number(env: Mapping[str, str], name: str, default: float, kind: type) -> Any:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        return kind(text)
    except ValueError:
        raise UsageError(f"{name} must be a number, got {text!r}") from None


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    value = _number(env, name, default, int)
    if value <= 0:
        raise UsageError(f"{name} must be positive, got {value}")
    return int(value)


def _part_size(env: Mapping[str, str]) -> int:
    value = _positive_int(env, "FASTPACK_UPLOAD_PART_SIZE", DEFAULT_UPLOAD_PART_SIZE)
    if value < MIN_PART_SIZE:
        raise UsageError(f"FASTPACK_UPLOAD_PART_SIZE must be at least {MIN_PART_SIZE} (S3's minimum part), got {value}")
    return value


def _non_negative_int(env: Mapping[str, str], name: str, default: int) -> int:
    value = _number(env, name, default, int)
    if value < 0:
        raise UsageError(f"{name} must be 0 (off) or positive, got {value}")
    return int(value)


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    value = _number(env, name, default, float)
    if value <= 0:
        raise UsageError(f"{name} must be positive, got {value}")
    return float(value)
