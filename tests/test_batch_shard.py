"""`--shard I/N`: the shards of a fleet together build the unsharded set, each extension once."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from fastpack.batch.discover import Extension
from fastpack.batch.shard import parse_shard, select_shard, shard_of
from helpers_batch import make_monorepo, run_batch_cli


def bundles(out: Path) -> dict[str, str]:
    return {
        str(path.relative_to(out)): hashlib.sha256(path.read_bytes()).hexdigest() for path in out.rglob("*.tar.zst")
    }


def test_three_shards_equal_the_unsharded_run(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_monorepo(repo, 200)
    whole = run_batch_cli(repo, "--out", tmp_path / "all", "--cache-dir", tmp_path / "cache-all")
    assert whole.code == 0
    shard_runs = [
        run_batch_cli(repo, "--out", tmp_path / "sharded", "--cache-dir", tmp_path / f"c{i}", "--shard", f"{i}/3")
        for i in range(3)
    ]
    keys = [set(run.results) for run in shard_runs]
    assert all(run.code == 0 and run.summary["packed"] == len(run.results) for run in shard_runs)
    assert all(keys)  # every machine gets work
    assert sum(len(k) for k in keys) == 200 and set().union(*keys) == set(whole.results)
    assert bundles(tmp_path / "sharded") == bundles(tmp_path / "all")


def test_assignment_is_stable_when_other_extensions_come_and_go() -> None:
    rng = random.Random(3)
    keys = [f"pkg/{rng.randbytes(6).hex()}" for _ in range(300)]
    before = {key: shard_of(key, 5) for key in keys}
    after_removal = {key: shard_of(key, 5) for key in keys[::2]}
    assert all(before[key] == shard for key, shard in after_removal.items())
    grown = {key: shard_of(key, 6) for key in keys}
    moved = [key for key in keys if grown[key] != before[key]]
    # Rendezvous hashing: growing 5 → 6 machines only moves extensions to the new shard (~1/6 of them).
    assert all(grown[key] == 5 for key in moved)
    assert 0 < len(moved) < len(keys) / 3


def test_select_shard_partitions() -> None:
    extensions = [Extension(f"/repo/e{i}", f"e{i}") for i in range(50)]
    parts = [select_shard(extensions, index, 4) for index in range(4)]
    assert sorted((e.key for part in parts for e in part), key=lambda k: int(k[1:])) == [e.key for e in extensions]
    assert select_shard(extensions, 0, 1) == extensions


@pytest.mark.parametrize("text", ["1/0", "2/2", "-1/3", "a/3", "1", "1/3/4"])
def test_parse_shard_rejects(text: str) -> None:
    from fastpack.errors import UsageError

    with pytest.raises(UsageError, match=r"--shard"):
        parse_shard(text)


def test_parse_shard_accepts() -> None:
    assert parse_shard("0/1") == (0, 1)
    assert parse_shard(" 2/3 ") == (2, 3)
