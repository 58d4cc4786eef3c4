"""`fastpack inspect BUNDLE`."""

from __future__ import annotations

import argparse

from fastpack.cli.common import print_json
from fastpack.cli.limits import add_limit_flags, limits_from_args


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("inspect", help="show a bundle's entries, manifest, sizes and ratio")
    parser.add_argument("bundle", metavar="BUNDLE", help="bundle.tar.zst to inspect")
    parser.add_argument("--json", action="store_true", help="print everything as JSON on stdout")
    add_limit_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fastpack.inspection import inspect_bundle

    data = inspect_bundle(args.bundle, limits_from_args(args)).to_json()
    if args.json:
        print_json(data)
        return 0
    print(f"bundle    {data['path']}")
    print(f"format    {data['format']}")
    print(f"sha256    {data['sha256']}")
    print(f"size      {data['size']} bytes compressed, {data['tar_size']} bytes tar, ratio {data['ratio']:.2f}")
    print(
        f"entries   {data['entries']} ({data['files']} files, {data['directories']} directories, "
        f"{data['symlinks']} symlinks), {data['content_size']} bytes of content"
    )
    manifest = data["manifest"]
    if manifest is None:
        print("manifest  none (no manifest.json at the bundle root)")
    else:
        assert isinstance(manifest, dict)
        fields = "  ".join(
            f"{key}={manifest[key]}"
            for key in ("name", "version", "runtime", "publisher", "endpoints")
            if key in manifest
        )
        print(f"manifest  {'valid' if manifest['valid'] else 'INVALID'}  {fields}")
        for issue in manifest["issues"]:
            print(f"          {issue['path']}: {issue['message']}")
    print()
    members = data["members"]
    assert isinstance(members, list)
    for member in members:
        suffix = "/" if member["type"] == "dir" else f" -> {member['linkname']}" if member["type"] == "symlink" else ""
        print(f"{member['mode']}  {member['size']:>12}  {member['path']}{suffix}")
    return 0
