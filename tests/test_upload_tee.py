"""The single-pass multipart tee (SPEC §5.1): parts, bounded pool, retries, and all-or-nothing uploads."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from fastpack.errors import HashMismatch, SizeMismatch, StoreError, TooLarge
from fastpack.store import canonical_key
from fastpack.store.local import LocalStore
from fastpack.store.s3 import S3Store
from fastpack.upload.executor import BoundedExecutor
from fastpack.upload.parts import PartBuffer
from fastpack.upload.retry import RetryPolicy, call_with_retry
from fastpack.upload.tee import stage_stream, upload_stream
from s3server import SeaweedS3, bucket_keys, live_uploads

MiB = 1 << 20
PART = 5 * MiB


def pseudo_random(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def chunked(data: bytes, rng: random.Random) -> list[bytes]:
    chunks, offset = [], 0
    while offset < len(data):
        step = rng.choice([1, 511, 4096, 65536, MiB, 3 * MiB])
        chunks.append(data[offset : offset + step])
        offset += step
    return chunks


def s3_store(server: SeaweedS3, bucket: str, **options: object) -> S3Store:
    return S3Store(
        bucket, endpoint=server.endpoint, access_key=server.access_key, secret_key=server.secret_key, **options
    )  # type: ignore[arg-type]


# -- building blocks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_part_buffer_cuts_exact_parts(seed):
    rng = random.Random(seed)
    data = rng.randbytes(rng.randrange(0, 3 * 4096 + 100))
    buffer = PartBuffer(4096)
    parts = [bytes(part) for chunk in chunked(data, rng) for part in buffer.feed(chunk)]
    rest = bytes(buffer.rest())
    assert all(len(part) == 4096 for part in parts)
    assert len(rest) < 4096
    assert b"".join(parts) + rest == data


def test_bounded_executor_never_exceeds_its_bound():
    executor = BoundedExecutor(3)
    lock = threading.Lock()
    state = {"running": 0, "peak": 0}

    def task(index: int) -> int:
        with lock:
            state["running"] += 1
            state["peak"] = max(state["peak"], state["running"])
        time.sleep(0.01)
        with lock:
            state["running"] -= 1
        return index

    for index in range(20):
        executor.submit(task, index)
        assert len([f for f in executor._futures if not f.done()]) <= 3
    assert executor.results() == list(range(20))
    assert state["peak"] <= 3
    executor.shutdown()


def test_bounded_executor_surfaces_the_first_failure():
    executor = BoundedExecutor(2)

    def fail() -> None:
        raise ValueError("part 1 failed")

    executor.submit(fail)
    with pytest.raises(ValueError, match="part 1 failed"):
        for _ in range(50):
            executor.submit(time.sleep, 0.001)
    executor.cancel()


def test_retry_retries_transient_errors_only():
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("reset")
        return "ok"

    policy = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.002)
    assert call_with_retry(flaky, lambda exc: isinstance(exc, ConnectionError), policy) == "ok"
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(ValueError):
        call_with_retry(lambda: calls.append(1) or int("x"), lambda exc: isinstance(exc, ConnectionError), policy)
    assert len(calls) == 1
    calls.clear()

    def down() -> None:
        calls.append(1)
        raise ConnectionError("down")

    with pytest.raises(ConnectionError, match="down"):
        call_with_retry(down, lambda exc: True, policy)
    assert len(calls) == 4


# -- the local store gets the same semantics -----------------------------------------------------------


def test_local_tee_round_trip_and_failures(tmp_path):
    store = LocalStore(tmp_path)
    data = pseudo_random(3 * MiB + 17)
    digest = hashlib.sha256(data).hexdigest()
    result, _ = upload_stream(chunked(data, random.Random(2)), store)
    assert (result.key, result.sha256, result.size, result.uploaded) == (canonical_key(digest), digest, len(data), True)
    assert (tmp_path / result.key).read_bytes() == data
    again, _ = upload_stream([data], store, declared_hash=digest)
    assert again.uploaded is False
    with pytest.raises(HashMismatch, match="declared " + "0" * 64):
        upload_stream([data], store, declared_hash="0" * 64)
    with pytest.raises(TooLarge, match="more bytes than the declared size of 10"):
        stage_stream([data], store, size=10)
    with pytest.raises(SizeMismatch, match=f"got {len(data)} bytes, declared {len(data) + 1}"):
        stage_stream([data], store, size=len(data) + 1)
    with pytest.raises(TooLarge, match="limit of 1000"):
        stage_stream([data], store, max_bytes=1000)
    assert not (tmp_path / "sha256" / "_staging").exists() or not any((tmp_path / "sha256" / "_staging").rglob("*.zst"))
    assert not any(path.is_file() for path in (tmp_path / ".fastpack" / "tmp").rglob("*"))
    assert store.head(canonical_key("0" * 64)) is None


# -- S3 ---------------------------------------------------------------------------------------------------


@pytest.mark.s3
def test_s3_multipart_round_trip(s3_server, s3_bucket):
    store = s3_store(s3_server, s3_bucket)
    data = pseudo_random(3 * PART + 1234)
    digest = hashlib.sha256(data).hexdigest()
    result, _ = upload_stream(
        chunked(data, random.Random(3)), store, declared_hash=digest, part_size=PART, concurrency=2
    )
    assert result.uploaded and result.key == canonical_key(digest) and result.size == len(data)
    obj = s3_server.client().get_object(Bucket=s3_bucket, Key=result.key)
    assert obj["ETag"].strip('"').endswith("-4")  # four parts: the multipart path
    assert hashlib.sha256(obj["Body"].read()).hexdigest() == digest
    assert obj["ContentType"] == "application/zstd"
    assert live_uploads(s3_server.client(), s3_bucket) == []


@pytest.mark.s3
def test_s3_small_bundle_is_one_put_and_dedupes(s3_server, s3_bucket):
    store = s3_store(s3_server, s3_bucket)
    data = pseudo_random(100_000)
    digest = hashlib.sha256(data).hexdigest()
    first, _ = upload_stream([data], store, declared_hash=digest, part_size=PART)
    second, _ = upload_stream([data], store, declared_hash=digest, part_size=PART)
    assert (first.uploaded, second.uploaded) == (True, False)
    etag = s3_server.client().head_object(Bucket=s3_bucket, Key=first.key)["ETag"].strip('"')
    assert etag == hashlib.md5(data).hexdigest()  # a single PutObject, not a multipart upload
    assert bucket_keys(s3_server.client(), s3_bucket) == [first.key]


@pytest.mark.s3
def test_s3_unknown_hash_goes_through_staging(s3_server, s3_bucket):
    store = s3_store(s3_server, s3_bucket)
    data = pseudo_random(2 * PART + 5)
    result, _ = upload_stream(chunked(data, random.Random(4)), store, part_size=PART)
    assert result.key == canonical_key(hashlib.sha256(data).hexdigest())
    assert bucket_keys(s3_server.client(), s3_bucket) == [result.key]
    assert live_uploads(s3_server.client(), s3_bucket) == []


@pytest.mark.s3
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"declared_hash": "0" * 64}, HashMismatch, "declared 0000"),
        ({"size": 3 * PART}, TooLarge, "more bytes than the declared size"),
        ({"size": 4 * PART}, SizeMismatch, "declared 20971520"),
        ({"max_bytes": 2 * PART}, TooLarge, "limit of 10485760"),
    ],
)
def test_s3_bad_uploads_leave_nothing(s3_server, s3_bucket, kwargs, error, message):
    store = s3_store(s3_server, s3_bucket)
    data = pseudo_random(3 * PART + 10)
    with pytest.raises(error, match=message):
        stage_stream(chunked(data, random.Random(5)), store, part_size=PART, concurrency=2, **kwargs)
    client = s3_server.client()
    assert bucket_keys(client, s3_bucket) == []
    assert live_uploads(client, s3_bucket) == []


@pytest.mark.s3
@pytest.mark.parametrize("interrupt", [RuntimeError("producer failed"), KeyboardInterrupt()])
def test_s3_exception_or_ctrl_c_mid_upload_aborts(s3_server, s3_bucket, interrupt):
    store = s3_store(s3_server, s3_bucket)
    data = pseudo_random(PART)

    def chunks():
        for _ in range(3):
            yield data
        raise interrupt

    with pytest.raises(type(interrupt)):
        upload_stream(chunks(), store, declared_hash="a" * 64, part_size=PART, concurrency=2)
    client = s3_server.client()
    assert live_uploads(client, s3_bucket) == []
    assert bucket_keys(client, s3_bucket) == []


@pytest.mark.s3
def test_server_killed_mid_multipart_upload(tmp_path):
    """The client fails with a clear error; once the server is back, no object and no live upload remain."""
    server = SeaweedS3.start(tmp_path / "weed")
    restarter: threading.Thread | None = None
    try:
        bucket = server.new_bucket()
        store = s3_store(server, bucket, retry_policy=RetryPolicy(attempts=3, base_delay=0.05, max_delay=0.2))
        real_abort = store.abort_multipart

        def abort_while_server_restarts(key: str, upload_id: str) -> bool:
            nonlocal restarter
            restarter = threading.Thread(target=server.run)
            restarter.start()
            return real_abort(key, upload_id)

        store.abort_multipart = abort_while_server_restarts  # type: ignore[method-assign]
        part = pseudo_random(PART)

        def chunks():
            for index in range(8):
                if index == 3:
                    server.kill()
                yield part

        with pytest.raises(StoreError, match=f"cannot reach the S3 endpoint {server.endpoint}"):
            upload_stream(chunks(), store, declared_hash="b" * 64, part_size=PART, concurrency=2)
        assert restarter is not None
        restarter.join()
        client = server.client()
        assert bucket_keys(client, bucket) == []
        assert live_uploads(client, bucket) == []
    finally:
        if restarter is not None:
            restarter.join()
        server.stop()


_BIG_UPLOAD = textwrap.dedent(
    """
    import json, sys
    from fastpack.store.s3 import S3Store
    from fastpack.upload.tee import upload_stream

    endpoint, access, secret, bucket, declared, total, part, concurrency = sys.argv[1:]
    total, part, concurrency = int(total), int(part), int(concurrency)

    def generate():
        import random
        block = random.Random(7).randbytes(1 << 20)
        for index in range(total >> 20):
            yield index.to_bytes(8, "big") + block[8:]

    store = S3Store(bucket, endpoint=endpoint, access_key=access, secret_key=secret)
    result, _ = upload_stream(generate(), store, declared_hash=declared, size=total, part_size=part,
                              concurrency=concurrency)
    # VmHWM: this process image's peak RSS (ru_maxrss would include the forked parent's before exec)
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
    print(json.dumps({"result": result.to_json(), "peak_rss": peak}))
    """
)


@pytest.mark.s3
@pytest.mark.slow
def test_one_gib_stream_with_bounded_memory(s3_server, s3_bucket):
    total, part, concurrency = 1 << 30, 16 * MiB, 4
    block = random.Random(7).randbytes(MiB)
    expected = hashlib.sha256()
    for index in range(total >> 20):
        expected.update(index.to_bytes(8, "big") + block[8:])
    declared = expected.hexdigest()
    output = subprocess.run(
        [
            sys.executable,
            "-c",
            _BIG_UPLOAD,
            s3_server.endpoint,
            s3_server.access_key,
            s3_server.secret_key,
            s3_bucket,
            declared,
            str(total),
            str(part),
            str(concurrency),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    report = json.loads(output)
    assert report["result"] == {"key": canonical_key(declared), "sha256": declared, "size": total, "uploaded": True}
    assert report["peak_rss"] <= part * (concurrency + 2) + 64 * MiB
    client = s3_server.client()
    assert client.head_object(Bucket=s3_bucket, Key=canonical_key(declared))["ContentLength"] == total
    tail = client.get_object(Bucket=s3_bucket, Key=canonical_key(declared), Range=f"bytes={total - MiB}-{total - 1}")
    assert tail["Body"].read() == ((total >> 20) - 1).to_bytes(8, "big") + block[8:]
    client.delete_object(Bucket=s3_bucket, Key=canonical_key(declared))
