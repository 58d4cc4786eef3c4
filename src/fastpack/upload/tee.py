"""Upload while hashing, in one pass (SPEC §5.1).

`UploadSink` is a `fastpack.sinks.Sink`: `FanOut` feeds it the same chunks it
hashes, so `pack()` can upload while it writes the bundle (`extra_sinks`). The
sink refuses bytes beyond the declared size or the cap as they arrive, and
completes the object only if the final size and SHA-256 are the declared ones;
anything else — an error, an exception, Ctrl-C — aborts, leaving nothing at
the key. On S3 the bytes go out as multipart parts on a bounded pool
(`MultipartWriter`), or as one PutObject when they fit in a single part.
"""

from __future__ import annotations

import base64
import os
import queue
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from fastpack.errors import HashMismatch, SizeMismatch, TooLarge, UsageError
from fastpack.hashing import BundleDigest, file_chunks
from fastpack.sinks import FanOut, Sink
from fastpack.store import (
    _BUFFERLIKE,
    BUNDLE_CONTENT_TYPE,
    DEFAULT_CONCURRENCY,
    DEFAULT_PART_SIZE,
    IMMUTABLE,
    Store,
    canonical_key,
    new_staging_key,
)
from fastpack.upload.executor import BoundedExecutor
from fastpack.upload.parts import MIN_PART_SIZE, PartBuffer

if TYPE_CHECKING:
    from fastpack.store.s3 import S3Store


def check_upload_options(part_size: int, concurrency: int) -> None:
    if part_size < MIN_PART_SIZE:
        raise UsageError(f"part size must be at least {MIN_PART_SIZE} bytes (the S3 minimum), got {part_size}")
    if concurrency < 1:
        raise UsageError(f"concurrency must be at least 1, got {concurrency}")


