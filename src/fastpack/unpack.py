"""`unpack`: extract a bundle safely, all or nothing.

Everything goes into a fresh temporary directory (next to a new DIR, inside an
existing empty one) that becomes DIR, or is emptied into it, only once the
whole bundle has been read and every check passed: a rejected bundle leaves
nothing. Files are created with O_EXCL and O_NOFOLLOW; symlinks (already proven
by the reader to stay inside) are created last, so no write goes through one.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass

from fastpack.bundle import DEFAULT_LIMITS, BundleLimits, Member, iter_members
from fastpack.errors import OutputError

_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class UnpackResult:
    path: str
    entries: int
    files: int
    directories: int
    symlinks: int
    bytes: int

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _check_destination(dest: str) -> bool:
    """True when dest is an existing empty directory, False when it is to be created."""
    if os.path.islink(dest):
        raise OutputError("destination is a symlink; give a new or empty directory", path=dest)
    if os.path.isdir(dest):
        if os.listdir(dest):
            raise OutputError("destination directory is not empty", path=dest)
        return True
    if os.path.lexists(dest):
        raise OutputError("destination exists and is not a directory", path=dest)
    parent = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(parent):
        raise OutputError("parent directory does not exist", path=parent)
    return False


def _write_file(member: Member, target: str) -> int:
    fd = os.open(target, _WRITE_FLAGS, 0o600)
    written = 0
    try:
        os.fchmod(fd, 0o755 if member.mode & 0o111 else 0o644)
        for chunk in member.read_chunks():
            view = memoryview(chunk)
            while view:
                count = os.write(fd, view)
                view = view[count:]
                written += count
    finally:
        os.close(fd)
    return written


def _extract(bundle: str, root: str, limits: BundleLimits) -> UnpackResult:
    counts = {"file": 0, "dir": 0, "symlink": 0}
    total = 0
    directories: list[str] = []
    symlinks: list[tuple[str, str]] = []
    for member in iter_members(bundle, limits):
        target = os.path.join(root, *member.name.split("/"))
        counts[member.type] += 1
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        if member.type == "dir":
            os.makedirs(target, mode=0o755, exist_ok=True)
            directories.append(target)
        elif member.type == "symlink":
            symlinks.append((member.linkname, target))
        else:
            total += _write_file(member, target)
    for link_target, target in symlinks:
        os.symlink(link_target, target)
    for directory in directories:
        os.chmod(directory, 0o755)
    return UnpackResult(root, sum(counts.values()), counts["file"], counts["dir"], counts["symlink"], total)


def _move_into(staging: str, dest: str) -> None:
    """Move the extracted entries into the existing empty `dest` (same filesystem: staging lives inside it)."""
    moved = []
    try:
        for name in os.listdir(staging):
            os.rename(os.path.join(staging, name), os.path.join(dest, name))
            moved.append(os.path.join(dest, name))
        os.rmdir(staging)
    except BaseException:
        for path in moved:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        raise


def _place(staging: str, dest: str, existing: bool) -> None:
    if existing:
        _move_into(staging, dest)
        return
    try:
        os.rename(staging, dest)
    except OSError as exc:
        reason = "destination appeared meanwhile" if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) else exc.strerror
        raise OutputError(f"cannot move the extracted tree into place: {reason}", path=dest) from None


def unpack_bundle(bundle: str, dest: str, limits: BundleLimits = DEFAULT_LIMITS) -> UnpackResult:
    """Extract `bundle` into `dest`, which must not exist or be an empty directory.

    A new `dest` is the temporary directory renamed; an existing empty one (perhaps a mount point or the
    working directory) keeps its identity and receives the entries from a temporary directory inside it.
    """
    existing = _check_destination(dest)
    workdir = dest if existing else os.path.dirname(os.path.abspath(dest))
    try:
        staging = tempfile.mkdtemp(prefix=".fastpack-unpack.", suffix=".tmp", dir=workdir)
    except OSError as exc:
        raise OutputError(f"cannot create a temporary directory: {exc.strerror}", path=workdir) from None
    try:
        os.chmod(staging, 0o755)
        result = _extract(bundle, staging, limits)
        _place(staging, dest, existing)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        where = os.fsdecode(exc.filename).replace(staging, dest, 1) if exc.filename else dest
        raise OutputError(f"cannot write: {exc.strerror}", path=where) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return UnpackResult(dest, result.entries, result.files, result.directories, result.symlinks, result.bytes)
