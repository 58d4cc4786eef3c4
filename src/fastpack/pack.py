"""`pack`: a directory in, a reproducible `bundle.tar.zst` (+ sidecar) out, in one pass.

Scan → tar stream (native or Python) → BLAKE3 of the tar → zstd (multithreaded,
checksum, pledged size) → SHA-256 + sinks (the bundle file, optionally uploads).
Memory is a few fixed buffers plus zstd's window, whatever the input size.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from fastpack.backend import TarSource
from fastpack.errors import UsageError
from fastpack.sinks import BundleFileSink, FanOut, Sink
from fastpack.tarformat import OCTAL11_LIMIT
from fastpack.tree import Entry

FORMAT = "fastpack-bundle-v1"
DEFAULT_LEVEL = 3
DEFAULT_CHUNK_SIZE = 1 << 20
LEVEL_RANGE = (-7, 22)


@dataclass(frozen=True)
class PackResult:
    path: str
    sha256: str
    size: int
    sidecar: str
    entries: int
    tar_size: int
    tar_blake3: str
    level: int
    long: int | None
    threads: int
    format: str
    zstd: str
    backend: str
    seconds: float

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def resolve_mtime(mtime: int | str | None) -> int:
    """--mtime beats SOURCE_DATE_EPOCH beats 0; accepts seconds, @seconds or ISO 8601."""
    source = "--mtime"
    if mtime is None:
        mtime = os.environ.get("SOURCE_DATE_EPOCH")
        source = "SOURCE_DATE_EPOCH"
        if mtime is None or mtime == "":
            return 0
    if isinstance(mtime, str):
        text = mtime.strip().removeprefix("@")
        try:
            value = int(text)
        except ValueError:
            try:
                value = int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
            except ValueError:
                raise UsageError(
                    f"{source} must be seconds since the epoch or an ISO 8601 date, got {mtime!r}"
                ) from None
    else:
        value = int(mtime)
    if not 0 <= value < OCTAL11_LIMIT:
        raise UsageError(f"{source} must be between 0 and {OCTAL11_LIMIT - 1}, got {value}")
    return value


def resolve_threads(threads: int | None) -> int:
    if threads is None:
        return max(1, os.cpu_count() or 1)
    if threads < 1:
        raise UsageError(f"--threads must be at least 1 (zstd's single-threaded mode changes the bytes), got {threads}")
    return threads


def check_level(level: int) -> None:
    if not LEVEL_RANGE[0] <= level <= LEVEL_RANGE[1] or level == 0:
        raise UsageError(f"--level must be between {LEVEL_RANGE[0]} and {LEVEL_RANGE[1]} and not 0, got {level}")


def make_compressor(level: int, threads: int, long_window: int | None):  # type: ignore[no-untyped-def]
    import zstandard

    params = zstandard.ZstdCompressionParameters.from_level(
        level,
        threads=threads,
        write_checksum=1,
        write_content_size=1,
        **({"window_log": long_window, "enable_ldm": 1} if long_window else {}),
    )
    return zstandard.ZstdCompressor(compression_params=params)


def output_exclusions(src: str, out: str) -> list[str]:
    """Member paths of OUT and its sidecar when OUT lies inside SRC: a bundle never contains itself."""
    from fastpack.sidecar import sidecar_path

    root = os.path.realpath(src)
    excluded = []
    for path in (out, sidecar_path(out)):
        real = os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(path))), os.path.basename(path))
        relative = os.path.relpath(real, root)
        if not relative.startswith(os.pardir):
            excluded.append(relative.replace(os.sep, "/"))
    return excluded


class _ReadAhead:
    """Fills the next buffers from the tar source in a thread while the caller hashes and compresses.

    Both backends release the GIL while reading, so reading overlaps compression
    and hashing; memory is `depth` buffers whatever the input size.
    """

    def __init__(self, source: TarSource, chunk_size: int, depth: int = 3) -> None:
        self._source = source
        self._free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
        self._ready: queue.SimpleQueue[tuple[bytearray, int] | BaseException] = queue.SimpleQueue()
        for _ in range(depth):
            self._free.put(bytearray(chunk_size))
        self._thread = threading.Thread(target=self._fill, name="fastpack-tar-reader", daemon=True)
        self._thread.start()

    def _fill(self) -> None:
        try:
            while (buffer := self._free.get()) is not None:
                count = self._source.readinto(buffer)
                self._ready.put((buffer, count))
                if not count:
                    return
        except BaseException as exc:  # handed to the consuming thread, which raises it
            self._ready.put(exc)

    def __iter__(self) -> Iterator[memoryview]:
        while True:
            item = self._ready.get()
            if isinstance(item, BaseException):
                raise item
            buffer, count = item
            if not count:
                return
            yield memoryview(buffer)[:count]
            self._free.put(buffer)

    def close(self) -> None:
        """Stop the reader thread (it finishes its current fill) and close the source."""
        self._free.put(None)
        self._thread.join()
        self._source.close()


def stream_bundle(
    entries: Sequence[Entry],
    fanout: FanOut,
    *,
    total: int,
    mtime: int,
    level: int,
    threads: int,
    long_window: int | None,
    backend: str,
    chunk_size: int,
    progress: object | None = None,
) -> str:
    """Write the compressed bundle of `entries` (a `total`-byte tar) into `fanout`; returns the tar's BLAKE3."""
    import blake3
    import zstandard

    from fastpack.backend import open_tar_source

    # stream_writer hands compressed blocks straight to the fan-out (no per-call result
    # bytes to grow, unlike compressobj); the frame is identical.
    compressor = make_compressor(level, threads, long_window).stream_writer(fanout, size=total, closefd=False)
    tar_hash = blake3.blake3()
    reader = _ReadAhead(open_tar_source(entries, mtime, backend), chunk_size)
    produced = 0
    try:
        for chunk in reader:
            tar_hash.update(chunk)
            compressor.write(chunk)
            produced += len(chunk)
            if progress is not None:
                progress.update(len(chunk))  # type: ignore[attr-defined]
        compressor.flush(zstandard.FLUSH_FRAME)
    finally:
        reader.close()
    if produced != total:
        raise AssertionError(f"tar stream is {produced} bytes, pledged {total}")
    return tar_hash.hexdigest()


