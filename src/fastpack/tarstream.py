"""Pure-Python backend: the tar stream of a scanned tree, read into caller buffers.

`TarReader.readinto` has the contract the native backend implements too: fill
as much of the buffer as the stream has, return the count, 0 at the end. File
data goes straight from the file into the buffer (no intermediate copies), and
every file is checked against its scan-time identity so a tree that changes
under us fails instead of yielding a bundle nobody can reproduce.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from fastpack.errors import InputError, SourceChangedError
from fastpack.tarformat import REGTYPE, end_of_archive_size, member_header, member_header_size, padded_size
from fastpack.tree import Entry, display


def tar_size(entries: Sequence[Entry]) -> int:
    """Exact length of the uncompressed stream, known before reading any content."""
    total = 0
    for entry in entries:
        total += member_header_size(entry.name, entry.size, entry.linkname) + padded_size(entry.size)
    return total + end_of_archive_size(total)


def changed_error(entry: Entry, what: str) -> SourceChangedError:
    return SourceChangedError(f"file {what} while being packed", path=display(entry.source))


def open_member(entry: Entry) -> int:
    """Open a file for packing and check it is still what the scan saw."""
    try:
        fd = os.open(entry.source, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise changed_error(entry, "disappeared") from None
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror}", path=display(entry.source)) from None
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != (entry.dev, entry.ino):
        os.close(fd)
        raise changed_error(entry, "was replaced")
    if st.st_size != entry.size:
        os.close(fd)
        raise changed_error(entry, f"changed size ({entry.size} bytes when scanned, now {st.st_size})")
    return fd


def check_unchanged(fd: int, entry: Entry) -> None:
    """After reading: no growth, no modification since the scan (mtime/ctime)."""
    st = os.fstat(fd)
    if st.st_size != entry.size:
        raise changed_error(entry, f"changed size ({entry.size} bytes when scanned, now {st.st_size})")
    if (st.st_mtime_ns, st.st_ctime_ns) != (entry.mtime_ns, entry.ctime_ns):
        raise changed_error(entry, "was modified")


class TarReader:
    """Sequential reader of the tar stream for `entries` with member mtime `mtime`."""

    def __init__(self, entries: Sequence[Entry], mtime: int) -> None:
        self._entries = iter(entries)
        self._mtime = mtime
        self._pending = memoryview(b"")
        self._fd = -1
        self._entry: Entry | None = None
        self._remaining = 0
        self._written = 0
        self._finished = False

    def readinto(self, buffer: memoryview | bytearray) -> int:
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view):
            if self._pending:
                count = min(len(self._pending), len(view) - filled)
                view[filled : filled + count] = self._pending[:count]
                self._pending = self._pending[count:]
            elif self._fd >= 0:
                count = self._read_file(view[filled:])
            elif self._advance():
                continue
            else:
                break
            filled += count
            self._written += count
        return filled

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _advance(self) -> bool:
        """Queue the next member's header (and open its file); False when the stream is done."""
        if self._finished:
            return False
        entry = next(self._entries, None)
        if entry is None:
            self._finished = True
            self._pending = memoryview(bytes(end_of_archive_size(self._written)))
            return True
        header = member_header(entry.name, entry.mode, entry.size, self._mtime, entry.typeflag, entry.linkname)
        self._pending = memoryview(header)
        if entry.typeflag == REGTYPE:
            self._fd = open_member(entry)
            self._entry = entry
            self._remaining = entry.size
            if not entry.size:
                self._finish_file()
        return True

    def _read_file(self, view: memoryview) -> int:
        entry = self._entry
        assert entry is not None
        want = min(self._remaining, len(view))
        try:
            count = os.readv(self._fd, [view[:want]])
        except OSError as exc:
            self.close()
            raise InputError(f"cannot read file: {exc.strerror}", path=display(entry.source)) from None
        if count == 0:
            self.close()
            raise changed_error(entry, f"shrank ({entry.size} bytes when scanned)")
        self._remaining -= count
        if not self._remaining:
            self._finish_file()
        return count

    def _finish_file(self) -> None:
        entry = self._entry
        assert entry is not None
        try:
            check_unchanged(self._fd, entry)
        finally:
            self.close()
        if entry.size:  # an empty file is finished while its header is still pending
            self._pending = memoryview(bytes(padded_size(entry.size) - entry.size))
