"""LocalStore: the SPEC §5 layout in a directory, create-only writes, streamed reads, key checks."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from fastpack.errors import NotFound, UsageError
from fastpack.store import BUNDLE_CONTENT_TYPE, IMMUTABLE, canonical_key, new_staging_key, store_from_env
from fastpack.store.local import LocalStore


def temp_files(root: Path) -> list[Path]:
    return [path for path in (root / ".fastpack" / "tmp").rglob("*") if path.is_file()]


def test_put_get_head_round_trip(tmp_path):
    store = LocalStore(tmp_path / "store")
    data = b"manifest bytes\n" * 1000
    key = canonical_key("ab" * 32, "manifest.json")
    assert store.put(key, data, content_type="application/json", cache_control=IMMUTABLE) is True
    assert (tmp_path / "store" / key).read_bytes() == data
    info = store.head(key)
    assert info is not None
    assert info.size == len(data)
    assert info.etag == f'"{hashlib.sha256(data).hexdigest()}"'
    assert (info.content_type, info.cache_control) == ("application/json", IMMUTABLE)
    with store.get(key) as stream:
        assert stream.read() == data
    assert store.get(key, byte_range=(5, 12)).read() == data[5:13]


def test_put_never_replaces(tmp_path):
    store = LocalStore(tmp_path)
    assert store.put("extensions/x/1.0.0.json", b"first", content_type="application/json")
    assert store.put("extensions/x/1.0.0.json", b"second", content_type="application/json") is False
    assert (tmp_path / "extensions/x/1.0.0.json").read_bytes() == b"first"
    assert temp_files(tmp_path) == []


def test_concurrent_creates_of_one_key_have_one_winner(tmp_path):
    store = LocalStore(tmp_path)
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def create(index: int) -> None:
        barrier.wait()
        results.append(store.put("extensions/race/1.0.0.json", f"writer {index}".encode(), content_type="text/plain"))

    threads = [threading.Thread(target=create, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    assert (tmp_path / "extensions/race/1.0.0.json").read_bytes().startswith(b"writer ")
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize(
    "key", ["", "../escape", "sha256/../../etc/passwd", "/abs/key", "a//b", "a/./b", ".fastpack/x"]
)
def test_rejects_keys_that_could_escape(tmp_path, key):
    store = LocalStore(tmp_path / "store")
    with pytest.raises(UsageError, match="invalid storage key"):
        store.put(key, b"x", content_type="text/plain")
    assert not (tmp_path / "etc").exists()
    assert [path for path in (tmp_path / "store").rglob("*") if path.is_file()] == []


def test_writer_abort_leaves_nothing(tmp_path):
    store = LocalStore(tmp_path)
    writer = store.writer("sha256/" + "c" * 64 + "/bundle.tar.zst", content_type=BUNDLE_CONTENT_TYPE)
    writer.write(b"partial")
    writer.abort()
    assert store.head("sha256/" + "c" * 64 + "/bundle.tar.zst") is None
    assert temp_files(tmp_path) == []


def test_copy_and_delete_staging(tmp_path):
    store = LocalStore(tmp_path)
    staging = new_staging_key()
    store.put(staging, b"bundle", content_type=BUNDLE_CONTENT_TYPE, cache_control=IMMUTABLE)
    target = canonical_key(hashlib.sha256(b"bundle").hexdigest())
    assert store.copy(staging, target) is True
    assert store.copy(staging, target) is False
    store.delete(staging)
    assert store.head(staging) is None
    assert not (tmp_path / staging).parent.exists()
    info = store.head(target)
    assert info is not None and info.content_type == BUNDLE_CONTENT_TYPE and info.cache_control == IMMUTABLE
    assert (tmp_path / target).read_bytes() == b"bundle"


def test_missing_object_is_not_found(tmp_path):
    store = LocalStore(tmp_path)
    assert store.head("extensions/none/1.0.0.json") is None
    with pytest.raises(NotFound, match="no such object"):
        store.get("extensions/none/1.0.0.json")


def test_etag_rebuilt_when_metadata_is_lost(tmp_path):
    store = LocalStore(tmp_path)
    store.put("extensions/x/2.0.0.json", b"{}", content_type="application/json")
    for meta in (tmp_path / ".fastpack" / "meta").rglob("*.json"):
        meta.unlink()
    info = store.head("extensions/x/2.0.0.json")
    assert info is not None and info.etag == f'"{hashlib.sha256(b"{}").hexdigest()}"'


def test_store_from_env_picks_the_local_store(tmp_path):
    store = store_from_env({"FASTPACK_STORE": str(tmp_path / "s")})
    assert isinstance(store, LocalStore) and store.root == str(tmp_path / "s")
    default = store_from_env({"XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert isinstance(default, LocalStore) and default.root == str(tmp_path / "xdg" / "fastpack" / "store")
