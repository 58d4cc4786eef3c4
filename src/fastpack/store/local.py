"""The embedded store: the SPEC §5 key layout in a directory.

Objects are written to a temp file under `<root>/.fastpack/tmp`, fsynced, then
hard-linked to their key: `link()` fails instead of replacing, which gives the
same create-only semantics as `If-None-Match: *`. A cache of each object's
SHA-256 (its ETag), content type and cache control lives under
`<root>/.fastpack/meta`; it is rebuilt from the bytes if missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

from fastpack.errors import NotFound, StoreError
from fastpack.hashing import READ_CHUNK
from fastpack.sinks import fsync_directory
from fastpack.store import (
    _BUFFERLIKE,
    BUNDLE_CONTENT_TYPE,
    CANONICAL_PREFIX,
    IMMUTABLE,
    ObjectInfo,
    check_key,
    is_staging_key,
)

_INTERNAL = ".fastpack"


def _default_content_type(key: str) -> str:
    if key.endswith(".tar.zst"):
        return BUNDLE_CONTENT_TYPE
    if key.endswith(".json"):
        return "application/json"
    return "text/plain; charset=utf-8"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


class LocalStore:
    """A directory holding objects under their keys; safe for concurrent writers on one filesystem."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self.url = self.root
        self._tmp = os.path.join(self.root, _INTERNAL, "tmp")
        self._meta = os.path.join(self.root, _INTERNAL, "meta")
        try:
            os.makedirs(self._tmp, exist_ok=True)
            os.makedirs(self._meta, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the local store: {exc.strerror}", path=self.root) from None

    def path(self, key: str) -> str:
        return os.path.join(self.root, *check_key(key).split("/"))

    def _meta_path(self, key: str) -> str:
        return os.path.join(self._meta, *check_key(key).split("/")) + ".json"

    def head(self, key: str) -> ObjectInfo | None:
        path = self.path(key)
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot stat object: {exc.strerror}", path=path) from None
        meta = self._read_meta(key)
        if meta is None or meta.get("size") != size:
            meta = self._rebuild_meta(key, path)
        return ObjectInfo(
            key=key,
            size=size,
            etag=f'"{meta["sha256"]}"',
            content_type=_text(meta.get("content_type")),
            cache_control=_text(meta.get("cache_control")),
        )

    def get(self, key: str, *, byte_range: tuple[int, int] | None = None) -> LocalReader:
        info = self.head(key)
        if info is None:
            raise NotFound("no such object", path=f"{self.url}/{key}")
        return LocalReader(self.path(key), info, byte_range)

    def put(self, key: str, data: bytes, *, content_type: str, cache_control: str | None = None) -> bool:
        writer = self.writer(key, content_type=content_type, cache_control=cache_control)
        try:
            writer.write(data)
            return writer.complete(hashlib.sha256(data).hexdigest(), len(data))
        except BaseException:
            writer.abort()
            raise

    def copy(self, source: str, dest: str) -> bool:
        """A hard link: objects are immutable, so sharing the inode is a copy."""
        info = self.head(source)
        if info is None:
            raise NotFound("no such object to copy", path=f"{self.url}/{source}")
        created = self._link(self.path(source), dest)
        if created:
            self._write_meta(dest, info.etag.strip('"'), info.size, info.content_type, info.cache_control)
        return created

    def delete(self, key: str) -> None:
        path = self.path(key)
        for target in (path, self._meta_path(key)):
            try:
                os.unlink(target)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StoreError(f"cannot delete object: {exc.strerror}", path=target) from None
        if is_staging_key(key):
            for directory in (os.path.dirname(path), os.path.dirname(self._meta_path(key))):
                with contextlib.suppress(OSError):
                    os.rmdir(directory)

    def list_keys(self, prefix: str) -> Iterator[str]:
        base = prefix.rstrip("/")
        top = self.path(base)
        for directory, _dirs, files in os.walk(top):
            relative = os.path.relpath(directory, self.root).replace(os.sep, "/")
            for name in files:
                yield f"{relative}/{name}"

    def writer(
        self,
        key: str,
        *,
        content_type: str,
        cache_control: str | None = None,
        part_size: int = 0,
        concurrency: int = 0,
    ) -> LocalWriter:
        return LocalWriter(self, check_key(key), content_type, cache_control)

    def _temp_file(self) -> tuple[int, str]:
        try:
            return tempfile.mkstemp(prefix="object.", suffix=".tmp", dir=self._tmp)
        except OSError as exc:
            raise StoreError(f"cannot create a temporary file: {exc.strerror}", path=self._tmp) from None

    def _link(self, temp_path: str, key: str) -> bool:
        """Create `key` as a new name of `temp_path` unless it exists (atomic, never replaces)."""
        target = self.path(key)
        directory = os.path.dirname(target)
        try:
            os.makedirs(directory, exist_ok=True)
            os.link(temp_path, target)
        except FileExistsError:
            return False
        except OSError as exc:
            raise StoreError(f"cannot create object: {exc.strerror}", path=target) from None
        fsync_directory(directory)
        return True

    def _read_meta(self, key: str) -> dict[str, object] | None:
        try:
            with open(self._meta_path(key), encoding="utf-8") as handle:
                meta = json.load(handle)
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) and isinstance(meta.get("sha256"), str) else None

    def _rebuild_meta(self, key: str, path: str) -> dict[str, object]:
        from fastpack.hashing import BundleDigest

        digest = BundleDigest.from_file(path)
        cache_control = IMMUTABLE if key.startswith(CANONICAL_PREFIX) else None
        return self._write_meta(key, digest.sha256, digest.size, _default_content_type(key), cache_control)

    def _write_meta(
        self, key: str, sha256: str, size: int, content_type: str | None, cache_control: str | None
    ) -> dict[str, object]:
        meta: dict[str, object] = {
            "sha256": sha256,
            "size": size,
            "content_type": content_type,
            "cache_control": cache_control,
        }
        path = self._meta_path(key)
        with contextlib.suppress(OSError):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix="meta.", suffix=".tmp", dir=self._tmp)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(meta, handle)
            os.replace(temp, path)
        return meta


