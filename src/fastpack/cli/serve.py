"""`fastpack serve`: the HTTP API (SPEC §6) on uvicorn."""

from __future__ import annotations

import argparse
import os


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "serve",
        help="run the HTTP API (upload-proxy, finalize, abort, serve)",
        description="Run the extension bundle API. Storage comes from STORAGE_S3_* or the local store "
        "(FASTPACK_STORE); auth from FASTPACK_API_TOKENS / EXT_BUNDLES_ALLOW_INSECURE (see docs/server.md).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="port to bind (default 3000; 0 picks a free one)")
    parser.add_argument("--store", metavar="DIR|s3://BUCKET[/PREFIX]", help="storage instead of the environment's")
    parser.add_argument(
        "--log-level", default="info", choices=("debug", "info", "warning", "error"), help="default info"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fastpack.errors import MissingDependency

    try:
        import uvicorn

        from fastpack.server.app import create_app
    except ImportError as exc:
        raise MissingDependency(
            f"fastpack serve needs the server extra (pip install 'fastpack[server]'): {exc}"
        ) from None
    from fastpack.server.config import ServerConfig
    from fastpack.server.logging import configure
    from fastpack.store import store_from_url

    log = configure(args.log_level)
    store = store_from_url(args.store) if args.store else None
    config = ServerConfig.from_env(os.environ, store=store)
    auth = "insecure (open to anyone who can connect)" if config.allow_insecure else f"{len(config.tokens)} token(s)"
    log.info(
        "starting",
        extra={
            "fields": {
                "event": "start",
                "host": args.host,
                "port": args.port,
                "store": config.store.url,
                "auth": auth,
                "trust": config.trust_source,
                "max_bytes": config.max_bytes,
            }
        },
    )
    if not config.allow_insecure and not config.tokens and not config.trust_admin_header:
        log.warning("no FASTPACK_API_TOKENS configured: every API call will be refused with 401")
    uvicorn.run(
        create_app(config),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    return 0
