"""`fastpack batch` on a generated 200-extension monorepo: same bytes as `pack`, and incremental."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from helpers_batch import make_monorepo, pack_hash, run_batch_cli

COUNT = 200


@pytest.fixture
def monorepo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    make_monorepo(root, COUNT)
    # Files younger than the stat cache's racy window are always re-hashed; age them past it so the
    # fast path is what these tests exercise.
    time.sleep(0.25)
    return root


def key(index: int) -> str:
    return f"teams/t{index % 7}/ext-{index:03d}"


def test_batch_hashes_equal_individual_pack_hashes(monorepo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = run_batch_cli(monorepo, "--out", out, "--cache-dir", tmp_path / "cache")
    assert run.code == 0, run.stderr
    assert run.summary["packed"] == COUNT and run.summary["failed"] == 0
    assert len(run.results) == COUNT
    for index in range(COUNT):
        result = run.results[key(index)]
        bundle = out / f"ext-{index:03d}" / "1.0.0" / "bundle.tar.zst"
        assert result["bundle"] == str(bundle)
        written = hashlib.sha256(bundle.read_bytes()).hexdigest()
        assert written == result["sha256"]
        assert (bundle.parent / "bundle.sha256").read_text() == f"{written}  bundle.tar.zst\n"
        assert pack_hash(monorepo / key(index), tmp_path / "single.tar.zst") == written


def test_unchanged_run_repacks_nothing_and_reads_no_file(monorepo: Path, tmp_path: Path) -> None:
    args = (monorepo, "--out", tmp_path / "out", "--cache-dir", tmp_path / "cache")
    cold = run_batch_cli(*args)
    warm = run_batch_cli(*args)
    assert warm.code == 0
    assert warm.with_status("cached") == set(cold.results)
    assert warm.summary["packed"] == 0 and warm.summary["files_hashed"] == 0
    assert {k: r["sha256"] for k, r in warm.results.items()} == {k: r["sha256"] for k, r in cold.results.items()}


def test_touching_mtime_repacks_nothing(monorepo: Path, tmp_path: Path) -> None:
    args = (monorepo, "--out", tmp_path / "out", "--cache-dir", tmp_path / "cache")
    cold = run_batch_cli(*args)
    touched = monorepo / key(42) / "ui" / "assets" / "app.js"
    os.utime(touched, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    warm = run_batch_cli(*args)
    assert warm.summary["packed"] == 0 and warm.with_status("cached") == set(cold.results)
    assert warm.summary["files_hashed"] == 1  # the touched file was re-read: its stat no longer matched
    assert warm.results[key(42)]["sha256"] == cold.results[key(42)]["sha256"]


def test_one_byte_same_size_same_mtime_repacks_exactly_that_extension(monorepo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = (monorepo, "--out", out, "--cache-dir", tmp_path / "cache")
    cold = run_batch_cli(*args)
    run_batch_cli(*args)  # warm: every file now served from the stat cache
    changed = monorepo / key(137) / "dist" / "main.wasm"
    before = os.stat(changed)
    data = bytearray(changed.read_bytes())
    data[100] ^= 0xFF
    with open(changed, "r+b") as handle:  # in place: same inode, same size
        handle.write(data)
    os.utime(changed, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(changed)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)

    warm = run_batch_cli(*args)
    assert warm.code == 0
    assert warm.with_status("packed") == {key(137)}
    assert warm.with_status("cached") == set(cold.results) - {key(137)}
    new_hash = warm.results[key(137)]["sha256"]
    assert new_hash != cold.results[key(137)]["sha256"]
    assert new_hash == pack_hash(monorepo / key(137), tmp_path / "single.tar.zst")
    assert hashlib.sha256((out / "ext-137" / "1.0.0" / "bundle.tar.zst").read_bytes()).hexdigest() == new_hash


def test_tampered_output_bundle_is_repacked(monorepo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = (monorepo, "--out", out, "--cache-dir", tmp_path / "cache")
    cold = run_batch_cli(*args)
    bundle = out / "ext-005" / "1.0.0" / "bundle.tar.zst"
    bundle.write_bytes(b"not a bundle")
    (out / "ext-006" / "1.0.0" / "bundle.tar.zst").unlink()
    warm = run_batch_cli(*args)
    assert warm.with_status("packed") == {key(5), key(6)}
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() == cold.results[key(5)]["sha256"]


def test_option_changing_the_bytes_is_a_new_digest(monorepo: Path, tmp_path: Path) -> None:
    args = (monorepo, "--out", tmp_path / "out", "--cache-dir", tmp_path / "cache")
    cold = run_batch_cli(*args)
    relevelled = run_batch_cli(*args, "--level", "9")
    assert relevelled.summary["packed"] == COUNT and relevelled.summary["files_hashed"] == 0
    assert {r["digest"] for r in relevelled.results.values()}.isdisjoint(r["digest"] for r in cold.results.values())


def test_fresh_machine_with_fleet_cache_in_local_store_repacks_nothing(monorepo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = run_batch_cli(
        monorepo, "--out", tmp_path / "out1", "--cache-dir", tmp_path / "cache1", "--publish-store", store
    )
    assert first.code == 0, first.stderr
    assert first.summary["packed"] == COUNT
    assert all(r["published"]["contentHash"] == r["sha256"] for r in first.results.values())
    assert len(list((store / "cache").iterdir())) == COUNT

    out2 = tmp_path / "out2"
    second = run_batch_cli(monorepo, "--out", out2, "--cache-dir", tmp_path / "cache2", "--publish-store", store)
    assert second.code == 0, second.stderr
    assert second.summary["packed"] == 0 and second.summary["fetched"] == COUNT
    for name, result in second.results.items():
        bundle = Path(result["bundle"])
        assert bundle.is_relative_to(out2)
        assert hashlib.sha256(bundle.read_bytes()).hexdigest() == first.results[name]["sha256"]


def test_new_output_directory_copies_from_the_local_cache(monorepo: Path, tmp_path: Path) -> None:
    cold = run_batch_cli(monorepo, "--out", tmp_path / "out1", "--cache-dir", tmp_path / "cache")
    moved = run_batch_cli(monorepo, "--out", tmp_path / "out2", "--cache-dir", tmp_path / "cache")
    assert moved.summary["packed"] == 0 and moved.summary["cached"] == COUNT
    for name, result in moved.results.items():
        assert Path(result["bundle"]).is_relative_to(tmp_path / "out2")
        assert hashlib.sha256(Path(result["bundle"]).read_bytes()).hexdigest() == cold.results[name]["sha256"]
    back = run_batch_cli(monorepo, "--out", tmp_path / "out1", "--cache-dir", tmp_path / "cache")
    assert back.summary["cached"] == COUNT
