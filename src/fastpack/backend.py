"""Which implementation of the tar stream runs: the native (C) one or pure Python.

Both produce byte-identical streams; native is used when it was built and not
disabled with FASTPACK_NATIVE=0.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol

from fastpack.errors import UsageError
from fastpack.tree import Entry

BACKENDS = ("native", "python")


class TarSource(Protocol):
    def readinto(self, buffer: memoryview | bytearray) -> int: ...

    def close(self) -> None: ...


def native_available() -> bool:
    try:
        from fastpack import _native  # noqa: F401
    except ImportError:
        return False
    return True


def backend_name(requested: str | None = None) -> str:
    """Resolve the backend: explicit request, else native unless FASTPACK_NATIVE=0 or not built."""
    if requested is not None:
        if requested not in BACKENDS:
            raise UsageError(f"unknown backend {requested!r} (choose native or python)")
        if requested == "native" and not native_available():
            raise UsageError("the native backend is not built in this installation")
        return requested
    if os.environ.get("FASTPACK_NATIVE", "1") == "0" or not native_available():
        return "python"
    return "native"


def open_tar_source(entries: Sequence[Entry], mtime: int, backend: str) -> TarSource:
    if backend == "native":
        from fastpack.native import NativeTarReader

        return NativeTarReader(entries, mtime)
    from fastpack.tarstream import TarReader

    return TarReader(entries, mtime)


def scan_tree(
    src: str | os.PathLike[str], *, follow_symlinks: bool = False, exclude: Sequence[str] = (), backend: str
) -> Sequence[Entry]:
    """`tree.scan`, done in C for plain trees when the native backend runs (same entries, same order).

    Links, special files, odd names and every error go through `tree.scan`, so
    refusals have one implementation and one message.
    """
    if backend == "native" and not follow_symlinks and not exclude:
        from fastpack.native import scan_native

        entries = scan_native(src)
        if entries is not None:
            return entries
    from fastpack.tree import scan

    return scan(src, follow_symlinks=follow_symlinks, exclude=exclude)


def stream_size(entries: Sequence[Entry]) -> int:
    """Exact tar length: already summed by the native scan, else computed from the entries."""
    known = getattr(entries, "tar_size", None)
    if isinstance(known, int):
        return known
    from fastpack.tarstream import tar_size

    return tar_size(entries)


def zstd_version() -> str:
    import zstandard

    return ".".join(str(part) for part in zstandard.ZSTD_VERSION)
