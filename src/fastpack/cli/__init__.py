"""The `fastpack` command: argparse front end over the library.

Each subcommand lives in its own module with ``register(subparsers)``; modules
import only argparse-level things at top level so `--help` and `--version`
stay fast (no boto3, cryptography or server imports).
"""

from __future__ import annotations

import argparse
import importlib
import os
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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for every subcommand, or only for `command` (saves importing the others at start-up)."""
    parser = argparse.ArgumentParser(
        prog="fastpack",
        description="Pack, sign, publish and verify reproducible extension bundles.",
    )
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in (command,) if command in COMMAND_MODULES else COMMAND_MODULES:
        importlib.import_module(f"fastpack.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(arguments[0] if arguments else None)
    args = parser.parse_args(arguments)
    try:
        return int(args.func(args) or 0)
    except FastpackError as exc:
        print(f"fastpack: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("fastpack: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`fastpack batch --json | head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
