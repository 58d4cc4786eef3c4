"""publish / stage_upload / finalize_staged / abort_staged (SPEC §5) on the local store and on real S3."""

from __future__ import annotations

import hashlib
import json
import random
import threading
from pathlib import Path

import pytest

from fastpack.errors import (
    BundleError,
    HashMismatch,
    ManifestError,
    ManifestMismatch,
    NotFound,
    SignatureError,
    UsageError,
    VersionConflict,
)
from fastpack.pack import pack
from fastpack.publish import SignatureInput, abort_staged, finalize_staged, publish, stage_upload
from fastpack.store import canonical_key, store_from_env
from fastpack.store.local import LocalStore
from helpers_server import make_bundle, write_extension
from s3server import bucket_keys, live_uploads


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    server = request.getfixturevalue("s3_server")
    return store_from_env(server.env(server.new_bucket()))


def keys_of(store) -> list[str]:
    return sorted(store.list_keys("sha256")) + sorted(store.list_keys("extensions"))


def read(store, key: str) -> bytes:
    with store.get(key) as stream:
        return stream.read()


def test_round_trip_of_canonical_objects(store, tmp_path):
    bundle, manifest, sha = make_bundle(tmp_path, "com.example.round", "1.2.3", b"payload" * 1000)
    manifest_path = tmp_path / "manifest.json"
    manifest_path.write_bytes(manifest)
    result = publish(bundle, manifest_path, store)
    assert result.to_json() | {"publishedAt": None} == {
        "extension": "com.example.round",
        "version": "1.2.3",
        "contentHash": sha,
        "canonicalKey": f"sha256/{sha}/bundle.tar.zst",
        "manifestKey": f"sha256/{sha}/manifest.json",
        "indexKey": "extensions/com.example.round/1.2.3.json",
        "uploaded": True,
        "signature": None,
        "size": bundle.stat().st_size,
        "publishedAt": None,
    }
    stored = read(store, result.canonical_key)
    assert hashlib.sha256(stored).hexdigest() == sha and stored == bundle.read_bytes()
    assert read(store, result.manifest_key) == manifest
    index = json.loads(read(store, result.index_key))
    assert index["contentHash"] == sha and index["size"] == bundle.stat().st_size
    assert index["canonicalKey"] == result.canonical_key and index["manifestKey"] == result.manifest_key
    assert keys_of(store) == [*sorted([result.canonical_key, result.manifest_key]), result.index_key]
    head = store.head(result.canonical_key)
    assert head.content_type == "application/zstd" and head.cache_control == "public, max-age=31536000, immutable"


def test_dedupe_and_idempotent_republish(store, tmp_path):
    bundle, _, sha = make_bundle(tmp_path, "com.example.dedupe", "1.0.0")
    first = publish(bundle, None, store)
    again = publish(bundle, None, store, declared_hash=sha)
    unknown = publish(bundle, None, store)
    assert (first.uploaded, again.uploaded, unknown.uploaded) == (True, False, False)
    assert again.published_at == first.published_at
    assert [key for key in keys_of(store) if "_staging" in key] == []
    assert len([key for key in keys_of(store) if key.endswith("bundle.tar.zst")]) == 1


def test_version_conflict(store, tmp_path):
    one, _, sha_one = make_bundle(tmp_path, "com.example.conflict", "2.0.0", b"one")
    two, _, sha_two = make_bundle(tmp_path, "com.example.conflict", "2.0.0", b"two")
    publish(one, None, store)
    with pytest.raises(
        VersionConflict, match=f"com.example.conflict@2.0.0 is already published with content {sha_one}"
    ):
        publish(two, None, store)
    assert json.loads(read(store, "extensions/com.example.conflict/2.0.0.json"))["contentHash"] == sha_one
    assert VersionConflict.status == 409 and VersionConflict.code == "EXTENSION_VERSION_ALREADY_EXISTS"
    assert sha_two != sha_one


