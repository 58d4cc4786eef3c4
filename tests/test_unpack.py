"""`fastpack unpack`: faithful round trips, and every hostile bundle rejected with nothing written."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from fastpack.bundle import BundleLimits
from fastpack.cli import main
from fastpack.errors import BundleError, OutputError
from fastpack.pack import pack
from fastpack.unpack import unpack_bundle
from helpers_bundles import MALICIOUS_TARS, compress, end, member, valid_tar, write, zeros_bomb
from helpers_tree import build_tree, trees


def snapshot(root: Path) -> dict[str, tuple[str, bytes | str, bool]]:
    """Relative path → (kind, content or link target, executable) for everything under root."""
    result: dict[str, tuple[str, bytes | str, bool]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                result[rel] = ("symlink", os.readlink(path), False)
            elif path.is_dir():
                result[rel] = ("dir", b"", False)
            else:
                result[rel] = ("file", path.read_bytes(), bool(path.stat().st_mode & 0o111))
    return result


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def test_round_trip_example(tmp_path: Path, example_dist: Path) -> None:
    bundle = tmp_path / "bundle.tar.zst"
    pack(example_dist, bundle)
    result = unpack_bundle(str(bundle), str(tmp_path / "out"))
    assert snapshot(tmp_path / "out") == snapshot(example_dist)
    assert (result.files, result.directories, result.symlinks) == (5, 2, 0)
    assert listing(tmp_path) == ["bundle.sha256", "bundle.tar.zst", "out"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(nodes=trees())
def test_round_trip_generated_trees(tmp_path_factory: pytest.TempPathFactory, nodes: list) -> None:
    root = tmp_path_factory.mktemp("rt")
    src = root / "src"
    src.mkdir()
    build_tree(src, nodes)
    pack(src, root / "b.tar.zst", validate=False)
    unpack_bundle(str(root / "b.tar.zst"), str(root / "out"))
    assert snapshot(root / "out") == snapshot(src)  # hard links come back as independent files


def test_modes_are_normalized(tmp_path: Path) -> None:
    tar = end(
        member("d/", typeflag=b"5", mode=0o700)
        + member("d/run", b"#!/bin/sh\n", mode=0o4777)
        + member("d/data", b"x", mode=0o600)
    )
    bundle = write(tmp_path / "b.tar.zst", compress(tar))
    unpack_bundle(str(bundle), str(tmp_path / "out"))
    modes = {name: stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) for name in ("d", "d/run", "d/data")}
    assert modes == {"d": 0o755, "d/run": 0o755, "d/data": 0o644}


def test_into_existing_empty_directory_keeps_it(tmp_path: Path) -> None:
    bundle = write(tmp_path / "b.tar.zst", compress(valid_tar()))
    (tmp_path / "out").mkdir(mode=0o700)
    identity = (tmp_path / "out").stat().st_ino
    unpack_bundle(str(bundle), str(tmp_path / "out"))
    assert (tmp_path / "out" / "ui" / "index.html").read_bytes() == b"<html></html>"
    assert listing(tmp_path / "out") == ["dist", "manifest.json", "ui"]
    assert (tmp_path / "out").stat().st_ino == identity
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o700


def test_into_the_empty_working_directory(tmp_path: Path) -> None:
    bundle = write(tmp_path / "b.tar.zst", compress(valid_tar()))
    (tmp_path / "here").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "fastpack", "unpack", str(bundle), "."], cwd=tmp_path / "here", capture_output=True
    )
    assert result.returncode == 0, result.stderr
    assert listing(tmp_path / "here") == ["dist", "manifest.json", "ui"]


def test_rejected_bundle_leaves_existing_directory_empty(tmp_path: Path) -> None:
    bundle = write(tmp_path / "b.tar.zst", compress(member("ok", b"1") + MALICIOUS_TARS["fifo"][0]))
    (tmp_path / "out").mkdir()
    with pytest.raises(BundleError, match="FIFO"):
        unpack_bundle(str(bundle), str(tmp_path / "out"))
    assert listing(tmp_path / "out") == []
    assert listing(tmp_path) == ["b.tar.zst", "out"]


@pytest.mark.parametrize(
    ("prepare", "phrase"),
    [
        (
            lambda p: (p / "out").mkdir() or (p / "out" / "keep").write_text("mine"),
            "destination directory is not empty",
        ),
        (lambda p: (p / "out").write_text("a file"), "destination exists and is not a directory"),
        (lambda p: (p / "real").mkdir() or (p / "out").symlink_to("real"), "destination is a symlink"),
    ],
)
def test_bad_destination_left_untouched(tmp_path: Path, prepare, phrase: str) -> None:  # type: ignore[no-untyped-def]
    bundle = write(tmp_path / "b.tar.zst", compress(valid_tar()))
    prepare(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(OutputError, match=phrase):
        unpack_bundle(str(bundle), str(tmp_path / "out"))
    assert snapshot(tmp_path) == before


def test_missing_parent_directory(tmp_path: Path) -> None:
    bundle = write(tmp_path / "b.tar.zst", compress(valid_tar()))
    with pytest.raises(OutputError, match="parent directory does not exist"):
        unpack_bundle(str(bundle), str(tmp_path / "no" / "out"))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fastpack", *args], capture_output=True, text=True)


def assert_nothing_written(work: Path, bundle: Path) -> None:
    assert listing(work) == [bundle.name], "unpack left something next to DIR"
    assert listing(work.parent) == [work.name], "unpack wrote outside its parent"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A directory holding only the bundle, inside an otherwise empty directory (to see stray writes)."""
    path = tmp_path / "jail" / "work"
    path.mkdir(parents=True)
    return path


