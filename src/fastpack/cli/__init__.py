"""The `fastpack` command: argparse front end over the library.

Each subcommand lives in its own module with ``register(subparsers)``; modules
import only argparse-level things at top level so `--help` and `--version`
stay fast (no boto3, cryptography or server imports).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from fastpack import __version__
from fastpack.errors import FastpackError

COMMAND_MODULES = ("pack", "serve", "sign", "keygen", "batch", "manifest", "verify", "inspect", "unpack", "publish")


class _VersionAction(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show version, backend and libzstd version")

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        from fastpack.backend import backend_name, zstd_version

        print(f"fastpack {__version__} (backend: {backend_name()}, zstd {zstd_version()})")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastpack",
        description="Pack, sign, publish and verify reproducible extension bundles.",
    )
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"fastpack.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FastpackError as exc:
        print(f"fastpack: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("fastpack: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