def test_declared_hash_mismatch_leaves_nothing(store, tmp_path):
    bundle, _, _ = make_bundle(tmp_path, "com.example.mismatch", "1.0.0", random.Random(1).randbytes(11 << 20))
    wrong = "0" * 64
    with pytest.raises(HashMismatch, match=f"declared {wrong}"):
        publish(bundle, None, store, declared_hash=wrong, part_size=5 << 20)
    assert keys_of(store) == []
    assert store.head(canonical_key(wrong)) is None


def test_manifest_checks(store, tmp_path):
    bundle, manifest, _ = make_bundle(tmp_path, "com.example.checks", "1.0.0")
    other = json.loads(manifest)
    other["version"] = "9.9.9"
    with pytest.raises(ManifestMismatch, match=r"differs from the bundle's manifest\.json"):
        publish(bundle, json.dumps(other).encode(), store)
    reformatted = json.dumps(json.loads(manifest)).encode()
    assert publish(bundle, reformatted, store).version == "1.0.0"

    source = write_extension(tmp_path / "bad", "com.example.bad", "1.0.0")
    (source / "manifest.json").write_text(json.dumps({"name": "com.example.bad", "version": "one", "runtime": "x"}))
    bad = tmp_path / "bad.tar.zst"
    pack(source, bad, validate=False)
    with pytest.raises(ManifestError) as info:
        publish(bad, None, store)
    assert str(bad) in str(info.value) and {issue["path"] for issue in info.value.details["issues"]} >= {"version"}

    source = write_extension(tmp_path / "noentry", "com.example.noentry", "1.0.0")
    (source / "ui" / "index.html").unlink()
    missing_entry = tmp_path / "noentry.tar.zst"
    pack(source, missing_entry, validate=False)
    with pytest.raises(ManifestError, match=r"ui/index\.html is not in the bundle"):
        publish(missing_entry, None, store)

    garbage = tmp_path / "garbage.tar.zst"
    garbage.write_bytes(b"not a bundle" * 100)
    with pytest.raises(BundleError):
        publish(garbage, None, store)
    assert [key for key in keys_of(store) if "checks" not in key and not key.startswith("sha256/")] == []
    assert len([key for key in keys_of(store) if key.endswith("bundle.tar.zst")]) == 1


def test_wildcard_version_takes_the_next_free_patch(store, tmp_path):
    published = []
    for payload in (b"a", b"b", b"c"):
        bundle, _, _ = make_bundle(tmp_path, "com.example.star", "3.1.*", payload)
        published.append(publish(bundle, None, store).version)
    assert published == ["3.1.0", "3.1.1", "3.1.2"]
    (tmp_path / "again").mkdir()
    bundle, _, _ = make_bundle(tmp_path / "again", "com.example.star", "3.1.*", b"b")
    assert publish(bundle, None, store).version == "3.1.1"


def test_signature_is_stored_and_checked_against_trust(store, tmp_path, sign_keys, monkeypatch):
    from fastpack.sign import sign_bundle
    from fastpack.sign.trust import Trust

    monkeypatch.setenv("COSIGN_PASSWORD", "test-password")
    bundle, _, sha = make_bundle(tmp_path, "com.example.signed", "1.0.0")
    signed = sign_bundle(str(bundle), "cosign", key=str(sign_keys / "cosign.key"))
    trust = Trust.load(str(sign_keys / "cosign.pub"))
    with pytest.raises(SignatureError, match="a signature is required"):
        publish(bundle, None, store, trust=trust)
    with pytest.raises(SignatureError):
        publish(bundle, None, store, trust=trust, signature=SignatureInput("MEUCIQ" + "A" * 90, "cosign"))
    assert keys_of(store) == []
    result = publish(bundle, None, store, trust=trust, signature=SignatureInput(signed.text, "cosign"))
    assert result.signature["verified"] is True and result.signature["algorithm"] == "cosign"
    assert read(store, f"sha256/{sha}/SIGNATURE").decode() == signed.text
    assert json.loads(read(store, f"sha256/{sha}/signature.json")) == result.signature


