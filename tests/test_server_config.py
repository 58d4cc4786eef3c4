"""Server configuration, the auth decision, the rate limiter and HTTP validators, without a socket."""

from __future__ import annotations

import pytest

from fastpack.errors import Forbidden, Unauthorized, UsageError
from fastpack.server.auth import authorize
from fastpack.server.conditional import RangeNotSatisfiable, etag_matches, parse_range
from fastpack.server.config import DEFAULT_MAX_BYTES, PUBLISH, READ, ServerConfig
from fastpack.server.ratelimit import RateLimiter


def config(**env: str) -> ServerConfig:
    return ServerConfig.from_env(env, store=object())


def test_defaults_are_closed_and_capped_at_200_mib():
    cfg = config()
    assert cfg.max_bytes == DEFAULT_MAX_BYTES == 200 * 1024 * 1024
    assert not cfg.allow_insecure and not cfg.trust_admin_header and not cfg.tokens
    with pytest.raises(Unauthorized, match="no API credentials are configured"):
        authorize(cfg, {}, READ)


def test_env_values_are_parsed_and_bad_ones_named():
    cfg = config(EXT_BUNDLES_MAX_BYTES="1000", FASTPACK_RATE_LIMIT="5", FASTPACK_RATE_WINDOW="2.5")
    assert (cfg.max_bytes, cfg.rate_limit, cfg.rate_window) == (1000, 5, 2.5)
    with pytest.raises(UsageError, match="EXT_BUNDLES_MAX_BYTES must be a number, got 'lots'"):
        config(EXT_BUNDLES_MAX_BYTES="lots")
    with pytest.raises(UsageError, match="EXT_BUNDLES_MAX_BYTES must be positive"):
        config(EXT_BUNDLES_MAX_BYTES="0")
    with pytest.raises(UsageError, match="EXT_BUNDLES_ALLOW_INSECURE must be true or false, got 'maybe'"):
        config(EXT_BUNDLES_ALLOW_INSECURE="maybe")


def test_tokens_from_env_and_file_with_scopes(tmp_path):
    token_file = tmp_path / "tokens"
    token_file.write_text("# ci tokens\nfile-publisher\nfile-reader read  # dashboards\n\n")
    cfg = config(FASTPACK_API_TOKENS="a, b", FASTPACK_API_READ_TOKENS="r", FASTPACK_API_TOKEN_FILE=str(token_file))
    for token, scope in (
        ("a", PUBLISH),
        ("b", PUBLISH),
        ("r", READ),
        ("file-publisher", PUBLISH),
        ("file-reader", READ),
    ):
        assert authorize(cfg, {"authorization": f"Bearer {token}"}, READ).scope == scope
    assert all(token not in repr(cfg.tokens) for token in ("file-publisher", "file-reader"))


def test_token_file_errors_name_the_file_and_line(tmp_path):
    token_file = tmp_path / "tokens"
    token_file.write_text("good\nbad admin\n")
    with pytest.raises(UsageError, match="line 2: expected 'TOKEN \\[publish\\|read\\]'") as info:
        config(FASTPACK_API_TOKEN_FILE=str(token_file))
    assert info.value.path == str(token_file)
    with pytest.raises(UsageError, match="cannot read FASTPACK_API_TOKEN_FILE"):
        config(FASTPACK_API_TOKEN_FILE=str(tmp_path / "missing"))


def test_auth_decisions():
    cfg = config(FASTPACK_API_TOKENS="pub", FASTPACK_API_READ_TOKENS="ro")
    assert authorize(cfg, {"authorization": "Bearer pub"}, PUBLISH).scope == PUBLISH
    assert authorize(cfg, {"authorization": "bearer ro"}, READ).scope == READ
    with pytest.raises(Forbidden, match="may only read"):
        authorize(cfg, {"authorization": "Bearer ro"}, PUBLISH)
    with pytest.raises(Unauthorized, match="invalid API token"):
        authorize(cfg, {"authorization": "Bearer nope"}, READ)
    with pytest.raises(Unauthorized, match="must be 'Bearer <token>'"):
        authorize(cfg, {"authorization": "Basic cHViOg=="}, READ)
    with pytest.raises(Unauthorized, match="missing credentials"):
        authorize(cfg, {}, READ)


def test_admin_header_only_when_trusted_or_insecure():
    header = {"x-alga-admin": "true"}
    with pytest.raises(Unauthorized):
        authorize(config(FASTPACK_API_TOKENS="pub"), header, PUBLISH)
    assert authorize(config(FASTPACK_TRUST_ADMIN_HEADER="true"), header, PUBLISH).scope == PUBLISH
    assert authorize(config(EXT_BUNDLES_ALLOW_INSECURE="true"), {}, PUBLISH).scope == PUBLISH
    with pytest.raises(Unauthorized):
        authorize(config(FASTPACK_TRUST_ADMIN_HEADER="true"), {"x-alga-admin": "false"}, PUBLISH)


def test_public_read_opens_reads_only():
    cfg = config(FASTPACK_API_TOKENS="pub", FASTPACK_PUBLIC_READ="true")
    assert authorize(cfg, {}, READ).scope == READ
    with pytest.raises(Unauthorized):
        authorize(cfg, {}, PUBLISH)


def test_rate_limiter_counts_per_client_and_refills():
    now = [0.0]
    limiter = RateLimiter(3, 60.0, clock=lambda: now[0])
    assert [limiter.acquire("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.acquire("a") == 20
    assert limiter.acquire("b") == 0
    now[0] = 20.0
    assert limiter.acquire("a") == 0
    assert limiter.acquire("a") > 0
    assert RateLimiter(0, 1.0).acquire("a") == 0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-500", (0, 99)),
        ("bytes=90-500", (90, 99)),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=9-3", None),
        ("bytes=-", None),
    ],
)
def test_parse_range(header, expected):
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=200-300", "bytes=-0"])
def test_unsatisfiable_ranges(header):
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)


def test_etag_matching_is_weak_as_if_none_match_requires():
    assert etag_matches('"abc"', '"abc"')
    assert etag_matches('W/"abc"', '"abc"')
    assert etag_matches('"x", "abc"', '"abc"')
    assert etag_matches("*", '"abc"')
    assert not etag_matches('"abd"', '"abc"')


def test_cli_parser_does_not_import_the_server_stack():
    import subprocess
    import sys

    code = (
        "import sys; from fastpack.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('fastapi', 'starlette', 'uvicorn', 'httpx', 'pydantic') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr
