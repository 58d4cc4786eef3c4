"""S3-compatible storage (AWS S3, MinIO, SeaweedFS) through boto3.

Every call goes through `_call`: transient failures are retried with backoff
(botocore's own retries are off so the two never multiply), and every other
botocore failure becomes a one-line `StoreError` naming the endpoint, bucket
and key — wrong credentials, a missing bucket and an unreachable endpoint each
get their own message. Objects are created with `If-None-Match: *` only.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from fastpack.errors import MissingDependency, NotFound, StoreError, UsageError
from fastpack.hashing import READ_CHUNK
from fastpack.store import BUNDLE_NAME, ObjectInfo, check_key
from fastpack.upload.retry import DEFAULT_POLICY, RetryPolicy, call_with_retry

T = TypeVar("T")
log = logging.getLogger("fastpack.store")

# Aborting is what keeps orphaned parts off the server: worth waiting out a short outage or restart.
ABORT_POLICY = RetryPolicy(attempts=8, base_delay=0.25, max_delay=2.0)
COPY_PART_SIZE = 1 << 30
MAX_SINGLE_COPY = 5 << 30
_CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "InvalidToken",
    "ExpiredToken",
    "AuthorizationHeaderMalformed",
    "403",
}
_BUCKET_CODES = {"NoSuchBucket"}
_TRANSIENT_CODES = {
    "RequestTimeout",
    "RequestTimeoutException",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "InternalError",
    "ServiceUnavailable",
    "ConditionalRequestConflict",
    "500",
    "502",
    "503",
    "504",
}
_PRECONDITION_CODES = {"PreconditionFailed", "412"}


def sha256_b64(data: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    return str(response.get("Error", {}).get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode"))


def is_transient(exc: BaseException) -> bool:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return True
    code = _error_code(exc)
    return code in _TRANSIENT_CODES


def _env_bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"STORAGE_S3_FORCE_PATH_STYLE must be true or false, got {value!r}")


class S3Store:
    """Objects in one bucket (bundles optionally in another), keys under an optional prefix."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        bundle_bucket: str | None = None,
        endpoint: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        force_path_style: bool | None = None,
        max_pool_connections: int = 32,
        retry_policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        if not bucket:
            raise UsageError("no S3 bucket configured (set STORAGE_S3_BUCKET or use s3://bucket)")
        if (access_key is None) != (secret_key is None):
            raise UsageError("STORAGE_S3_ACCESS_KEY and STORAGE_S3_SECRET_KEY must be set together")
        self.bucket = bucket
        self.bundle_bucket = bundle_bucket or bucket
        self.prefix = prefix.strip("/")
        self.endpoint = endpoint or None
        self.region = region
        self.retry_policy = retry_policy
        self.abort_policy = ABORT_POLICY
        self.copy_part_size = COPY_PART_SIZE
        self.max_single_copy = MAX_SINGLE_COPY
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._access_key = access_key
        self._secret_key = secret_key
        self._path_style = self.endpoint is not None if force_path_style is None else force_path_style
        self._max_pool = max_pool_connections
        self._client: Any = None
        self._lock = threading.Lock()
        self._buckets_seen: set[str] = set()

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, bucket: str | None = None, prefix: str = "") -> S3Store:
        """SPEC §5 names; an explicit `bucket` (from s3://bucket) holds every object, bundles included."""
        endpoint = environ.get("STORAGE_S3_ENDPOINT") or None
        if bucket is None:
            bucket = environ.get("STORAGE_S3_BUCKET") or environ.get("STORAGE_S3_BUNDLE_BUCKET") or ""
            if not bucket:
                raise UsageError(f"STORAGE_S3_ENDPOINT is set ({endpoint}) but STORAGE_S3_BUCKET is not")
            bundle_bucket = environ.get("STORAGE_S3_BUNDLE_BUCKET") or None
        else:
            bundle_bucket = None
        return cls(
            bucket,
            prefix=prefix,
            bundle_bucket=bundle_bucket,
            endpoint=endpoint,
            region=environ.get("STORAGE_S3_REGION") or "us-east-1",
            access_key=environ.get("STORAGE_S3_ACCESS_KEY") or None,
            secret_key=environ.get("STORAGE_S3_SECRET_KEY") or None,
            force_path_style=_env_bool(environ.get("STORAGE_S3_FORCE_PATH_STYLE"), endpoint is not None),
        )

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise MissingDependency("S3 storage needs boto3: pip install 'fastpack[s3]'") from None
        config = Config(
            region_name=self.region,
            signature_version="s3v4",
            # Every body we send carries a signed x-amz-checksum-sha256 header, which the server checks;
            # signing the payload too would hash every part a second time on both ends.
            s3={"addressing_style": "path" if self._path_style else "auto", "payload_signing_enabled": False},
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=self._max_pool,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session(
            aws_access_key_id=self._access_key, aws_secret_access_key=self._secret_key, region_name=self.region
        )
        return session.client("s3", endpoint_url=self.endpoint, config=config)

    # -- keys and errors ---------------------------------------------------------------------------------

    def _location(self, key: str) -> tuple[str, str]:
        check_key(key)
        bucket = self.bundle_bucket if key.endswith("/" + BUNDLE_NAME) else self.bucket
        return bucket, f"{self.prefix}/{key}" if self.prefix else key

    def _where(self, bucket: str, key: str | None = None) -> str:
        where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
        return f"{where} at {self.endpoint}" if self.endpoint else where

    def _call(
        self, operation: str, bucket: str, key: str | None, fn: Callable[[], T], policy: RetryPolicy | None = None
    ) -> T:
        try:
            return call_with_retry(fn, is_transient, policy or self.retry_policy)
        except Exception as exc:
            raise self._translate(exc, operation, bucket, key) from None

    def _translate(self, exc: Exception, operation: str, bucket: str, key: str | None) -> Exception:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        where = self._where(bucket, key)
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return StoreError(
                "no S3 credentials: set STORAGE_S3_ACCESS_KEY and STORAGE_S3_SECRET_KEY "
                "(or AWS credentials in the environment or ~/.aws)",
                path=where,
            )
        if isinstance(exc, EndpointConnectionError):
            return StoreError(
                f"cannot reach the S3 endpoint {self.endpoint or 'of AWS'} for bucket {bucket!r} "
                f"({operation} failed after {self.retry_policy.attempts} attempts)",
                path=where,
            )
        if isinstance(exc, ClientError):
            code = _error_code(exc) or "?"
            message = exc.response.get("Error", {}).get("Message") or code
            if code in _BUCKET_CODES:
                return StoreError(f"bucket {bucket!r} does not exist ({operation})", path=where)
            if code in _CREDENTIAL_CODES:
                who = f"access key {self._access_key!r}" if self._access_key else "the configured credentials"
                return StoreError(
                    f"S3 refused {who} for bucket {bucket!r} ({operation}: {code}): check "
                    "STORAGE_S3_ACCESS_KEY / STORAGE_S3_SECRET_KEY and the bucket policy",
                    path=where,
                )
            if code in ("NoSuchKey", "404", "NoSuchUpload"):
                return NotFound(f"no such object ({operation})", path=where)
            return StoreError(f"S3 {operation} failed: {code}: {message}", path=where)
        if isinstance(exc, BotoCoreError):
            return StoreError(f"S3 {operation} failed: {exc}", path=where)
        return exc

    def _check_bucket(self, bucket: str) -> None:
        """After a 404 on HEAD: tell a missing bucket from a missing key."""
        if bucket in self._buckets_seen:
            return
        try:
            self._call("HeadBucket", bucket, None, lambda: self.client.head_bucket(Bucket=bucket))
        except NotFound:
            raise StoreError(f"bucket {bucket!r} does not exist", path=self._where(bucket)) from None
        self._buckets_seen.add(bucket)

    # -- the Store interface ----------------------------------------------------------------------------

    def head(self, key: str) -> ObjectInfo | None:
        bucket, name = self._location(key)
        try:
            response = self._call("HeadObject", bucket, name, lambda: self.client.head_object(Bucket=bucket, Key=name))
        except NotFound:
            self._check_bucket(bucket)
            return None
        self._buckets_seen.add(bucket)
        return _info(key, response)

    def get(self, key: str, *, byte_range: tuple[int, int] | None = None) -> S3Reader:
        bucket, name = self._location(key)
        extra = {"Range": f"bytes={byte_range[0]}-{byte_range[1]}"} if byte_range else {}
        try:
            response = self._call(
                "GetObject", bucket, name, lambda: self.client.get_object(Bucket=bucket, Key=name, **extra)
            )
        except NotFound:
            self._check_bucket(bucket)
            raise
        return S3Reader(key, response, self._where(bucket, name))

    def put(self, key: str, data: bytes, *, content_type: str, cache_control: str | None = None) -> bool:
        return self.put_object(key, data, sha256_b64(data), content_type=content_type, cache_control=cache_control)

    def put_object(
        self,
        key: str,
        body: bytes | bytearray,
        checksum_sha256: str,
        *,
        content_type: str,
        cache_control: str | None,
    ) -> bool:
        bucket, name = self._location(key)
        extra = {"CacheControl": cache_control} if cache_control else {}

        def put() -> Any:
            return self.client.put_object(
                Bucket=bucket,
                Key=name,
                Body=body,
                ContentType=content_type,
                ChecksumSHA256=checksum_sha256,
                IfNoneMatch="*",
                **extra,
            )

        return self._create("PutObject", bucket, name, put)

    def _create(self, operation: str, bucket: str, name: str, fn: Callable[[], Any]) -> bool:
        """A create-only request: True if it created the object, False if the key was taken."""
        try:
            call_with_retry(fn, is_transient, self.retry_policy)
        except Exception as exc:
            if _error_code(exc) in _PRECONDITION_CODES:
                return False
            raise self._translate(exc, operation, bucket, name) from None
        return True

    def copy(self, source: str, dest: str) -> bool:
        info = self.head(source)
        if info is None:
            raise NotFound("no such object to copy", path=self._where(*self._location(source)))
        src_bucket, src_name = self._location(source)
        bucket, name = self._location(dest)
        copy_source = {"Bucket": src_bucket, "Key": src_name}
        if info.size <= self.max_single_copy:
            return self._create(
                "CopyObject",
                bucket,
                name,
                lambda: self.client.copy_object(Bucket=bucket, Key=name, CopySource=copy_source, IfNoneMatch="*"),
            )
        return self._multipart_copy(info, copy_source, dest)

    def _multipart_copy(self, info: ObjectInfo, copy_source: dict[str, str], dest: str) -> bool:
        """UploadPartCopy for objects over CopyObject's 5 GiB limit."""
        upload_id = self.create_multipart(
            dest, content_type=info.content_type, cache_control=info.cache_control, checksums=False
        )
        bucket, name = self._location(dest)
        try:
            parts = []
            for number, start in enumerate(range(0, info.size, self.copy_part_size), start=1):
                end = min(start + self.copy_part_size, info.size) - 1
                response = self._call(
                    "UploadPartCopy",
                    bucket,
                    name,
                    functools.partial(
                        self.client.upload_part_copy,
                        Bucket=bucket,
                        Key=name,
                        UploadId=upload_id,
                        PartNumber=number,
                        CopySource=copy_source,
                        CopySourceRange=f"bytes={start}-{end}",
                    ),
                )
                parts.append({"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]})
            created = self.complete_multipart(dest, upload_id, parts)
        except BaseException:
            self.abort_multipart(dest, upload_id)
            raise
        return created

    def delete(self, key: str) -> None:
        bucket, name = self._location(key)
        self._call("DeleteObject", bucket, name, lambda: self.client.delete_object(Bucket=bucket, Key=name))

    def list_keys(self, prefix: str) -> Iterator[str]:
        bucket, name = self._location(prefix.rstrip("/") + "/x")
        full_prefix = name[:-1]
        strip = len(self.prefix) + 1 if self.prefix else 0
        token: dict[str, str] = {}
        while True:
            response = self._call(
                "ListObjectsV2",
                bucket,
                full_prefix,
                functools.partial(self.client.list_objects_v2, Bucket=bucket, Prefix=full_prefix, **token),
            )
            for item in response.get("Contents", []):
                yield item["Key"][strip:]
            if not response.get("IsTruncated"):
                return
            token = {"ContinuationToken": response["NextContinuationToken"]}

    def abort_stale_uploads(self, older_than: float = 86400.0, prefix: str = "sha256/") -> list[str]:
        """Abort multipart uploads under `prefix` started more than `older_than` seconds ago.

        The tee aborts its own uploads, retrying through short outages; this sweeps
        the ones a client could not abort (crash, or a server down for longer).
        """
        import datetime

        bucket, name = self._location(prefix.rstrip("/") + "/x")
        full_prefix = name[:-1]
        cutoff = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=older_than)
        aborted: list[str] = []
        marker: dict[str, str] = {}
        while True:
            response = self._call(
                "ListMultipartUploads",
                bucket,
                full_prefix,
                functools.partial(self.client.list_multipart_uploads, Bucket=bucket, Prefix=full_prefix, **marker),
            )
            for upload in response.get("Uploads", []):
                if upload["Initiated"] <= cutoff:
                    self._call(
                        "AbortMultipartUpload",
                        bucket,
                        upload["Key"],
                        functools.partial(
                            self.client.abort_multipart_upload,
                            Bucket=bucket,
                            Key=upload["Key"],
                            UploadId=upload["UploadId"],
                        ),
                    )
                    aborted.append(upload["Key"])
            if not response.get("IsTruncated"):
                return aborted
            marker = {"KeyMarker": response["NextKeyMarker"], "UploadIdMarker": response["NextUploadIdMarker"]}

    def writer(
        self, key: str, *, content_type: str, cache_control: str | None, part_size: int, concurrency: int
    ) -> Any:
        from fastpack.upload.tee import MultipartWriter

        return MultipartWriter(
            self,
            check_key(key),
            content_type=content_type,
            cache_control=cache_control,
            part_size=part_size,
            concurrency=concurrency,
        )

    # -- multipart primitives used by the tee ---------------------------------------------------------

    def create_multipart(
        self, key: str, *, content_type: str | None, cache_control: str | None, checksums: bool = True
    ) -> str:
        """Start a multipart upload; `checksums`: every part carries its SHA-256 (not for UploadPartCopy)."""
        bucket, name = self._location(key)
        extra: dict[str, str] = {"ChecksumAlgorithm": "SHA256"} if checksums else {}
        if content_type:
            extra["ContentType"] = content_type
        if cache_control:
            extra["CacheControl"] = cache_control
        response = self._call(
            "CreateMultipartUpload",
            bucket,
            name,
            lambda: self.client.create_multipart_upload(Bucket=bucket, Key=name, **extra),
        )
        return str(response["UploadId"])

    def upload_part(self, key: str, upload_id: str, number: int, body: bytearray) -> dict[str, Any]:
        bucket, name = self._location(key)
        checksum = sha256_b64(body)
        response = self._call(
            "UploadPart",
            bucket,
            name,
            lambda: self.client.upload_part(
                Bucket=bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=body, ChecksumSHA256=checksum
            ),
        )
        return {"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": checksum}

    def complete_multipart(self, key: str, upload_id: str, parts: list[dict[str, Any]]) -> bool:
        """Complete with If-None-Match: *; when the key was taken meanwhile, abort ours and say so."""
        bucket, name = self._location(key)
        created = self._create(
            "CompleteMultipartUpload",
            bucket,
            name,
            lambda: self.client.complete_multipart_upload(
                Bucket=bucket, Key=name, UploadId=upload_id, MultipartUpload={"Parts": parts}, IfNoneMatch="*"
            ),
        )
        if not created:
            self.abort_multipart(key, upload_id)
        return created

    def abort_multipart(self, key: str, upload_id: str) -> bool:
        """Best effort (this runs while another error propagates): False, logged, if it failed."""
        bucket, name = self._location(key)
        try:
            self._call(
                "AbortMultipartUpload",
                bucket,
                name,
                lambda: self.client.abort_multipart_upload(Bucket=bucket, Key=name, UploadId=upload_id),
                self.abort_policy,
            )
        except NotFound:
            return True
        except Exception as exc:
            log.warning("could not abort multipart upload %s of %s: %s", upload_id, self._where(bucket, name), exc)
            return False
        return True


def _info(key: str, response: Mapping[str, Any]) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=int(response["ContentLength"]) if "ContentRange" not in response else _full_size(response),
        etag=str(response["ETag"]),
        content_type=response.get("ContentType"),
        cache_control=response.get("CacheControl"),
    )


def _full_size(response: Mapping[str, Any]) -> int:
    total = str(response["ContentRange"]).rpartition("/")[2]
    return int(total) if total.isdigit() else int(response["ContentLength"])


class S3Reader:
    """A streamed GET body; `info` is the whole object (size from Content-Range for ranged reads)."""

    def __init__(self, key: str, response: Mapping[str, Any], where: str) -> None:
        self.info = _info(key, response)
        self.length = int(response["ContentLength"])
        self._body = response["Body"]
        self._where = where

    def __iter__(self) -> Iterator[bytes]:
        from botocore.exceptions import BotoCoreError

        try:
            yield from self._body.iter_chunks(READ_CHUNK)
        except BotoCoreError as exc:
            raise StoreError(f"S3 download failed: {exc}", path=self._where) from None
        finally:
            self.close()

    def read(self) -> bytes:
        return b"".join(self)

    def close(self) -> None:
        self._body.close()

    def __enter__(self) -> S3Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
