"""`fastpack batch [ROOTS…]`: pack (and publish) every extension of a monorepo, incrementally."""

from __future__ import annotations

import argparse
import json
import os
import sys

from fastpack.cli.common import add_output_flags


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "batch",
        help="pack many extensions at once, skipping unchanged ones",
        description="Find every directory holding a manifest.json under ROOTS (default: the current directory; hidden "
        "directories and node_modules are skipped) "
        "and pack each into OUT/<name>/<version>/bundle.tar.zst in parallel. Unchanged extensions are not "
        "repacked (local cache, and with --publish a fleet cache in the store). Prints one line per "
        "extension (--json: JSON lines, then a summary); exit 1 if any extension failed.",
    )
    parser.add_argument("roots", nargs="*", metavar="ROOT", help="directories to search for extensions")
    parser.add_argument(
        "--list", dest="list_file", metavar="FILE", help="file listing extension directories, one a line (- for stdin)"
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip extensions whose path (relative to its root) or directory name matches; repeatable",
    )
    parser.add_argument("--out", default="bundles", metavar="DIR", help="output directory (default: ./bundles)")
    parser.add_argument("--jobs", "-j", type=int, metavar="N", help="parallel packs (default: 1.5 x CPU count)")
    parser.add_argument("--level", type=int, default=3, help="zstd level, -7..22 (default 3); changes the bytes")
    parser.add_argument(
        "--long", type=int, metavar="WINDOW_LOG", dest="long_window", help="zstd long-distance window log"
    )
    parser.add_argument("--mtime", help="member mtime: seconds, @seconds or ISO 8601 (default SOURCE_DATE_EPOCH or 0)")
    parser.add_argument(
        "--follow-symlinks", action="store_true", help="store symlink targets' content instead of links"
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--publish", metavar="s3://BUCKET[/PREFIX]", help="publish each bundle to S3 (dedupe by hash)")
    target.add_argument("--publish-store", metavar="DIR", help="publish each bundle to a local store directory")
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="local cache (default: $FASTPACK_CACHE_DIR or $XDG_CACHE_HOME/fastpack/batch)",
    )
    parser.add_argument("--shard", metavar="I/N", help="build only this machine's share of the extensions (0 <= I < N)")
    parser.add_argument(
        "--backend", choices=("native", "python"), help="force a tar backend (default: native if built)"
    )
    add_output_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fastpack.backend import backend_name
    from fastpack.batch.cache import LocalCache, default_cache_dir
    from fastpack.batch.digest import PackOptions
    from fastpack.batch.discover import discover, read_list
    from fastpack.batch.job import ExtensionResult, JobContext
    from fastpack.batch.progress import BatchProgress
    from fastpack.batch.runner import run_batch
    from fastpack.batch.shard import parse_shard, select_shard
    from fastpack.pack import check_level, resolve_mtime

    check_level(args.level)
    options = PackOptions(args.level, args.long_window, resolve_mtime(args.mtime), args.follow_symlinks)
    backend = backend_name(args.backend)
    shard = parse_shard(args.shard) if args.shard else None
    out = args.out
    cache_dir = args.cache_dir or default_cache_dir(os.environ)
    store, store_label = _open_store(args)

    listed = read_list(args.list_file) if args.list_file else []
    roots = args.roots or ([] if args.list_file else ["."])
    extensions = discover(roots, listed=listed, exclude=args.exclude, skip=[out, cache_dir])
    if shard is not None:
        extensions = select_shard(extensions, *shard)

    progress = BatchProgress.for_terminal(len(extensions), quiet=args.quiet or args.json)

    def on_result(result: ExtensionResult) -> None:
        progress.finished(result.status)
        if args.json:
            progress.print(json.dumps(result.to_json()), sys.stdout)
        elif result.status == "failed":
            progress.print(f"fastpack: error: {result.error_line}")
        elif not args.quiet:
            progress.print(f"{result.sha256}  {result.bundle}", sys.stdout)
        for warning in result.warnings if not args.quiet else ():
            progress.print(f"fastpack: warning: {result.key}: {warning}")

    def make_context(threads: int) -> JobContext:
        return JobContext(
            out=out,
            options=options,
            local=LocalCache(cache_dir),
            threads=threads,
            backend=backend,
            store=store,
            store_label=store_label,
        )

    try:
        summary = run_batch(extensions, make_context, jobs=args.jobs, on_result=on_result, progress=progress)
    finally:
        progress.close()
    if args.json:
        print(json.dumps(summary.to_json()))
    elif not args.quiet:
        print(
            f"{summary.extensions} extensions{f' (shard {args.shard})' if shard else ''}: {summary.packed} packed, "
            f"{summary.cached} cached, {summary.fetched} fetched, {summary.failed} failed; "
            f"files: {summary.files_hashed} hashed, {summary.files_reused} unchanged; "
            f"{summary.jobs} workers × {summary.threads} zstd threads; {summary.seconds:.2f}s",
            file=sys.stderr,
        )
    return 1 if summary.failed else 0


def _open_store(args: argparse.Namespace) -> tuple[object, str | None]:
    from fastpack.batch.cache import FLEET_PREFIX
    from fastpack.store import store_from_url

    url = args.publish or args.publish_store
    if url is None:
        return None, None
    store = store_from_url(url)
    store.head(f"{FLEET_PREFIX}probe.json")  # unreachable, bad credentials, no bucket: one error before any work
    return store, store.url
