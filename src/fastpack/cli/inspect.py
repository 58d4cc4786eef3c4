"""`fastpack inspect BUNDLE`."""

from __future__ import annotations

import argparse

from fastpack.cli.common import print_json
from fastpack.cli.limits import add_limit_flags, limits_from_args

_MANIFEST_FIELDS = ("name", "version", "runtime", "publisher", "endpoints")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("inspect", help="show a bundle's entries, manifest, sizes and ratio")
    parser.add_argument("bundle", metavar="BUNDLE", help="bundle.tar.zst to inspect")
    parser.add_argument("--json", action="store_true", help="print everything as JSON on stdout")
    add_limit_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fastpack.inspection import inspect_bundle
    from fastpack.pack import FORMAT

    inspection = inspect_bundle(args.bundle, limits_from_args(args))
    if args.json:
        print_json(inspection.to_json())
        return 0
    summary = inspection.summary
    print(f"bundle    {inspection.path}")
    print(f"format    {FORMAT}")
    print(f"sha256    {inspection.sha256}")
    print(
        f"size      {summary.compressed_size} bytes compressed, {summary.tar_size} bytes tar, ratio {summary.ratio:.2f}"
    )
    print(
        f"entries   {len(summary.members)} ({summary.count('file')} files, {summary.count('dir')} directories, "
        f"{summary.count('symlink')} symlinks), {summary.content_size} bytes of content"
    )
    manifest = inspection.manifest
    if manifest is None:
        print("manifest  none (no manifest.json at the bundle root)")
    else:
        fields = "  ".join(f"{key}={manifest[key]}" for key in _MANIFEST_FIELDS if key in manifest)
        print(f"manifest  {'valid' if manifest['valid'] else 'INVALID'}  {fields}")
        for issue in manifest["issues"]:
            print(f"          {issue['path']}: {issue['message']}")
    print()
    for member in summary.members:
        suffix = {"dir": "/", "symlink": f" -> {member.linkname}"}.get(member.type, "")
        print(f"{member.mode:04o}  {member.size:>12}  {member.name}{suffix}")
    return 0
