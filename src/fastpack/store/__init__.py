"""Where published objects live: one small interface, an S3 and a local-directory implementation.

Both keep the SPEC §5 key layout and its immutability rule: objects are only
ever created, never replaced (`If-None-Match: *` on S3, a no-replace link
locally), so a racing writer learns that the key already exists instead of
overwriting it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from fastpack.errors import UsageError

BUNDLE_NAME = "bundle.tar.zst"
CANONICAL_PREFIX = "sha256/"
STAGING_PREFIX = "sha256/_staging/"
INDEX_PREFIX = "extensions/"
BUNDLE_CONTENT_TYPE = "application/zstd"
IMMUTABLE = "public, max-age=31536000, immutable"
DEFAULT_PART_SIZE = 16 << 20
DEFAULT_CONCURRENCY = 4

_BUFFERLIKE = bytes | bytearray | memoryview


@dataclass(frozen=True)
class ObjectInfo:
    """What HEAD says about an object; `etag` is a quoted strong validator."""

    key: str
    size: int
    etag: str
    content_type: str | None = None
    cache_control: str | None = None


class ObjectReader(Protocol):
    """A streamed GET: iterate for chunks; `info` describes the whole object."""

    info: ObjectInfo

    def __iter__(self) -> Iterator[bytes]: ...

    def read(self) -> bytes: ...

    def close(self) -> None: ...

    def __enter__(self) -> ObjectReader: ...

    def __exit__(self, *exc: object) -> None: ...


class ObjectWriter(Protocol):
    """Bytes on their way to one key; nothing is visible there until `complete`."""

    def write(self, data: _BUFFERLIKE) -> None: ...

    def complete(self, sha256: str, size: int) -> bool:
        """Make the object visible if the key is free; False if it already existed."""
        ...

    def abort(self) -> None: ...


class Store(Protocol):
    url: str

    def head(self, key: str) -> ObjectInfo | None: ...

    def get(self, key: str, *, byte_range: tuple[int, int] | None = None) -> ObjectReader:
        """Stream an object (NotFound if absent); `byte_range` is inclusive, like HTTP Range."""
        ...

    def put(self, key: str, data: bytes, *, content_type: str, cache_control: str | None = None) -> bool:
        """Create a small object; False (and nothing changed) if the key already exists."""
        ...

    def copy(self, source: str, dest: str) -> bool:
        """Server-side copy keeping content type and cache control; False if `dest` already exists."""
        ...

    def delete(self, key: str) -> None: ...

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Keys under `prefix` (a folder-like prefix ending at a '/' boundary), in no guaranteed order."""
        ...

    def writer(
        self, key: str, *, content_type: str, cache_control: str | None, part_size: int, concurrency: int
    ) -> ObjectWriter: ...


def check_key(key: str) -> str:
    """Keys are relative, '/'-separated, without '..', '.' or empty segments (no escaping a local root)."""
    if not isinstance(key, str) or not key:
        raise UsageError(f"invalid storage key {key!r}: empty")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise UsageError(f"invalid storage key {key!r}: must be relative, '/'-separated, without NUL")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise UsageError(f"invalid storage key {key!r}: empty, '.' or '..' segment")
    if key.startswith("."):
        raise UsageError(f"invalid storage key {key!r}: top-level names starting with '.' are reserved")
    return key


def canonical_key(sha256: str, name: str = BUNDLE_NAME) -> str:
    return f"{CANONICAL_PREFIX}{sha256}/{name}"


def new_staging_key() -> str:
    return f"{STAGING_PREFIX}{uuid.uuid4().hex}/{BUNDLE_NAME}"


def is_staging_key(key: str) -> bool:
    check_key(key)
    parts = key.split("/")
    return key.startswith(STAGING_PREFIX) and len(parts) == 4 and parts[3] == BUNDLE_NAME


def default_store_dir(environ: Mapping[str, str]) -> str:
    """FASTPACK_STORE, else $XDG_DATA_HOME/fastpack/store, else ~/.local/share/fastpack/store."""
    if environ.get("FASTPACK_STORE"):
        return environ["FASTPACK_STORE"]
    data_home = environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data_home, "fastpack", "store")


def s3_configured(environ: Mapping[str, str]) -> bool:
    return any(environ.get(name) for name in ("STORAGE_S3_BUCKET", "STORAGE_S3_BUNDLE_BUCKET", "STORAGE_S3_ENDPOINT"))


def store_from_env(environ: Mapping[str, str] | None = None) -> Store:
    """The S3 store when STORAGE_S3_* names a bucket or endpoint, else the local store (SPEC §5 configuration)."""
    environ = os.environ if environ is None else environ
    if s3_configured(environ):
        from fastpack.store.s3 import S3Store

        return S3Store.from_env(environ)
    from fastpack.store.local import LocalStore

    return LocalStore(default_store_dir(environ))


def store_from_url(url: str, environ: Mapping[str, str] | None = None) -> Store:
    """`s3://bucket[/prefix]` (endpoint and credentials from STORAGE_S3_*) or a local directory."""
    environ = os.environ if environ is None else environ
    if url.startswith("s3://"):
        from fastpack.store.s3 import S3Store

        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not bucket:
            raise UsageError(f"expected s3://bucket[/prefix], got {url!r}")
        return S3Store.from_env(environ, bucket=bucket, prefix=prefix)
    if "://" in url:
        raise UsageError(f"unsupported store URL {url!r} (expected s3://bucket[/prefix] or a directory)")
    from fastpack.store.local import LocalStore

    return LocalStore(url)
