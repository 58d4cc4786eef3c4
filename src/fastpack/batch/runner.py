"""Run a batch: read manifests, then build every extension on a bounded thread pool.

Threads, not processes (measured with benches/bench_batch.py --executors: the
same CPU time and, within noise, the same wall time): the heavy work (zstd,
BLAKE3, SHA-256, file I/O, the native tar reader) runs without the GIL, and
threads share one import, the progress display and no pickling.
"""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from fastpack.batch.discover import Extension
from fastpack.batch.job import ExtensionManifest, ExtensionResult, JobContext, build_extension, read_extension_manifest
from fastpack.batch.progress import BatchProgress
from fastpack.errors import FastpackError, ManifestError, UsageError


@dataclass(frozen=True)
class BatchSummary:
    extensions: int
    packed: int
    cached: int
    fetched: int
    failed: int
    files_hashed: int
    files_reused: int
    jobs: int
    threads: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.__dict__.copy()}


def plan_workers(jobs: int | None, pending: int, cores: int | None = None) -> tuple[int, int]:
    """(pool size, zstd threads per pack).

    One pack keeps about 0.6-0.8 of a core busy (measured: ~20% of its wall time
    is fsync, the rest of the gap is reads and pipeline stalls), so the default pool
    is 1.5 workers per core with one zstd thread each; with fewer extensions than
    that, each pack gets a share of the cores as zstd threads instead.
    """
    cores = cores or os.cpu_count() or 1
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")
    workers = max(1, min(jobs or (3 * cores + 1) // 2, pending or 1))
    return workers, max(1, cores // workers)


def _read_manifests(
    extensions: Sequence[Extension],
) -> tuple[list[tuple[Extension, ExtensionManifest]], list[ExtensionResult]]:
    """Valid manifests, and failures (invalid manifests; name@version declared by more than one extension)."""
    ready: list[tuple[Extension, ExtensionManifest]] = []
    failed: list[ExtensionResult] = []
    for extension in extensions:
        try:
            ready.append((extension, read_extension_manifest(extension)))
        except FastpackError as exc:
            result = ExtensionResult(extension.key, extension.path)
            result.fail(exc)
            failed.append(result)
    owners: defaultdict[tuple[str, str], list[Extension]] = defaultdict(list)
    for extension, manifest in ready:
        owners[(manifest.name, manifest.version)].append(extension)
    unique = []
    for extension, manifest in ready:
        clash = owners[(manifest.name, manifest.version)]
        if len(clash) == 1:
            unique.append((extension, manifest))
            continue
        others = ", ".join(other.display for other in clash if other is not extension)
        result = ExtensionResult(extension.key, extension.path, extension=manifest.name, version=manifest.version)
        result.fail(
            ManifestError(
                f"{manifest.name}@{manifest.version} is also declared by {others}; each needs its own name or version",
                path=os.path.join(extension.display, "manifest.json"),
            )
        )
        failed.append(result)
    return unique, failed


def run_batch(
    extensions: Sequence[Extension],
    make_context: Callable[[int], JobContext],
    *,
    jobs: int | None = None,
    on_result: Callable[[ExtensionResult], None] = lambda result: None,
    progress: BatchProgress | None = None,
) -> BatchSummary:
    """Build every extension; `make_context(threads)` gives the shared job context. Never raises for one extension."""
    started = time.perf_counter()
    ready, failed = _read_manifests(extensions)
    workers, threads = plan_workers(jobs, len(ready))
    ctx = make_context(threads)
    counts: Counter[str] = Counter()
    hashed = reused = 0

    def report(result: ExtensionResult) -> None:
        nonlocal hashed, reused
        counts[result.status] += 1
        hashed += result.files_hashed
        reused += result.files_reused
        on_result(result)

    for result in failed:
        report(result)
    status = progress.status if progress is not None else (lambda text: None)
    with ThreadPoolExecutor(workers, thread_name_prefix="fastpack-batch") as pool:
        futures = [
            pool.submit(build_extension, extension, manifest, ctx, _labelled(status, manifest))
            for extension, manifest in ready
        ]
        try:
            for future in as_completed(futures):
                report(future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return BatchSummary(
        extensions=len(extensions),
        packed=counts["packed"],
        cached=counts["cached"],
        fetched=counts["fetched"],
        failed=counts["failed"],
        files_hashed=hashed,
        files_reused=reused,
        jobs=workers,
        threads=threads,
        seconds=round(time.perf_counter() - started, 6),
    )


def _labelled(status: Callable[[str], None], manifest: ExtensionManifest) -> Callable[[str], None]:
    label = f"{manifest.name}@{manifest.version}"
    return lambda phase: status(f"{phase} {label}")
