"""S3Store against a real SeaweedFS: create-only writes, copies, ranges, and the errors users will meet."""

from __future__ import annotations

import hashlib
import os
import socket

import pytest

from fastpack.errors import NotFound, StoreError, UsageError
from fastpack.store import BUNDLE_CONTENT_TYPE, IMMUTABLE, canonical_key, new_staging_key, store_from_env
from fastpack.store.s3 import S3Store
from fastpack.upload.retry import RetryPolicy
from s3server import bucket_keys

pytestmark = pytest.mark.s3
FAST_FAIL = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)


def make_store(server, bucket: str, **overrides: object) -> S3Store:
    options: dict[str, object] = {
        "endpoint": server.endpoint,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
    }
    options.update(overrides)
    return S3Store(bucket, **options)  # type: ignore[arg-type]


def test_put_get_head_round_trip(s3_server, s3_bucket):
    store = make_store(s3_server, s3_bucket)
    data = os.urandom(300_000)
    key = canonical_key(hashlib.sha256(data).hexdigest())
    assert store.put(key, data, content_type=BUNDLE_CONTENT_TYPE, cache_control=IMMUTABLE) is True
    raw = s3_server.client().get_object(Bucket=s3_bucket, Key=key)
    assert hashlib.sha256(raw["Body"].read()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert raw["ContentType"] == BUNDLE_CONTENT_TYPE and raw["CacheControl"] == IMMUTABLE
    info = store.head(key)
    assert info is not None and info.size == len(data) and info.etag.startswith('"')
    with store.get(key) as stream:
        assert stream.read() == data
    ranged = store.get(key, byte_range=(1000, 1999))
    assert ranged.info.size == len(data)
    assert ranged.read() == data[1000:2000]


def test_if_none_match_is_honoured_by_the_server(s3_server, s3_bucket):
    """SeaweedFS answers 412 to a second create: the store reports False and the first bytes stay."""
    store = make_store(s3_server, s3_bucket)
    assert store.put("extensions/e/1.0.0.json", b"first", content_type="application/json") is True
    assert store.put("extensions/e/1.0.0.json", b"second", content_type="application/json") is False
    body = s3_server.client().get_object(Bucket=s3_bucket, Key="extensions/e/1.0.0.json")["Body"].read()
    assert body == b"first"


def test_prefix_and_bundle_bucket_routing(s3_server, s3_bucket):
    bundles = s3_server.new_bucket()
    store = S3Store.from_env(s3_server.env(s3_bucket, STORAGE_S3_BUNDLE_BUCKET=bundles))
    key = canonical_key("d" * 64)
    store.put(key, b"b", content_type=BUNDLE_CONTENT_TYPE)
    store.put(canonical_key("d" * 64, "manifest.json"), b"{}", content_type="application/json")
    client = s3_server.client()
    assert bucket_keys(client, bundles) == [key]
    assert bucket_keys(client, s3_bucket) == [canonical_key("d" * 64, "manifest.json")]
    prefixed = make_store(s3_server, s3_bucket, prefix="team/a")
    prefixed.put("extensions/p/1.0.0.json", b"{}", content_type="application/json")
    assert "team/a/extensions/p/1.0.0.json" in bucket_keys(client, s3_bucket)
    assert list(prefixed.list_keys("extensions/p")) == ["extensions/p/1.0.0.json"]


def test_copy_single_and_multipart(s3_server, s3_bucket):
    store = make_store(s3_server, s3_bucket)
    data = os.urandom(11 << 20)
    staging = new_staging_key()
    store.put(staging, data, content_type=BUNDLE_CONTENT_TYPE, cache_control=IMMUTABLE)
    first = canonical_key("e" * 64)
    assert store.copy(staging, first) is True
    assert store.copy(staging, first) is False
    # UploadPartCopy path (used above 5 GiB), exercised with small limits
    store.max_single_copy = 1 << 20
    store.copy_part_size = 5 << 20
    second = canonical_key("f" * 64)
    assert store.copy(staging, second) is True
    assert store.copy(staging, second) is False
    client = s3_server.client()
    for key in (first, second):
        obj = client.get_object(Bucket=s3_bucket, Key=key)
        assert hashlib.sha256(obj["Body"].read()).digest() == hashlib.sha256(data).digest()
        assert obj["ContentType"] == BUNDLE_CONTENT_TYPE
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    store.delete(staging)
    assert store.head(staging) is None


def test_missing_key_and_missing_bucket(s3_server, s3_bucket):
    store = make_store(s3_server, s3_bucket)
    assert store.head("extensions/none/1.0.0.json") is None
    with pytest.raises(NotFound):
        store.get("extensions/none/1.0.0.json")
    missing = make_store(s3_server, "no-such-bucket-fastpack")
    with pytest.raises(StoreError, match="bucket 'no-such-bucket-fastpack' does not exist") as info:
        missing.head("extensions/none/1.0.0.json")
    assert s3_server.endpoint in str(info.value)
    with pytest.raises(StoreError, match="bucket 'no-such-bucket-fastpack' does not exist"):
        missing.put("extensions/none/1.0.0.json", b"{}", content_type="application/json")


def test_wrong_credentials(s3_server, s3_bucket):
    store = make_store(s3_server, s3_bucket, secret_key="not-the-secret")
    for action in (
        lambda: store.head("extensions/x/1.0.0.json"),
        lambda: store.put("extensions/x/1.0.0.json", b"{}", content_type="application/json"),
    ):
        with pytest.raises(StoreError) as info:
            action()
        message = str(info.value)
        assert "S3 refused access key 'fastpack-test-access'" in message
        assert s3_bucket in message and s3_server.endpoint in message
        assert "Traceback" not in message
    assert bucket_keys(s3_server.client(), s3_bucket) == []


def test_unreachable_endpoint_names_endpoint_and_bucket():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = S3Store(
        "some-bucket",
        endpoint=f"http://127.0.0.1:{port}",
        access_key="a",
        secret_key="b",
        retry_policy=FAST_FAIL,
    )
    with pytest.raises(
        StoreError, match=rf"cannot reach the S3 endpoint http://127.0.0.1:{port} for bucket 'some-bucket'"
    ):
        store.head("extensions/x/1.0.0.json")


def test_configuration_errors():
    with pytest.raises(UsageError, match="STORAGE_S3_BUCKET is not"):
        store_from_env({"STORAGE_S3_ENDPOINT": "http://127.0.0.1:1"})
    with pytest.raises(UsageError, match="must be set together"):
        store_from_env({"STORAGE_S3_BUCKET": "b", "STORAGE_S3_ACCESS_KEY": "a"})
    with pytest.raises(UsageError, match="STORAGE_S3_FORCE_PATH_STYLE"):
        store_from_env({"STORAGE_S3_BUCKET": "b", "STORAGE_S3_FORCE_PATH_STYLE": "maybe"})
    store = store_from_env({"STORAGE_S3_BUCKET": "b", "STORAGE_S3_ENDPOINT": "http://127.0.0.1:1"})
    assert isinstance(store, S3Store) and store.region == "us-east-1" and store.url == "s3://b"


def test_sweep_aborts_uploads_nobody_could_abort(s3_server, s3_bucket):
    client = s3_server.client()
    orphan = client.create_multipart_upload(Bucket=s3_bucket, Key="sha256/_staging/orphan/bundle.tar.zst")
    client.upload_part(
        Bucket=s3_bucket, Key="sha256/_staging/orphan/bundle.tar.zst", UploadId=orphan["UploadId"],
        PartNumber=1, Body=b"x" * 1024,
    )  # fmt: skip
    store = make_store(s3_server, s3_bucket)
    assert store.abort_stale_uploads() == []  # younger than a day: could still be in flight
    assert store.abort_stale_uploads(older_than=0) == ["sha256/_staging/orphan/bundle.tar.zst"]
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
