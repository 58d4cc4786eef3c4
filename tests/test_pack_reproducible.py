"""SPEC §2: the bundle hash depends only on the tree's content, never on how or where it was packed."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastpack.pack import pack
from helpers_tree import build_tree, gnu_tar_available, gnu_tar_stream, trees

PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _pack(src: Path, out: Path, **options: object) -> str:
    return pack(src, out, validate=False, **options).sha256  # type: ignore[arg-type]


@PROPERTY
@given(
    nodes=trees(),
    seed=st.integers(0, 2**16),
    threads=st.sampled_from([1, 2, 4]),
    chunk=st.sampled_from([512, 4096, 65536, 1 << 20]),
)
def test_hash_independent_of_threads_chunks_order_and_timestamps(nodes, seed, threads, chunk) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base, other = Path(tmp, "a"), Path(tmp, "b")
        base.mkdir()
        other.mkdir()
        build_tree(base, nodes, seed=0)
        build_tree(other, nodes, seed=seed + 1, mtime_jitter=True)
        reference = _pack(base, Path(tmp, "ref.tar.zst"), threads=1)
        assert _pack(other, Path(tmp, "x.tar.zst"), threads=threads, chunk_size=chunk) == reference
        assert _pack(base, Path(tmp, "again.tar.zst"), threads=threads) == reference


@PROPERTY
@given(nodes=trees(), umask=st.sampled_from([0o000, 0o022, 0o027, 0o077]))
def test_hash_independent_of_umask(nodes, umask) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base, other = Path(tmp, "a"), Path(tmp, "b")
        base.mkdir()
        other.mkdir()
        build_tree(base, nodes)
        old = os.umask(umask)
        try:
            build_tree(other, nodes, seed=7)
            for directory, dirnames, filenames in os.walk(other):
                for name in dirnames + filenames:
                    path = os.path.join(directory, name)
                    if not os.path.islink(path):
                        os.chmod(path, os.stat(path).st_mode & 0o777 & ~umask)
            result = _pack(other, Path(tmp, "x.tar.zst"))
        finally:
            os.umask(old)
        assert result == _pack(base, Path(tmp, "ref.tar.zst"))


@pytest.mark.skipif(os.geteuid() != 0, reason="changing ownership needs root")
@PROPERTY
@given(nodes=trees(), uid=st.integers(1, 60000), gid=st.integers(1, 60000))
def test_hash_independent_of_ownership(nodes, uid, gid) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base, other = Path(tmp, "a"), Path(tmp, "b")
        base.mkdir()
        other.mkdir()
        build_tree(base, nodes)
        build_tree(other, nodes)
        for directory, dirnames, filenames in os.walk(other):
            for name in dirnames + filenames:
                os.chown(os.path.join(directory, name), uid, gid, follow_symlinks=False)
        assert _pack(other, Path(tmp, "x.tar.zst")) == _pack(base, Path(tmp, "ref.tar.zst"))


@pytest.mark.skipif(not gnu_tar_available(), reason="GNU tar not installed")
@PROPERTY
@given(nodes=trees(), mtime=st.sampled_from([0, 1, 1234567890, 8**11 - 1]))
def test_tar_stream_is_byte_identical_to_gnu_tar(nodes, mtime) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "src")
        src.mkdir()
        build_tree(src, nodes, mtime_jitter=True)
        out = Path(tmp, "out.tar.zst")
        pack(src, out, validate=False, mtime=mtime)
        ours = zstandard.ZstdDecompressor().decompressobj().decompress(out.read_bytes())
        assert ours == gnu_tar_stream(src, mtime)


def test_source_date_epoch_sets_member_mtime(tmp_path, monkeypatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    from_env = pack(src, tmp_path / "a.tar.zst", validate=False)
    explicit = pack(src, tmp_path / "b.tar.zst", validate=False, mtime="@1700000000")
    overridden = pack(src, tmp_path / "c.tar.zst", validate=False, mtime=0)
    assert from_env.sha256 == explicit.sha256 != overridden.sha256
    listing = subprocess.run(
        ["tar", "--zstd", "-tvf", str(tmp_path / "a.tar.zst"), "--full-time", "--utc"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "2023-11-14 22:13:20" in listing