def pack(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    level: int = DEFAULT_LEVEL,
    threads: int | None = None,
    mtime: int | str | None = None,
    long_window: int | None = None,
    follow_symlinks: bool = False,
    validate: bool = True,
    backend: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    extra_sinks: Sequence[Sink] = (),
    quiet: bool = True,
) -> PackResult:
    """Pack the directory `src` into the bundle `out` (and its sidecar); see SPEC §2."""
    from fastpack.backend import backend_name, scan_tree, stream_size, zstd_version
    from fastpack.progress import Progress

    started = time.perf_counter()
    src, out = os.fspath(src), os.fspath(out)
    check_level(level)
    threads = resolve_threads(threads)
    member_mtime = resolve_mtime(mtime)
    backend = backend_name(backend)
    if chunk_size < 512:
        raise UsageError(f"chunk size must be at least 512 bytes, got {chunk_size}")
    exclude = output_exclusions(src, out)
    entries = scan_tree(src, follow_symlinks=follow_symlinks, exclude=exclude, backend=backend)
    if validate:
        from fastpack.manifest import check_tree

        check_tree(src, entries)
    total = stream_size(entries)
    file_sink = BundleFileSink(out)
    progress = Progress.for_terminal(f"packing {os.path.basename(out)}", total, quiet=quiet)
    with FanOut([file_sink, *extra_sinks]) as fanout:
        tar_blake3 = stream_bundle(
            entries,
            fanout,
            total=total,
            mtime=member_mtime,
            level=level,
            threads=threads,
            long_window=long_window,
            backend=backend,
            chunk_size=chunk_size,
            progress=progress,
        )
        digest = fanout.commit()
    progress.close()
    return PackResult(
        path=out,
        sha256=digest,
        size=fanout.size,
        sidecar=file_sink.sidecar,
        entries=len(entries),
        tar_size=total,
        tar_blake3=tar_blake3,
        level=level,
        long=long_window,
        threads=threads,
        format=FORMAT,
        zstd=zstd_version(),
        backend=backend,
        seconds=round(time.perf_counter() - started, 6),
    )
