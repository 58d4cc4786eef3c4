"""The stat fast path never returns a stale content hash."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from pathlib import Path

import pytest

from fastpack.batch.statcache import StatCache, is_racy
from fastpack.errors import SourceChangedError
from fastpack.tree import scan


def b3sum(path: Path) -> bytes:
    out = subprocess.run(["b3sum", "--no-names", str(path)], capture_output=True, text=True, check=True).stdout
    return bytes.fromhex(out.strip())


def entry_for(directory: Path, name: str):  # type: ignore[no-untyped-def]
    return next(entry for entry in scan(directory) if entry.name == name.encode())


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    directory = tmp_path / "tree"
    directory.mkdir()
    (directory / "a.bin").write_bytes(b"A" * 5000)
    (directory / "b.txt").write_text("hello\n")
    time.sleep(0.25)  # older than the racy window, so hashes may be cached
    return directory


def test_hit_after_save_without_reading(tree: Path, tmp_path: Path) -> None:
    cache_file = str(tmp_path / "stat.bin")
    first = StatCache(cache_file)
    assert first.content_hash(entry_for(tree, "a.bin")) == b3sum(tree / "a.bin")
    first.save()
    second = StatCache(cache_file)
    assert second.content_hash(entry_for(tree, "a.bin")) == b3sum(tree / "a.bin")
    assert (second.hits, second.hashed) == (1, 0)


def test_same_size_same_mtime_new_content_is_rehashed(tree: Path, tmp_path: Path) -> None:
    cache_file = str(tmp_path / "stat.bin")
    target = tree / "a.bin"
    warm = StatCache(cache_file)
    warm.content_hash(entry_for(tree, "a.bin"))
    warm.save()
    before = os.stat(target)
    with open(target, "r+b") as handle:
        handle.write(b"B")
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(target)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    assert after.st_ctime_ns != before.st_ctime_ns  # what catches it

    cache = StatCache(cache_file)
    assert cache.content_hash(entry_for(tree, "a.bin")) == b3sum(target)
    assert (cache.hits, cache.hashed) == (0, 1)


def test_replaced_file_with_same_size_and_mtime_is_rehashed(tree: Path, tmp_path: Path) -> None:
    cache_file = str(tmp_path / "stat.bin")
    warm = StatCache(cache_file)
    warm.content_hash(entry_for(tree, "b.txt"))
    warm.save()
    before = os.stat(tree / "b.txt")
    replacement = tree / "b.new"
    replacement.write_text("HELLO\n")
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(replacement, tree / "b.txt")
    cache = StatCache(cache_file)
    assert cache.content_hash(entry_for(tree, "b.txt")) == b3sum(tree / "b.txt")
    assert cache.hashed == 1


def test_recently_changed_files_are_not_cached(tmp_path: Path) -> None:
    directory = tmp_path / "fresh"
    directory.mkdir()
    (directory / "new.txt").write_text("just written\n")
    entry = entry_for(directory, "new.txt")
    assert is_racy(entry, time.time_ns())
    cache_file = str(tmp_path / "stat.bin")
    cache = StatCache(cache_file)
    cache.content_hash(entry)
    cache.save()
    assert not os.path.exists(cache_file) or os.path.getsize(cache_file) == 0
    again = StatCache(cache_file)
    again.content_hash(entry)
    assert again.hashed == 1


def test_second_granularity_timestamps_get_a_wider_window(tree: Path) -> None:
    entry = entry_for(tree, "a.bin")
    whole_second = 1_700_000_000_000_000_000
    coarse = dataclasses.replace(entry, mtime_ns=whole_second, ctime_ns=whole_second)
    assert is_racy(coarse, whole_second + 1_500_000_000)
    assert not is_racy(coarse, whole_second + 2_500_000_000)


def test_corrupted_cache_file_is_ignored(tree: Path, tmp_path: Path) -> None:
    cache_file = tmp_path / "stat.bin"
    cache_file.write_bytes(b"\x01" * 47)
    cache = StatCache(str(cache_file))
    assert cache.content_hash(entry_for(tree, "a.bin")) == b3sum(tree / "a.bin")
    assert cache.hashed == 1


def test_save_prunes_and_skips_unchanged(tree: Path, tmp_path: Path) -> None:
    cache_file = tmp_path / "stat.bin"
    first = StatCache(str(cache_file))
    for name in ("a.bin", "b.txt"):
        first.content_hash(entry_for(tree, name))
    first.save()
    assert cache_file.stat().st_size == 2 * 48
    second = StatCache(str(cache_file))
    second.content_hash(entry_for(tree, "a.bin"))
    second.save()
    assert cache_file.stat().st_size == 48  # b.txt no longer asked for: dropped
    stamp = cache_file.stat().st_mtime_ns
    third = StatCache(str(cache_file))
    third.content_hash(entry_for(tree, "a.bin"))
    third.save()
    assert cache_file.stat().st_mtime_ns == stamp


def test_file_changed_between_scan_and_hash_fails(tree: Path, tmp_path: Path) -> None:
    entry = entry_for(tree, "a.bin")
    (tree / "a.bin").write_bytes(b"longer content " * 1000)
    with pytest.raises(SourceChangedError, match="changed size") as info:
        StatCache(str(tmp_path / "stat.bin")).content_hash(entry)
    assert info.value.path == str(tree / "a.bin")
