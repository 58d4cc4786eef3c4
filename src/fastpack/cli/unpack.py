"""`fastpack unpack BUNDLE DIR`."""

from __future__ import annotations

import argparse
import sys

from fastpack.cli.common import add_output_flags, print_json
from fastpack.cli.limits import add_limit_flags, limits_from_args


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "unpack",
        help="extract a bundle safely (no traversal, no escaping links, size/entry/ratio limits)",
        description="Extract BUNDLE into DIR (new or empty) through a temporary directory: a rejected "
        "bundle leaves nothing behind.",
    )
    parser.add_argument("bundle", metavar="BUNDLE", help="bundle.tar.zst to extract")
    parser.add_argument("dir", metavar="DIR", help="directory to create (must not exist, or be empty)")
    add_limit_flags(parser)
    add_output_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fastpack.unpack import unpack_bundle

    result = unpack_bundle(args.bundle, args.dir, limits_from_args(args))
    if args.json:
        print_json(result.to_json())
    elif not args.quiet:
        print(
            f"{result.path}: {result.entries} entries ({result.files} files, {result.directories} directories, "
            f"{result.symlinks} symlinks), {result.bytes} bytes",
            file=sys.stderr,
        )
    return 0
