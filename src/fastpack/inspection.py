"""`inspect`: what is in a bundle (entries, manifest, sizes, ratio), from one checked read.

Named `inspection` so that it never shadows the standard library's `inspect`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastpack.bundle import DEFAULT_LIMITS, BundleLimits, BundleReader, BundleSummary, HashingSource, collect
from fastpack.manifest import validate_with_members
from fastpack.pack import FORMAT

_SUMMARY_FIELDS = ("name", "version", "runtime", "publisher")


@dataclass(frozen=True)
class Inspection:
    path: str
    sha256: str
    summary: BundleSummary
    manifest: dict[str, Any] | None  # name/version/runtime/publisher/valid/issues, None when absent

    def to_json(self) -> dict[str, object]:
        summary = self.summary
        return {
            "path": self.path,
            "format": FORMAT,
            "sha256": self.sha256,
            "size": summary.compressed_size,
            "tar_size": summary.tar_size,
            "content_size": summary.content_size,
            "ratio": round(summary.ratio, 3),
            "entries": len(summary.members),
            "files": summary.count("file"),
            "directories": summary.count("dir"),
            "symlinks": summary.count("symlink"),
            "zstd": {
                "content_size": summary.frame.content_size,
                "window_size": summary.frame.window_size,
                "checksum": summary.frame.checksum,
            },
            "manifest": self.manifest,
            "members": [member.to_json() for member in summary.members],
        }


def _manifest_summary(summary: BundleSummary) -> dict[str, Any] | None:
    if summary.manifest is None:
        return None
    issues = validate_with_members(summary.manifest, summary.names)
    result: dict[str, Any] = {}
    try:
        doc = json.loads(summary.manifest)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        result = {key: doc[key] for key in _SUMMARY_FIELDS if key in doc}
        endpoints = doc.get("api", {}).get("endpoints") if isinstance(doc.get("api"), dict) else None
        if isinstance(endpoints, list):
            result["endpoints"] = len(endpoints)
    result["valid"] = not issues
    result["issues"] = [issue.to_json() for issue in issues]
    return result


def inspect_bundle(path: str, limits: BundleLimits = DEFAULT_LIMITS) -> Inspection:
    """Entries, manifest summary, sizes and ratio; raises BundleError if the bundle is unsafe or corrupt."""
    from fastpack.bundle import open_bundle

    with open_bundle(path) as handle:
        source = HashingSource(handle)
        summary = collect(BundleReader(source, limits, path))
        source.drain()
    return Inspection(path, source.state.hexdigest(), summary, _manifest_summary(summary))
