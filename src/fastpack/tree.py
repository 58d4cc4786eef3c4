"""Scan an input directory into the ordered, normalized entry list of SPEC §2.1.

The scan decides everything about the archive except file contents: member
names, order, modes, link targets and sizes. It refuses what cannot be packed
faithfully (special files, escaping symlinks, non-UTF-8 names) before any byte
is written.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from fastpack.errors import InputError
from fastpack.tarformat import DIRTYPE, REGTYPE, SYMTYPE

_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


@dataclass(frozen=True, slots=True)
class Entry:
    """One archive member and the stat identity used to detect changes while packing."""

    name: bytes  # member name, UTF-8, directories end with b"/"
    typeflag: bytes  # REGTYPE, DIRTYPE or SYMTYPE
    mode: int  # normalized: 0o755 or 0o644
    size: int  # file size at scan time, 0 for directories and symlinks
    linkname: bytes  # symlink target, b"" otherwise
    source: bytes  # filesystem path to read (the target's path with --follow-symlinks)
    mtime_ns: int
    ctime_ns: int
    ino: int
    dev: int


def display(path: bytes | str) -> str:
    """A path for messages: undecodable bytes shown escaped instead of crashing."""
    return path if isinstance(path, str) else os.fsdecode(path).encode("utf-8", "backslashreplace").decode()


def _check_utf8(name: bytes, full: bytes) -> None:
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("file name is not valid UTF-8", path=display(full)) from None


def _special_kind(mode: int) -> str | None:
    for predicate, label in _SPECIAL_KINDS:
        if predicate(mode):
            return label
    return None


def _within(path: bytes, root: bytes) -> bool:
    return path == root or path.startswith(root.rstrip(b"/") + b"/")


class _Scanner:
    def __init__(self, root: bytes, follow_symlinks: bool, exclude: frozenset[bytes]) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)
        self.follow_symlinks = follow_symlinks
        self.exclude = exclude
        self.entries: list[Entry] = []

    def walk(self, directory: bytes, prefix: bytes, ancestors: frozenset[tuple[int, int]]) -> None:
        try:
            with os.scandir(directory) as it:
                names = sorted(entry.name for entry in it)
        except OSError as exc:
            raise InputError(f"cannot list directory: {exc.strerror}", path=display(directory)) from None
        for name in names:
            full = os.path.join(directory, name)
            member = prefix + name
            if member in self.exclude:
                continue
            _check_utf8(name, full)
            self.add(full, member, ancestors)

    def add(self, full: bytes, member: bytes, ancestors: frozenset[tuple[int, int]]) -> None:
        try:
            st = os.lstat(full)
        except OSError as exc:
            raise InputError(f"cannot stat: {exc.strerror}", path=display(full)) from None
        if stat.S_ISLNK(st.st_mode):
            if self.follow_symlinks:
                self.add_followed(full, member, ancestors)
            else:
                self.add_symlink(full, member, st)
        elif stat.S_ISDIR(st.st_mode):
            self.add_directory(full, member, st, ancestors)
        elif stat.S_ISREG(st.st_mode):
            self.add_file(full, member, st)
        else:
            raise InputError(
                f"is {_special_kind(st.st_mode) or 'a special file'}; only regular files, "
                "directories and symlinks can be packed",
                path=display(full),
            )

    def add_followed(self, full: bytes, member: bytes, ancestors: frozenset[tuple[int, int]]) -> None:
        try:
            st = os.stat(full)
        except OSError as exc:
            raise InputError(f"symlink target cannot be followed: {exc.strerror}", path=display(full)) from None
        if stat.S_ISDIR(st.st_mode):
            self.add_directory(full, member, st, ancestors)
        elif stat.S_ISREG(st.st_mode):
            self.add_file(full, member, st)
        else:
            raise InputError(f"symlink points to {_special_kind(st.st_mode) or 'a special file'}", path=display(full))

    def add_symlink(self, full: bytes, member: bytes, st: os.stat_result) -> None:
        try:
            target = os.readlink(full)
        except OSError as exc:
            raise InputError(f"cannot read symlink: {exc.strerror}", path=display(full)) from None
        try:
            target.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("symlink target is not valid UTF-8", path=display(full)) from None
        if os.path.isabs(target):
            raise InputError(
                f"symlink has an absolute target ({display(target)}); only relative links inside the tree "
                "can be stored (use --follow-symlinks to store the target's content)",
                path=display(full),
            )
        lexical = os.path.normpath(os.path.join(os.path.dirname(member), target))
        resolved = os.path.realpath(full)
        if lexical == b".." or lexical.startswith(b"../") or not _within(resolved, self.real_root):
            raise InputError(
                f"symlink points outside the tree ({display(target)}); use --follow-symlinks to store "
                "the target's content",
                path=display(full),
            )
        self.entries.append(
            Entry(member, SYMTYPE, 0o755, 0, target, full, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
        )

    def add_directory(
        self, full: bytes, member: bytes, st: os.stat_result, ancestors: frozenset[tuple[int, int]]
    ) -> None:
        identity = (st.st_dev, st.st_ino)
        if identity in ancestors:
            raise InputError("symlink loop: directory contains itself", path=display(full))
        self.entries.append(
            Entry(member + b"/", DIRTYPE, 0o755, 0, b"", full, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
        )
        self.walk(full, member + b"/", ancestors | {identity})

    def add_file(self, full: bytes, member: bytes, st: os.stat_result) -> None:
        mode = 0o755 if st.st_mode & 0o111 else 0o644
        self.entries.append(
            Entry(member, REGTYPE, mode, st.st_size, b"", full, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
        )


def scan(src: str | os.PathLike[str], *, follow_symlinks: bool = False, exclude: Iterable[str] = ()) -> list[Entry]:
    """Entries of the tree under src, in archive order; `exclude` lists member paths to leave out."""
    root = os.fsencode(src)
    try:
        st = os.stat(root)
    except FileNotFoundError:
        raise InputError("no such directory", path=display(root)) from None
    except OSError as exc:
        raise InputError(f"cannot access: {exc.strerror}", path=display(root)) from None
    if not stat.S_ISDIR(st.st_mode):
        raise InputError("not a directory", path=display(root))
    scanner = _Scanner(root, follow_symlinks, frozenset(os.fsencode(p) for p in exclude))
    scanner.walk(root, b"", frozenset({(st.st_dev, st.st_ino)}))
    return scanner.entries
