"""`fastpack pack DIR OUT`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fastpack.cli.common import add_output_flags, print_json
from fastpack.cli.publish import add_upload_flags


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("pack", help="pack a directory into a reproducible bundle.tar.zst")
    parser.add_argument("dir", metavar="DIR", help="extension directory to pack (e.g. dist/)")
    parser.add_argument("out", metavar="OUT", help="bundle file to write (e.g. bundle.tar.zst)")
    parser.add_argument("--level", type=int, default=3, help="zstd level, -7..22 (default 3); changes the bytes")
    parser.add_argument(
        "--long",
        type=int,
        metavar="WINDOW_LOG",
        dest="long_window",
        help="zstd long-distance matching with this window log; changes the bytes",
    )
    parser.add_argument("--threads", type=int, help="zstd worker threads (default: CPU count); never changes the bytes")
    parser.add_argument("--mtime", help="member mtime: seconds, @seconds or ISO 8601 (default SOURCE_DATE_EPOCH or 0)")
    parser.add_argument(
        "--follow-symlinks", action="store_true", help="store symlink targets' content instead of links"
    )
    parser.add_argument("--no-validate", dest="validate", action="store_false", help="skip manifest validation")
    parser.add_argument(
        "--backend", choices=("native", "python"), help="force a tar backend (default: native if built)"
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--publish", metavar="s3://BUCKET[/PREFIX]", help="also upload while packing (same pass) and publish to S3"
    )
    target.add_argument("--publish-store", metavar="DIR", help="also publish to this local store while packing")
    add_upload_flags(parser)
    add_output_flags(parser)
    parser.set_defaults(func=run)


def pack_options(args: argparse.Namespace) -> dict[str, Any]:
    """The `pack()` keyword arguments that `pack`'s flags set (shared with `pack --publish`)."""
    return {
        "level": args.level,
        "threads": args.threads,
        "mtime": args.mtime,
        "long_window": args.long_window,
        "follow_symlinks": args.follow_symlinks,
        "backend": args.backend,
        "quiet": args.quiet or args.json,
    }


def run(args: argparse.Namespace) -> int:
    from fastpack.pack import pack

    if args.publish or args.publish_store:
        from fastpack.cli.publish import publish_while_packing

        return publish_while_packing(args)
    result = pack(args.dir, args.out, validate=args.validate, **pack_options(args))
    if args.json:
        print_json(result.to_json())
    elif not args.quiet:
        print(f"{result.sha256}  {result.path}")
        print(
            f"{result.entries} entries, {result.tar_size} → {result.size} bytes, {result.backend} backend, "
            f"{result.seconds:.2f}s",
            file=sys.stderr,
        )
    return 0