class MultipartWriter:
    """S3 object writer: parts on a bounded pool, or one PutObject if the bytes fit in one part."""

    def __init__(
        self,
        store: S3Store,
        key: str,
        *,
        content_type: str,
        cache_control: str | None,
        part_size: int = DEFAULT_PART_SIZE,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        check_upload_options(part_size, concurrency)
        self.store = store
        self.key = key
        self.content_type = content_type
        self.cache_control = cache_control
        self.concurrency = concurrency
        self.upload_id: str | None = None
        self.part_size = part_size
        self._spare: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._parts = PartBuffer(part_size, self._buffer)
        self._executor: BoundedExecutor | None = None
        self._count = 0
        self._finished = False

    def _buffer(self) -> bytearray:
        """A part buffer whose upload has finished, else a new one: at most `concurrency` + 1 exist."""
        try:
            return self._spare.get_nowait()
        except queue.Empty:
            return bytearray(self.part_size)

    def _upload(self, number: int, part: bytearray) -> dict[str, Any]:
        assert self.upload_id is not None
        try:
            return self.store.upload_part(self.key, self.upload_id, number, part)
        finally:
            if len(part) == self.part_size:
                self._spare.put(part)

    def write(self, data: _BUFFERLIKE) -> None:
        for part in self._parts.feed(data):
            self._submit(part)

    def _submit(self, part: bytearray) -> None:
        if self._executor is None:
            self.upload_id = self.store.create_multipart(
                self.key, content_type=self.content_type, cache_control=self.cache_control
            )
            self._executor = BoundedExecutor(self.concurrency)
        self._count += 1
        self._executor.submit(self._upload, self._count, part)

    def complete(self, sha256: str, size: int) -> bool:
        rest = self._parts.rest()
        if self._executor is None:
            checksum = base64.b64encode(bytes.fromhex(sha256)).decode("ascii")
            created = self.store.put_object(
                self.key, rest, checksum, content_type=self.content_type, cache_control=self.cache_control
            )
        else:
            if rest:
                self._submit(rest)
            parts = self._executor.results()
            self._executor.shutdown()
            assert self.upload_id is not None
            created = self.store.complete_multipart(self.key, self.upload_id, parts)
        self._finished = True
        return created

    def abort(self) -> None:
        if self._finished:
            return
        self._finished = True
        if self._executor is not None:
            self._executor.cancel()
        if self.upload_id is not None:
            self.store.abort_multipart(self.key, self.upload_id)


class UploadSink:
    """Sink that turns the bytes into the object at `key`, only if they are what was declared."""

    def __init__(
        self,
        store: Store,
        key: str,
        *,
        declared_sha256: str | None = None,
        declared_size: int | None = None,
        max_bytes: int | None = None,
        content_type: str = BUNDLE_CONTENT_TYPE,
        cache_control: str | None = IMMUTABLE,
        part_size: int = DEFAULT_PART_SIZE,
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: Any = None,
    ) -> None:
        check_upload_options(part_size, concurrency)
        self.store = store
        self.key = key
        self.declared_sha256 = declared_sha256
        self.declared_size = declared_size
        self.max_bytes = max_bytes
        self.size = 0
        self.created: bool | None = None
        self.progress = progress
        self._writer = store.writer(
            key, content_type=content_type, cache_control=cache_control, part_size=part_size, concurrency=concurrency
        )
        self._done = False

    def write(self, data: _BUFFERLIKE) -> None:
        count = memoryview(data).nbytes
        if self.declared_size is not None and self.size + count > self.declared_size:
            raise TooLarge(f"more bytes than the declared size of {self.declared_size}", path=self.key)
        if self.max_bytes is not None and self.size + count > self.max_bytes:
            raise TooLarge(f"more bytes than the limit of {self.max_bytes}", path=self.key)
        self.size += count
        self._writer.write(data)
        if self.progress is not None:
            self.progress.update(count)

    def commit(self, sha256: str, size: int) -> None:
        try:
            if self.declared_size is not None and size != self.declared_size:
                raise SizeMismatch(f"got {size} bytes, declared {self.declared_size}", path=self.key)
            if self.declared_sha256 is not None and sha256 != self.declared_sha256:
                raise HashMismatch(f"content hashes to {sha256}, declared {self.declared_sha256}", path=self.key)
            self.created = self._writer.complete(sha256, size)
        except BaseException:
            self.abort()
            raise
        self._done = True

    def abort(self) -> None:
        if not self._done:
            self._done = True
            self._writer.abort()


@dataclass(frozen=True)
class UploadResult:
    key: str
    sha256: str
    size: int
    uploaded: bool

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def tee(chunks: Iterable[_BUFFERLIKE], sinks: list[Sink]) -> BundleDigest:
    """One pass: every chunk to SHA-256 and each sink; all sinks committed with the digest, or all aborted."""
    with FanOut(sinks) as fanout:
        for chunk in chunks:
            fanout.write(chunk)
        fanout.commit()
    return fanout.bundle_digest()


def stage_stream(
    chunks: Iterable[_BUFFERLIKE],
    store: Store,
    *,
    size: int | None = None,
    declared_hash: str | None = None,
    max_bytes: int | None = None,
    part_size: int = DEFAULT_PART_SIZE,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Any = None,
) -> tuple[UploadResult, BundleDigest]:
    """Bytes of unknown or untrusted content to a fresh staging key (nothing kept if they are not as declared)."""
    sink = UploadSink(
        store,
        new_staging_key(),
        declared_sha256=declared_hash,
        declared_size=size,
        max_bytes=max_bytes,
        part_size=part_size,
        concurrency=concurrency,
        progress=progress,
    )
    digest = tee(chunks, [sink])
    return UploadResult(sink.key, digest.sha256, digest.size, True), digest


def promote(store: Store, staging_key: str, sha256: str, size: int) -> UploadResult:
    """Server-side copy of a verified staging object to its canonical key, then drop the staging object."""
    key = canonical_key(sha256)
    try:
        created = store.head(key) is None and store.copy(staging_key, key)
    finally:
        store.delete(staging_key)
    return UploadResult(key, sha256, size, created)


def upload_stream(
    chunks: Iterable[_BUFFERLIKE],
    store: Store,
    *,
    declared_hash: str | None = None,
    size: int | None = None,
    max_bytes: int | None = None,
    part_size: int = DEFAULT_PART_SIZE,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Any = None,
) -> tuple[UploadResult, BundleDigest]:
    """Bytes to their canonical key: directly when the hash is declared, else through a staging key."""
    if declared_hash is None:
        staged, digest = stage_stream(
            chunks,
            store,
            size=size,
            max_bytes=max_bytes,
            part_size=part_size,
            concurrency=concurrency,
            progress=progress,
        )
        return promote(store, staged.key, digest.sha256, digest.size), digest
    sink = UploadSink(
        store,
        canonical_key(declared_hash),
        declared_sha256=declared_hash,
        declared_size=size,
        max_bytes=max_bytes,
        part_size=part_size,
        concurrency=concurrency,
        progress=progress,
    )
    digest = tee(chunks, [sink])
    return UploadResult(sink.key, digest.sha256, digest.size, bool(sink.created)), digest


def upload_file(
    path: str | os.PathLike[str],
    store: Store,
    *,
    declared_hash: str | None = None,
    part_size: int = DEFAULT_PART_SIZE,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Any = None,
) -> tuple[UploadResult, BundleDigest]:
    """One read of the file; when the declared hash is already stored, the read only checks the hash."""
    try:
        size = os.path.getsize(path)
    except OSError:
        size = None
    if declared_hash is not None and store.head(canonical_key(declared_hash)) is not None:
        digest = tee(file_chunks(path), [])
        if digest.sha256 != declared_hash:
            raise HashMismatch(f"file hashes to {digest.sha256}, declared {declared_hash}", path=os.fspath(path))
        return UploadResult(canonical_key(declared_hash), digest.sha256, digest.size, False), digest
    return upload_stream(
        file_chunks(path),
        store,
        declared_hash=declared_hash,
        size=size,
        part_size=part_size,
        concurrency=concurrency,
        progress=progress,
    )
