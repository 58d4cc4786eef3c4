"""Fleet cache in a real S3 store (SeaweedFS): a fresh machine fetches instead of packing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from helpers_batch import make_monorepo, run_batch_cli
from s3server import bucket_keys

pytestmark = pytest.mark.s3
COUNT = 40


def test_fresh_machine_with_fleet_cache_in_s3_repacks_nothing(
    s3_server, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3_server.env(s3_bucket).items():
        monkeypatch.setenv(name, value)
    repo = tmp_path / "repo"
    make_monorepo(repo, COUNT)
    target = f"s3://{s3_bucket}/fleet"
    first = run_batch_cli(repo, "--out", tmp_path / "out1", "--cache-dir", tmp_path / "cache1", "--publish", target)
    assert first.code == 0, first.stderr
    assert first.summary["packed"] == COUNT

    client = s3_server.client()
    keys = set(bucket_keys(client, s3_bucket))
    for result in first.results.values():
        assert f"fleet/sha256/{result['sha256']}/bundle.tar.zst" in keys
        assert f"fleet/extensions/{result['extension']}/1.0.0.json" in keys
        entry = json.loads(
            client.get_object(Bucket=s3_bucket, Key=f"fleet/cache/{result['digest']}.json")["Body"].read()
        )
        assert entry["sha256"] == result["sha256"]

    second = run_batch_cli(repo, "--out", tmp_path / "out2", "--cache-dir", tmp_path / "cache2", "--publish", target)
    assert second.code == 0, second.stderr
    assert second.summary["packed"] == 0 and second.summary["fetched"] == COUNT
    for name, result in second.results.items():
        assert hashlib.sha256(Path(result["bundle"]).read_bytes()).hexdigest() == first.results[name]["sha256"]
    assert set(bucket_keys(client, s3_bucket)) == keys  # nothing uploaded again