@pytest.mark.parametrize("case", sorted(MALICIOUS_TARS))
def test_cli_rejects_malicious_bundle_and_writes_nothing(work: Path, case: str) -> None:
    tar, phrase, member_name = MALICIOUS_TARS[case]
    # a harmless file first, so a partial extraction would be visible
    bundle = write(work / "evil.tar.zst", compress(member("first.txt", b"first") + tar))
    result = run_cli("unpack", str(bundle), str(work / "out"))
    assert result.returncode == 1
    expected = f"fastpack: error: {bundle}: " + (f"member {member_name}: " if member_name else "")
    assert result.stderr.startswith(expected), result.stderr
    assert phrase in result.stderr
    assert_nothing_written(work, bundle)


@pytest.mark.parametrize(
    ("mangle", "phrase"),
    [
        (lambda data: data[: len(data) // 2], "truncated zstd frame"),
        (lambda data: data[:-1] + bytes([data[-1] ^ 1]), "checksum"),
        (lambda data: data + b"\0", "unexpected data after the zstd frame"),
        (lambda data: b"", "empty file"),
        (lambda data: b"PK\x03\x04" + data, "not a zstd frame"),
    ],
    ids=["truncated", "bad-checksum", "trailing", "empty", "not-zstd"],
)
def test_cli_rejects_broken_zstd_and_writes_nothing(work: Path, mangle, phrase: str) -> None:  # type: ignore[no-untyped-def]
    bundle = write(work / "bad.tar.zst", mangle(compress(valid_tar())))
    result = run_cli("unpack", str(bundle), str(work / "out"))
    assert result.returncode == 1
    assert result.stderr.startswith(f"fastpack: error: {bundle}: ") and phrase in result.stderr
    assert_nothing_written(work, bundle)


def test_corrupted_middle_byte_writes_nothing(work: Path) -> None:
    data = bytearray(compress(valid_tar(member("big.txt", os.urandom(4000).hex().encode()))))
    data[len(data) // 2] ^= 0xFF
    bundle = write(work / "bad.tar.zst", bytes(data))
    with pytest.raises(BundleError):
        unpack_bundle(str(bundle), str(work / "out"))
    assert_nothing_written(work, bundle)


def test_zeros_bomb_rejected_without_writing(work: Path) -> None:
    bundle = zeros_bomb(work / "bomb.tar.zst")
    result = run_cli("unpack", str(bundle), str(work / "out"))
    assert result.returncode == 1
    assert "compression ratio exceeds the limit of 200" in result.stderr
    assert_nothing_written(work, bundle)


def test_limit_flags(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = write(work / "b.tar.zst", compress(valid_tar()))
    assert main(["unpack", str(bundle), str(work / "out"), "--max-entries", "4"]) == 1
    assert "more than 4 entries (limit)" in capsys.readouterr().err
    assert main(["unpack", str(bundle), str(work / "out"), "--max-size", "8K"]) == 1
    assert "more than the limit of 8192" in capsys.readouterr().err
    assert_nothing_written(work, bundle)
    assert main(["unpack", str(bundle), str(work / "out"), "--max-entries", "5", "--max-size", "1GiB", "--json"]) == 0
    assert '"entries": 5' in capsys.readouterr().out
    for flag, value, phrase in [
        ("--max-size", "lots", "expected a size such as"),
        ("--max-entries", "0", "must be at least 1"),
        ("--max-ratio", "x", "expected a number"),
    ]:
        with pytest.raises(SystemExit) as exited:
            main(["unpack", str(bundle), str(work / "o2"), flag, value])
        assert exited.value.code == 2 and phrase in capsys.readouterr().err


def test_large_window_needs_max_window_flag(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import zstandard

    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=28, write_checksum=1)
    compressor = zstandard.ZstdCompressor(compression_params=params).compressobj()
    bundle = write(work / "b.tar.zst", compressor.compress(valid_tar()) + compressor.flush())
    assert main(["unpack", str(bundle), str(work / "out")]) == 1
    assert "zstd window of 268435456 bytes exceeds the limit of 134217728" in capsys.readouterr().err
    assert_nothing_written(work, bundle)
    assert main(["unpack", str(bundle), str(work / "out"), "--max-window", "256MiB", "-q"]) == 0
    assert (work / "out" / "manifest.json").is_file()


def test_bomb_allowed_by_lifted_limits_is_still_bounded_by_size(work: Path) -> None:
    bundle = zeros_bomb(work / "bomb.tar.zst", size=3 << 20)
    with pytest.raises(BundleError, match="compression ratio"):
        unpack_bundle(str(bundle), str(work / "out"))
    result = unpack_bundle(str(bundle), str(work / "out"), BundleLimits(max_ratio=1e6))
    assert result.bytes == 3 << 20 and (work / "out" / "zeros").stat().st_size == 3 << 20
    shutil.rmtree(work / "out")
    with pytest.raises(BundleError, match="more than the uncompressed limit of 1048576"):
        unpack_bundle(str(bundle), str(work / "out"), BundleLimits(max_ratio=1e6, max_total_size=1 << 20))
    assert_nothing_written(work, bundle)


def test_symlinks_created_after_files(tmp_path: Path) -> None:
    tar = end(
        member("a/", typeflag=b"5")
        + member("a/target.txt", b"t")
        + member("link", typeflag=b"2", linkname="a/target.txt")
        + member("dirlink", typeflag=b"2", linkname="a")
    )
    bundle = write(tmp_path / "b.tar.zst", compress(tar))
    unpack_bundle(str(bundle), str(tmp_path / "out"))
    assert os.readlink(tmp_path / "out" / "link") == "a/target.txt"
    assert (tmp_path / "out" / "dirlink" / "target.txt").read_bytes() == b"t"


def test_missing_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["unpack", str(tmp_path / "none.tar.zst"), str(tmp_path / "out")]) == 1
    assert f"fastpack: error: {tmp_path}/none.tar.zst: no such file" in capsys.readouterr().err
    assert listing(tmp_path) == []
