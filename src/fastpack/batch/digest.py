"""Input-tree digest: what a pack's bytes depend on, known before packing.

BLAKE3 over a header naming every option that changes the bytes (level, long
window, member mtime, follow-symlinks) and the versions that do (fastpack, the
bundle format, libzstd), then the normalized entry list of `fastpack.tree.scan`
(type, mode, size, name, link target) with each regular file's content hash.
Thread count and backend are left out: by contract they never change the bytes.
"""

from __future__ import annotations

import functools
import json
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import blake3

from fastpack.tarformat import REGTYPE
from fastpack.tree import Entry

DIGEST_FORMAT = "fastpack-batch-digest-v1"
_ENTRY = struct.Struct("<cIQII")  # typeflag, mode, size, len(name), len(linkname)


@dataclass(frozen=True)
class PackOptions:
    """The pack options that change a bundle's bytes."""

    level: int
    long_window: int | None
    mtime: int  # resolved member mtime
    follow_symlinks: bool

    @functools.cached_property
    def header(self) -> bytes:
        from fastpack import __version__
        from fastpack.backend import zstd_version
        from fastpack.pack import FORMAT

        fields = {
            "digest": DIGEST_FORMAT,
            "fastpack": __version__,
            "format": FORMAT,
            "zstd": zstd_version(),
            "level": self.level,
            "long": self.long_window,
            "mtime": self.mtime,
            "follow_symlinks": self.follow_symlinks,
        }
        return json.dumps(fields, sort_keys=True).encode() + b"\n"


def tree_digest(entries: Sequence[Entry], options: PackOptions, content_hash: Callable[[Entry], bytes]) -> str:
    """Hex BLAKE3 identifying the bundle `pack` would make of `entries` with `options`."""
    hasher = blake3.blake3(options.header)
    for entry in entries:
        hasher.update(_ENTRY.pack(entry.typeflag, entry.mode, entry.size, len(entry.name), len(entry.linkname)))
        hasher.update(entry.name)
        hasher.update(entry.linkname)
        if entry.typeflag == REGTYPE:
            hasher.update(content_hash(entry))
    return hasher.hexdigest()
