"""20 clients publishing at once through `fastpack serve`: success or the documented conflict, consistent storage."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fastpack.client import ServerTarget, publish_via_server
from fastpack.errors import FastpackError, VersionConflict
from helpers_server import TOKEN, make_bundle, running_server


class LocalObjects:
    def __init__(self, root: Path) -> None:
        self.root = root

    def keys(self) -> list[str]:
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and not p.relative_to(self.root).as_posix().startswith(".fastpack/")
        )

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()


class S3Objects:
    def __init__(self, client, bucket: str) -> None:
        self.client, self.bucket = client, bucket

    def keys(self) -> list[str]:
        from s3server import bucket_keys

        return bucket_keys(self.client, self.bucket)

    def read(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def deployment(request, tmp_path):
    """(server, objects view) for a `fastpack serve` on the local store or on the SeaweedFS bucket."""
    env = {"FASTPACK_API_TOKENS": TOKEN, "FASTPACK_RATE_LIMIT": "0"}
    if request.param == "local":
        with running_server(str(tmp_path / "store"), env, tmp_path / "server.log") as server:
            yield server, LocalObjects(tmp_path / "store")
    else:
        s3 = request.getfixturevalue("s3_server")
        bucket = s3.new_bucket()
        with running_server(None, {**env, **s3.env(bucket)}, tmp_path / "server.log") as server:
            yield server, S3Objects(s3.client(), bucket)


def test_twenty_concurrent_publishers(deployment, tmp_path):
    server, objects = deployment
    shared, shared_manifest, shared_hash = make_bundle(tmp_path, "com.example.shared", "1.0.0")
    rival_a, _, hash_a = make_bundle(tmp_path, "com.example.rival", "1.0.0", payload=b"a")
    rival_b, _, hash_b = make_bundle(tmp_path, "com.example.rival", "1.0.0", payload=b"b")
    solos = [make_bundle(tmp_path, f"com.example.solo{i}", "1.0.0") for i in range(4)]
    jobs = (
        [(shared, shared_hash if i % 2 else None) for i in range(8)]
        + [(rival_a, hash_a if i % 2 else None) for i in range(4)]
        + [(rival_b, hash_b if i % 2 else None) for i in range(4)]
        + [(path, sha) for path, _, sha in solos]
    )
    assert len(jobs) == 20
    target = ServerTarget(server.url, token=TOKEN)

    def run(job: tuple[Path, str | None]) -> dict | FastpackError:
        path, declared = job
        try:
            return publish_via_server(target, str(path), declared_hash=declared)
        except FastpackError as exc:
            return exc

    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(run, jobs))

    unexpected = [o for o in outcomes if isinstance(o, FastpackError) and not isinstance(o, VersionConflict)]
    assert unexpected == [], [str(o) for o in unexpected]
    shared_results = outcomes[:8]
    assert all(isinstance(r, dict) and r["contentHash"] == shared_hash for r in shared_results)
    solo_results = outcomes[16:]
    assert [r["contentHash"] for r in solo_results] == [sha for _, _, sha in solos]  # type: ignore[index]
    rivals = outcomes[8:16]
    winners = {r["contentHash"] for r in rivals if isinstance(r, dict)}
    assert len(winners) == 1, winners
    winner = winners.pop()
    loser_jobs = [i for i in range(8, 16) if jobs[i][0] != (rival_a if winner == hash_a else rival_b)]
    assert all(isinstance(outcomes[i], VersionConflict) for i in loser_jobs)
    assert all(isinstance(outcomes[i], dict) for i in range(8, 16) if i not in loser_jobs)

    keys = objects.keys()
    assert [k for k in keys if k.startswith("sha256/_staging/")] == []
    index_keys = [k for k in keys if k.startswith("extensions/")]
    assert sorted(index_keys) == sorted(
        ["extensions/com.example.shared/1.0.0.json", "extensions/com.example.rival/1.0.0.json"]
        + [f"extensions/com.example.solo{i}/1.0.0.json" for i in range(4)]
    )
    for key in index_keys:
        entry = json.loads(objects.read(key))
        bundle = objects.read(f"sha256/{entry['contentHash']}/bundle.tar.zst")
        assert hashlib.sha256(bundle).hexdigest() == entry["contentHash"]
        assert f"sha256/{entry['contentHash']}/manifest.json" in keys
    assert json.loads(objects.read("extensions/com.example.rival/1.0.0.json"))["contentHash"] == winner
    assert objects.read(f"sha256/{shared_hash}/bundle.tar.zst") == shared.read_bytes()
    assert objects.read(f"sha256/{shared_hash}/manifest.json") == shared_manifest
