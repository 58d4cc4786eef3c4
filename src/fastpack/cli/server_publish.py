"""The `--server` half of `fastpack publish`: publishing through a `fastpack serve` API (SPEC §6)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from fastpack.cli.common import print_json


def add_server_flags(parser: argparse.ArgumentParser, target: argparse._MutuallyExclusiveGroup) -> None:
    target.add_argument(
        "--server", metavar="URL", help="publish through a fastpack serve API at URL (default: SERVER_BASE if set)"
    )
    parser.add_argument("--token", help="API token for --server (default: FASTPACK_TOKEN)")


def wants_server(args: argparse.Namespace) -> bool:
    """--server, or SERVER_BASE when no store was named on the command line (the reference CI's setup)."""
    return bool(args.server or (not args.s3 and not args.store and os.environ.get("SERVER_BASE")))


def run_server_publish(args: argparse.Namespace, signature: Any) -> int:
    from fastpack.client import ServerTarget, publish_via_server
    from fastpack.errors import UsageError
    from fastpack.manifest import read_manifest_file
    from fastpack.sidecar import parse_expected_sha256

    if args.trust:
        raise UsageError("--trust is for direct publishing; the server checks signatures with its SIGNING_TRUST_BUNDLE")
    target = ServerTarget.from_env(args.server, args.token)
    declared = parse_expected_sha256(args.declared_hash) if args.declared_hash else None
    manifest = read_manifest_file(args.manifest) if args.manifest else None
    result = publish_via_server(
        target,
        args.bundle,
        manifest=manifest,
        declared_hash=declared,
        signature=(signature.text, signature.algorithm) if signature is not None else None,
        quiet=args.quiet or args.json,
    )
    print_json(result)
    if not (args.quiet or args.json):
        action = "uploaded" if result["uploaded"] else "already on the server"
        print(
            f"published {result['extension']}@{result['version']} ({result.get('size', '?')} bytes, {action}) "
            f"to {target.base_url}",
            file=sys.stderr,
        )
    return 0
