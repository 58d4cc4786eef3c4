"""The fleet cache is an optimization only: bad entries fall back to packing, fetched bytes are verified."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from helpers_batch import make_monorepo, run_batch_cli


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, Path, dict]:
    repo, store = tmp_path / "repo", tmp_path / "store"
    make_monorepo(repo, 6)
    first = run_batch_cli(
        repo, "--out", tmp_path / "out1", "--cache-dir", tmp_path / "cache1", "--publish-store", store
    )
    assert first.code == 0, first.stderr
    return repo, store, first.results


def fresh_machine(tmp_path: Path, repo: Path, store: Path, name: str):  # type: ignore[no-untyped-def]
    return run_batch_cli(
        repo, "--out", tmp_path / f"out-{name}", "--cache-dir", tmp_path / f"cache-{name}", "--publish-store", store
    )


def test_fleet_entries_name_the_published_bundle(published: tuple[Path, Path, dict]) -> None:
    _, store, results = published
    for result in results.values():
        entry = json.loads((store / "cache" / f"{result['digest']}.json").read_text())
        assert entry["sha256"] == result["sha256"] and entry["size"] == result["size"]
        assert (entry["name"], entry["version"]) == (result["extension"], result["version"])
        stored = store / "sha256" / result["sha256"] / "bundle.tar.zst"
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == result["sha256"]
        index = json.loads((store / "extensions" / result["extension"] / "1.0.0.json").read_text())
        assert index["contentHash"] == result["sha256"]


def test_corrupted_entry_falls_back_to_packing_and_is_repaired(tmp_path: Path, published) -> None:  # type: ignore[no-untyped-def]
    repo, store, results = published
    victim = results["teams/t2/ext-002"]
    entry_path = store / "cache" / f"{victim['digest']}.json"
    entry_path.write_text('{"sha256": "oops"')
    run = fresh_machine(tmp_path, repo, store, "a")
    assert run.code == 0, run.stderr
    assert run.with_status("packed") == {"teams/t2/ext-002"}
    assert run.summary["fetched"] == 5
    assert "corrupted" in run.results["teams/t2/ext-002"]["warnings"][0]
    assert run.results["teams/t2/ext-002"]["sha256"] == victim["sha256"]
    assert json.loads(entry_path.read_text())["sha256"] == victim["sha256"]
    assert fresh_machine(tmp_path, repo, store, "b").summary["fetched"] == 6


def test_entry_pointing_at_other_bytes_is_not_trusted(tmp_path: Path, published) -> None:  # type: ignore[no-untyped-def]
    repo, store, results = published
    victim, other = results["teams/t3/ext-003"], results["teams/t4/ext-004"]
    entry_path = store / "cache" / f"{victim['digest']}.json"
    entry = json.loads(entry_path.read_text())
    entry["sha256"] = other["sha256"]  # a well-formed entry naming another bundle (of another size)
    entry_path.write_text(json.dumps(entry))
    run = fresh_machine(tmp_path, repo, store, "a")
    assert run.with_status("packed") == {"teams/t3/ext-003"}
    assert "not usable" in run.results["teams/t3/ext-003"]["warnings"][0]
    bundle = Path(run.results["teams/t3/ext-003"]["bundle"])
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() == victim["sha256"]


def test_tampered_stored_bundle_is_detected_while_fetching(tmp_path: Path, published) -> None:  # type: ignore[no-untyped-def]
    repo, store, results = published
    victim = results["teams/t5/ext-005"]
    stored = store / "sha256" / victim["sha256"] / "bundle.tar.zst"
    data = bytearray(stored.read_bytes())
    data[-5] ^= 1
    stored.write_bytes(bytes(data))
    run = fresh_machine(tmp_path, repo, store, "a")
    assert run.with_status("packed") == {"teams/t5/ext-005"}
    assert "hashes to" in run.results["teams/t5/ext-005"]["warnings"][0]
    bundle = Path(run.results["teams/t5/ext-005"]["bundle"])
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() == victim["sha256"]


def test_local_hit_published_once_per_store(tmp_path: Path, published) -> None:  # type: ignore[no-untyped-def]
    repo, store, _ = published
    again = run_batch_cli(
        repo, "--out", tmp_path / "out1", "--cache-dir", tmp_path / "cache1", "--publish-store", store
    )
    assert again.summary["cached"] == 6
    assert all(r["published"] == {"contentHash": r["sha256"], "uploaded": False} for r in again.results.values())
    other_store = tmp_path / "store2"
    moved = run_batch_cli(
        repo, "--out", tmp_path / "out1", "--cache-dir", tmp_path / "cache1", "--publish-store", other_store
    )
    assert moved.summary["cached"] == 6
    assert len(list((other_store / "cache").iterdir())) == 6
    assert all(r["published"]["contentHash"] == r["sha256"] for r in moved.results.values())


def test_output_restored_without_local_cache_is_verified_not_downloaded(tmp_path: Path, published) -> None:  # type: ignore[no-untyped-def]
    repo, store, results = published
    # Same OUT, fresh local cache; the store's copy of one bundle is made unreadable to prove no download happens.
    victim = results["teams/t1/ext-001"]
    stored = store / "sha256" / victim["sha256"] / "bundle.tar.zst"
    stored.write_bytes(b"corrupt")
    run = run_batch_cli(repo, "--out", tmp_path / "out1", "--cache-dir", tmp_path / "fresh", "--publish-store", store)
    assert run.code == 0, run.stderr
    assert run.summary["fetched"] == 6 and run.summary["packed"] == 0
    assert not run.results["teams/t1/ext-001"].get("warnings")
