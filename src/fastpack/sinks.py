"""Where compressed bytes go: one SHA-256, many sinks, all-or-nothing.

`FanOut` feeds every chunk once to SHA-256 and to each sink, then commits the
sinks with the final digest, or aborts all of them. A sink is anything with
`write`, `commit(sha256, size)` and `abort` (the bundle file, an upload).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from types import TracebackType
from typing import Protocol

from fastpack.errors import FastpackError, OutputError
from fastpack.hashing import BundleDigest
from fastpack.tree import display

_BUFFERLIKE = bytes | bytearray | memoryview


class Sink(Protocol):
    def write(self, data: _BUFFERLIKE) -> None: ...

    def commit(self, sha256: str, size: int) -> None: ...

    def abort(self) -> None: ...


class FanOut:
    """Single pass over the output: hash it and hand it to every sink."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks
        self._sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: _BUFFERLIKE) -> None:
        if not data:
            return
        self._sha256.update(data)
        self.size += len(data)
        for sink in self.sinks:
            sink.write(data)

    def bundle_digest(self) -> BundleDigest:
        return BundleDigest.from_state(self._sha256, self.size)

    def commit(self) -> str:
        digest = self._sha256.hexdigest()
        for index, sink in enumerate(self.sinks):
            try:
                sink.commit(digest, self.size)
            except BaseException:
                for rest in self.sinks[index + 1 :]:
                    rest.abort()
                raise
        return digest

    def abort(self) -> None:
        for sink in self.sinks:
            sink.abort()

    def __enter__(self) -> FanOut:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()


def fsync_directory(path: str) -> None:
    fd = os.open(path or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicFile:
    """A file that appears at `path` complete or not at all (temp in the same dir, fsync, rename)."""

    def __init__(self, path: str) -> None:
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise OutputError("output directory does not exist", path=display(directory))
        try:
            fd, self.temp_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
        except OSError as exc:
            raise OutputError(f"cannot create output file: {exc.strerror}", path=display(directory)) from None
        os.fchmod(fd, 0o644 & ~_umask())
        self._file = os.fdopen(fd, "wb", buffering=0)
        self.closed = False

    def write(self, data: _BUFFERLIKE) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            raise OutputError(f"cannot write output: {exc.strerror}", path=display(self.path)) from None

    def finish(self) -> None:
        """Flush to disk; the caller renames with `publish` once everything is ready."""
        try:
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise OutputError(f"cannot write output: {exc.strerror}", path=display(self.path)) from None
        self._file.close()
        self.closed = True

    def publish(self) -> None:
        try:
            os.replace(self.temp_path, self.path)
        except OSError as exc:
            raise OutputError(f"cannot move output into place: {exc.strerror}", path=display(self.path)) from None
        fsync_directory(os.path.dirname(os.path.abspath(self.path)))

    def abort(self) -> None:
        if not self.closed:
            self._file.close()
            self.closed = True
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp_path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str, data: bytes) -> None:
    """Small files (sidecars, signatures, keys): all or nothing."""
    target = AtomicFile(path)
    try:
        target.write(data)
        target.finish()
        target.publish()
    except BaseException:
        target.abort()
        raise


class BundleFileSink:
    """The bundle on disk plus its sha256sum sidecar, renamed into place together on commit."""

    def __init__(self, path: str) -> None:
        from fastpack.sidecar import sidecar_path

        self.path = path
        self.sidecar = sidecar_path(path)
        self._bundle = AtomicFile(path)
        self._sidecar: AtomicFile | None = None

    def write(self, data: _BUFFERLIKE) -> None:
        self._bundle.write(data)

    def commit(self, sha256: str, size: int) -> None:
        from fastpack.sidecar import sidecar_text

        try:
            self._bundle.finish()
            self._sidecar = AtomicFile(self.sidecar)
            self._sidecar.write(sidecar_text(sha256, self.path).encode())
            self._sidecar.finish()
            self._bundle.publish()
        except BaseException:
            self.abort()
            raise
        try:
            self._sidecar.publish()
        except FastpackError:
            self._sidecar.abort()
            _remove_quietly(self.sidecar)
            raise

    def abort(self) -> None:
        self._bundle.abort()
        if self._sidecar is not None:
            self._sidecar.abort()


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