def test_stage_finalize_abort(store, tmp_path):
    bundle, manifest, sha = make_bundle(tmp_path, "com.example.staged", "1.0.0")
    data = bundle.read_bytes()
    staged = stage_upload(store, [data[:100], data[100:]], size=len(data), declared_hash=sha)
    assert staged.key.startswith("sha256/_staging/") and staged.sha256 == sha
    result = finalize_staged(store, staged.key, size=len(data), declared_hash=sha, manifest_json=manifest.decode())
    assert result.uploaded and result.content_hash == sha
    assert store.head(staged.key) is None
    with pytest.raises(NotFound, match="nothing staged"):
        finalize_staged(store, staged.key)
    assert finalize_staged(store, canonical_key(sha)).uploaded is False

    other = stage_upload(store, [data], size=len(data))
    with pytest.raises(HashMismatch):
        finalize_staged(store, other.key, declared_hash="1" * 64)
    assert store.head(other.key) is None

    kept = stage_upload(store, [data], size=len(data))
    with pytest.raises(ManifestMismatch):
        finalize_staged(store, kept.key, manifest_json='{"name": "x"}')
    assert store.head(kept.key) is not None
    assert abort_staged(store, kept.key) is True
    assert abort_staged(store, kept.key) is False
    assert abort_staged(store, canonical_key(sha)) is False and store.head(canonical_key(sha)) is not None
    for key in ("extensions/com.example.staged/1.0.0.json", "../x", "sha256/_staging/x/other.bin"):
        with pytest.raises(UsageError):
            finalize_staged(store, key)
    assert [key for key in keys_of(store) if "_staging" in key] == []


@pytest.mark.s3
def test_eight_concurrent_publishers_of_one_bundle(s3_server, s3_bucket, tmp_path):
    bundle, _, sha = make_bundle(tmp_path, "com.example.crowd", "1.0.0", random.Random(2).randbytes(11 << 20))
    store = store_from_env(s3_server.env(s3_bucket))
    results: list[object] = []
    barrier = threading.Barrier(8)

    def publisher(declared: str | None) -> None:
        barrier.wait()
        try:
            results.append(publish(bundle, None, store, declared_hash=declared, part_size=5 << 20))
        except Exception as exc:  # collected: every publisher must succeed
            results.append(exc)

    threads = [threading.Thread(target=publisher, args=(sha if i % 2 else None,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(not isinstance(result, Exception) for result in results), results
    assert {result.content_hash for result in results} == {sha}
    client = s3_server.client()
    assert bucket_keys(client, s3_bucket) == sorted(
        [f"sha256/{sha}/bundle.tar.zst", f"sha256/{sha}/manifest.json", "extensions/com.example.crowd/1.0.0.json"]
    )
    assert live_uploads(client, s3_bucket) == []
    body = client.get_object(Bucket=s3_bucket, Key=f"sha256/{sha}/bundle.tar.zst")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha


def test_local_store_layout_is_plain_files(tmp_path):
    bundle, _, sha = make_bundle(tmp_path, "com.example.files", "1.0.0")
    root = tmp_path / "plain"
    publish(bundle, None, LocalStore(root))
    assert (root / "sha256" / sha / "bundle.tar.zst").read_bytes() == Path(bundle).read_bytes()


def test_stale_sidecar_is_only_a_hint(store, tmp_path):
    bundle, _, sha = make_bundle(tmp_path, "com.example.sidecar", "1.0.0", random.Random(3).randbytes(6 << 20))
    sidecar = bundle.parent / "bundle.sha256"
    assert sidecar.read_text().split()[0] == sha  # pack's sidecar: the fast path uses it as the canonical key
    stale = "5" * 64
    sidecar.write_text(f"{stale}  bundle.tar.zst\n")
    result = publish(bundle, None, store, part_size=5 << 20)
    assert result.content_hash == sha and result.uploaded
    assert store.head(canonical_key(stale)) is None
    assert hashlib.sha256(read(store, canonical_key(sha))).hexdigest() == sha
    assert [key for key in keys_of(store) if "_staging" in key] == []
    if hasattr(store, "client"):  # S3: the aborted hinted upload left no parts behind
        assert store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []
