"""pytest-benchmark suites: pack (both backends), the tar stream alone, and the SHA-256 hash tee.

Not part of the test run (`testpaths = ["tests"]`); run explicitly:

    pytest benches/test_bench_pack.py [--benchmark-json FILE]

Corpora are the `--quick` ones of benches.corpus, generated once under
$FASTPACK_BENCH_WORKDIR (default /tmp/fastpack-bench).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benches.corpus import DEFAULT_WORKDIR, ensure
from fastpack.backend import native_available, open_tar_source, scan_tree
from fastpack.pack import pack
from fastpack.sinks import FanOut

WORKDIR = os.environ.get("FASTPACK_BENCH_WORKDIR", DEFAULT_WORKDIR)
BACKENDS = ["native", "python"] if native_available() else ["python"]


@pytest.fixture(scope="module", params=["extension", "tiny"])
def corpus(request: pytest.FixtureRequest) -> str:
    return ensure(request.param, WORKDIR, quick=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pack(benchmark, corpus: str, backend: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "bundle.tar.zst"
    result = benchmark(pack, corpus, out, validate=False, backend=backend)
    benchmark.extra_info["tar_bytes"] = result.tar_size
    benchmark.extra_info["sha256"] = result.sha256


@pytest.mark.parametrize("backend", BACKENDS)
def test_tar_stream(benchmark, corpus: str, backend: str) -> None:  # type: ignore[no-untyped-def]
    """Scan + tar stream into a reused buffer, no compression: the part the native code replaces."""
    buffer = bytearray(1 << 20)

    def stream() -> int:
        source = open_tar_source(scan_tree(corpus, backend=backend), 0, backend)
        total = 0
        while count := source.readinto(buffer):
            total += count
        source.close()
        return total

    benchmark.extra_info["tar_bytes"] = benchmark(stream)


class _NullSink:
    def write(self, data: object) -> None:
        pass

    def commit(self, sha256: str, size: int) -> None:
        pass

    def abort(self) -> None:
        pass


@pytest.mark.parametrize("chunk", [64 << 10, 1 << 20])
def test_hash_tee(benchmark, chunk: int) -> None:  # type: ignore[no-untyped-def]
    """FanOut: one SHA-256 and the sinks fed from the same memoryviews, 64 MiB per round."""
    data = memoryview(os.urandom(chunk))
    rounds = (64 << 20) // chunk

    def tee() -> str:
        fanout = FanOut([_NullSink(), _NullSink()])
        for _ in range(rounds):
            fanout.write(data)
        return fanout.commit()

    benchmark(tee)
    benchmark.extra_info["bytes"] = rounds * chunk
