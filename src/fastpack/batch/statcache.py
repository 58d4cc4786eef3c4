"""Stat fast path: reuse a file's content hash while its stat identity is unchanged.

The identity is (path, size, mtime_ns, inode, ctime_ns), fingerprinted with
XXH3-128. Rewriting a file in place with the same size and a restored mtime
still moves its ctime (utime sets ctime), and replacing it moves the inode, so
neither can hit a stale entry. The one remaining hole is "racy" files, modified
again within the filesystem's timestamp granularity after they were hashed;
like git, a file whose ctime/mtime is too close to the moment it was hashed is
never cached (it is simply hashed again next time).

One small binary file per extension (fixed 48-byte records) keeps warm runs to a
single read per extension and prunes entries of deleted files on every save.
"""

from __future__ import annotations

import os
import struct
import time

import blake3
import xxhash

from fastpack.tarstream import check_unchanged, open_member
from fastpack.tree import Entry

_IDENTITY = struct.Struct("<QqQq")  # size, mtime_ns, ino, ctime_ns
_RECORD = struct.Struct("<16s32s")  # fingerprint, BLAKE3 of the content
_READ_CHUNK = 1 << 20
# Linux filesystems stamp with the coarse clock (≤ 10 ms ticks); second-granularity
# filesystems (ns part always 0) get a window covering FAT's 2 s mtime.
_RACY_WINDOW_NS = 100_000_000
_RACY_WINDOW_COARSE_NS = 2_000_000_000


def fingerprint(entry: Entry) -> bytes:
    return xxhash.xxh3_128_digest(_IDENTITY.pack(entry.size, entry.mtime_ns, entry.ino, entry.ctime_ns) + entry.source)


def is_racy(entry: Entry, hashed_at_ns: int) -> bool:
    """True when the file may still change without its size, mtime or ctime moving."""
    newest = max(entry.mtime_ns, entry.ctime_ns)
    coarse = entry.mtime_ns % 1_000_000_000 == 0 and entry.ctime_ns % 1_000_000_000 == 0
    return hashed_at_ns - newest < (_RACY_WINDOW_COARSE_NS if coarse else _RACY_WINDOW_NS)


def hash_file(entry: Entry) -> bytes:
    """BLAKE3 of a file's content, failing if it is not (or stops being) what the scan saw."""
    fd = open_member(entry)
    try:
        hasher = blake3.blake3()
        buffer = bytearray(min(max(entry.size, 1), _READ_CHUNK))
        view = memoryview(buffer)
        with open(fd, "rb", buffering=0, closefd=False) as handle:
            while count := handle.readinto(buffer):
                hasher.update(view[:count])
        check_unchanged(fd, entry)
    finally:
        os.close(fd)
    return hasher.digest()


class StatCache:
    """Content hashes of one extension's files, keyed by stat fingerprint."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._known = self._load(path) if path else {}
        self._current: dict[bytes, bytes] = {}
        self.hits = 0
        self.hashed = 0

    @staticmethod
    def _load(path: str) -> dict[bytes, bytes]:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            return {}
        if len(data) % _RECORD.size:
            return {}  # torn or foreign file: start over
        return dict(_RECORD.iter_unpack(data))

    def content_hash(self, entry: Entry) -> bytes:
        key = fingerprint(entry)
        cached = self._known.get(key)
        if cached is not None:
            self.hits += 1
            self._current[key] = cached
            return cached
        hashed_at = time.time_ns()
        digest = hash_file(entry)
        self.hashed += 1
        if not is_racy(entry, hashed_at):
            self._current[key] = digest
        return digest

    def save(self) -> None:
        """Keep exactly this run's safe entries; no write when nothing changed."""
        if self.path is None or self._current == self._known:
            return
        from fastpack.batch.cache import replace_file

        replace_file(self.path, b"".join(_RECORD.pack(key, value) for key, value in self._current.items()))
        self._known = dict(self._current)
