"""Native backend: the tree scan and tar stream produced by C (`native/fastpack_native.c`).

`NativeTarReader` has the contract of `fastpack.tarstream.TarReader` and
raises the same exceptions with the same messages; the C code reports an
error kind, errno and entry index, mapped here with the pure-Python helpers.
The entry list is handed over once as flat arrays (no per-entry cffi calls),
and every fill runs with the GIL released.

`scan_native` lists plain trees (regular files and directories) in C, with
the entries `tree.scan` gives; anything else returns None and the caller
runs `tree.scan`, so every refusal keeps its one implementation and message.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import overload

from fastpack._native import ffi, lib
from fastpack.errors import FastpackError, InputError
from fastpack.tarformat import DIRTYPE, REGTYPE
from fastpack.tarstream import changed_error
from fastpack.tree import Entry, display

_TYPEFLAGS = {REGTYPE[0]: REGTYPE, DIRTYPE[0]: DIRTYPE}


class NativeEntries(Sequence[Entry]):
    """Entries scanned in C. The native reader uses the C arrays as they are; `Entry`
    objects are built on first access (manifest validation), not for packing."""

    def __init__(self, scan: object) -> None:
        self._scan = ffi.gc(scan, lib.fp_scan_free)
        self.view = ffi.new("fp_scan_view *")
        lib.fp_scan_get_view(self._scan, self.view)
        self.tar_size = int(self.view.tar_size)
        self._entries: list[Entry] | None = None

    def __len__(self) -> int:
        return int(self.view.count)

    @overload
    def __getitem__(self, index: int) -> Entry: ...

    @overload
    def __getitem__(self, index: slice) -> list[Entry]: ...

    def __getitem__(self, index: int | slice) -> Entry | list[Entry]:
        return self.materialized()[index]

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.materialized())

    def materialized(self) -> list[Entry]:
        if self._entries is None:
            view, count = self.view, len(self)
            self._entries = []
            if count:
                names = ffi.unpack(view.names, view.names_len).split(b"\0")[:-1]
                sources = ffi.unpack(view.sources, view.sources_len).split(b"\0")[:-1]
                self._entries = list(
                    map(
                        Entry,
                        names,
                        [_TYPEFLAGS[flag] for flag in ffi.unpack(view.typeflags, count)],
                        ffi.unpack(view.modes, count),
                        ffi.unpack(view.sizes, count),
                        repeat(b""),
                        sources,
                        ffi.unpack(view.mtimes_ns, count),
                        ffi.unpack(view.ctimes_ns, count),
                        ffi.unpack(view.inos, count),
                        ffi.unpack(view.devs, count),
                    )
                )
        return self._entries


def scan_native(src: str | os.PathLike[str]) -> NativeEntries | None:
    """The entries of a plain tree, or None when `tree.scan` must decide (links, special files, errors)."""
    out = ffi.new("fp_scan **")
    status = lib.fp_scan_tree(os.fsencode(src), out)
    if status == lib.FP_OK:
        return NativeEntries(out[0])
    if status == lib.FP_ERR_NOMEM:
        raise MemoryError("native scan ran out of memory")
    return None


def _joined(values: list[bytes]) -> bytes:
    """NUL-terminated strings back to back, as the C reader expects."""
    return b"\0".join(values) + b"\0" if values else b""


class NativeTarReader:
    """Sequential reader of the tar stream for `entries` with member mtime `mtime`."""

    def __init__(self, entries: Sequence[Entry], mtime: int) -> None:
        self._entries = entries
        if isinstance(entries, NativeEntries):
            # The scan's own arrays; `self._entries` keeps them alive.
            view = entries.view
            reader = lib.fp_reader_new(
                view.count, view.names, view.links, view.sources, view.sizes, view.modes, view.typeflags,
                view.devs, view.inos, view.mtimes_ns, view.ctimes_ns, mtime,
            )  # fmt: skip
        else:
            reader = self._from_entries(entries, mtime)
        if reader == ffi.NULL:
            raise FastpackError(f"native tar reader cannot start (mtime {mtime} out of range or out of memory)")
        self._reader = ffi.gc(reader, lib.fp_reader_free)
        self._filled = ffi.new("size_t *")
        self._error = ffi.new("fp_error *")

    def _from_entries(self, entries: Sequence[Entry], mtime: int) -> object:
        count = len(entries)
        # The C reader keeps pointers into these buffers: they live as long as self.
        self._buffers = (
            _joined([e.name for e in entries]),
            _joined([e.linkname for e in entries]),
            _joined([e.source for e in entries]),
            array("q", [e.size for e in entries]),
            array("I", [e.mode for e in entries]),
            b"".join([e.typeflag for e in entries]),
            array("Q", [e.dev for e in entries]),
            array("Q", [e.ino for e in entries]),
            array("q", [e.mtime_ns for e in entries]),
            array("q", [e.ctime_ns for e in entries]),
        )
        names, links, sources, sizes, modes, types, devs, inos, mtimes, ctimes = (
            ffi.from_buffer(buffer) for buffer in self._buffers
        )
        return lib.fp_reader_new(
            count,
            ffi.cast("const char *", names),
            ffi.cast("const char *", links),
            ffi.cast("const char *", sources),
            ffi.cast("const int64_t *", sizes),
            ffi.cast("const uint32_t *", modes),
            ffi.cast("const char *", types),
            ffi.cast("const uint64_t *", devs),
            ffi.cast("const uint64_t *", inos),
            ffi.cast("const int64_t *", mtimes),
            ffi.cast("const int64_t *", ctimes),
            mtime,
        )

    def readinto(self, buffer: memoryview | bytearray) -> int:
        target = ffi.from_buffer(buffer, require_writable=True)
        status = lib.fp_reader_fill(self._reader, target, len(target), self._filled, self._error)
        if status != lib.FP_OK:
            raise self._exception(self._error)
        return int(self._filled[0])

    def close(self) -> None:
        lib.fp_reader_close(self._reader)

    def _exception(self, error: object) -> FastpackError:
        kind, errnum, index = error.kind, error.errnum, error.index  # type: ignore[attr-defined]
        if index >= len(self._entries):
            return FastpackError(f"native tar reader failed: {os.strerror(errnum)}")
        entry = self._entries[index]
        if kind == lib.FP_ERR_DISAPPEARED:
            return changed_error(entry, "disappeared")
        if kind == lib.FP_ERR_REPLACED:
            return changed_error(entry, "was replaced")
        if kind == lib.FP_ERR_SIZE:
            now = error.now_size  # type: ignore[attr-defined]
            return changed_error(entry, f"changed size ({entry.size} bytes when scanned, now {now})")
        if kind == lib.FP_ERR_SHRANK:
            return changed_error(entry, f"shrank ({entry.size} bytes when scanned)")
        if kind == lib.FP_ERR_MODIFIED:
            return changed_error(entry, "was modified")
        if kind in (lib.FP_ERR_OPEN, lib.FP_ERR_READ, lib.FP_ERR_FSTAT):
            return InputError(f"cannot read file: {os.strerror(errnum)}", path=display(entry.source))
        return FastpackError(f"native tar reader failed: {os.strerror(errnum)}", path=display(entry.source))