class LocalWriter:
    """The local half of the tee: a temp file (made at the first byte) linked into place, no-replace."""

    def __init__(self, store: LocalStore, key: str, content_type: str, cache_control: str | None) -> None:
        self.store = store
        self.key = key
        self.content_type = content_type
        self.cache_control = cache_control
        self.temp_path: str | None = None
        self._file: Any = None

    def _open(self) -> Any:
        if self._file is None:
            fd, self.temp_path = self.store._temp_file()
            self._file = os.fdopen(fd, "wb", buffering=0)
        return self._file

    def write(self, data: _BUFFERLIKE) -> None:
        try:
            self._open().write(data)
        except OSError as exc:
            raise StoreError(f"cannot write object: {exc.strerror}", path=self.store.path(self.key)) from None

    def complete(self, sha256: str, size: int) -> bool:
        handle = self._open()
        try:
            os.fchmod(handle.fileno(), 0o644)
            os.fsync(handle.fileno())
        except OSError as exc:
            raise StoreError(f"cannot write object: {exc.strerror}", path=self.store.path(self.key)) from None
        finally:
            handle.close()
        assert self.temp_path is not None
        created = self.store._link(self.temp_path, self.key)
        if created:
            self.store._write_meta(self.key, sha256, size, self.content_type, self.cache_control)
        self._remove_temp()
        return created

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
        self._remove_temp()

    def _remove_temp(self) -> None:
        if self.temp_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temp_path)
            self.temp_path = None


class LocalReader:
    """Chunks of one object file (optionally an inclusive byte range)."""

    def __init__(self, path: str, info: ObjectInfo, byte_range: tuple[int, int] | None) -> None:
        self.info = info
        self.path = path
        start, end = byte_range if byte_range is not None else (0, info.size - 1)
        if start < 0 or end < start - 1 or (info.size and start >= info.size):
            raise StoreError(f"byte range {start}-{end} not satisfiable for {info.size} bytes", path=path)
        self._start = start
        self._remaining = min(end, info.size - 1) - start + 1
        try:
            self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()/iteration end
        except OSError as exc:
            raise StoreError(f"cannot read object: {exc.strerror}", path=path) from None

    def __iter__(self) -> Iterator[bytes]:
        try:
            self._file.seek(self._start)
            while self._remaining > 0:
                chunk = self._file.read(min(READ_CHUNK, self._remaining))
                if not chunk:
                    raise StoreError("object shrank while being read", path=self.path)
                self._remaining -= len(chunk)
                yield chunk
        finally:
            self.close()

    def read(self) -> bytes:
        return b"".join(self)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> LocalReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
