"""`fastpack manifest check FILE|DIR|BUNDLE`."""

from __future__ import annotations

import argparse

from fastpack.cli.common import print_json
from fastpack.cli.limits import add_limit_flags, limits_from_args


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("manifest", help="manifest tools (check)")
    actions = parser.add_subparsers(dest="manifest_command", metavar="ACTION")
    actions.required = True
    check = actions.add_parser(
        "check",
        help="validate a manifest.json, an extension directory, or the manifest inside a bundle",
        description="Report every issue of a manifest (SPEC §3). For a directory or a bundle, also check that "
        "the files it names (dist/main.wasm, ui.entry) are there. Exit 1 when invalid.",
    )
    check.add_argument("target", metavar="FILE|DIR|BUNDLE", help="manifest.json, extension directory, or bundle")
    check.add_argument("--json", action="store_true", help="print {path, valid, issues} as JSON on stdout")
    add_limit_flags(check)
    check.set_defaults(func=run_check)


def _issues(target: str, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    import os

    from fastpack import manifest
    from fastpack.bundle import ZSTD_MAGIC

    if os.path.isdir(target):
        from fastpack.tree import scan

        entries = scan(target)
        path = os.path.join(target, manifest.MANIFEST_NAME)
        names = frozenset(entry.name.decode("utf-8").removesuffix("/") for entry in entries)
        return path, manifest.validate_with_members(manifest.read_manifest_file(path), names)
    data = manifest.read_manifest_file(target) if not _is_bundle(target, ZSTD_MAGIC) else None
    if data is not None:
        return target, manifest.validate_manifest(data)
    from fastpack.bundle import summarize_bundle
    from fastpack.errors import BundleError

    summary = summarize_bundle(target, limits_from_args(args))
    if summary.manifest is None:
        raise BundleError(f"no {manifest.MANIFEST_NAME} at the bundle root", path=target)
    return f"{target}!{manifest.MANIFEST_NAME}", manifest.validate_with_members(summary.manifest, summary.names)


def _is_bundle(path: str, magic: bytes) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(len(magic)) == magic
    except OSError:
        return False


def run_check(args: argparse.Namespace) -> int:
    path, issues = _issues(args.target, args)
    if args.json:
        print_json({"path": path, "valid": not issues, "issues": [issue.to_json() for issue in issues]})
    elif issues:
        for issue in issues:
            print(f"{path}: {issue.path}: {issue.message}")
        print(f"{path}: invalid manifest ({len(issues)} issue{'s' if len(issues) != 1 else ''})")
    else:
        print(f"{path}: valid")
    return 1 if issues else 0
