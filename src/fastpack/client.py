"""Publishing through a `fastpack serve` (or reference-compatible) server: `fastpack publish --server`.

Protocol (SPEC §6): HEAD the canonical bundle; when the server already has it,
hash the local file to prove it is that bundle and finalize with the canonical
key (no upload). Otherwise stream the file once to upload-proxy, hashing the
same chunks, then finalize the staging key; any failure after the upload aborts
the staging object. Connection failures, 429 and 502-504 are retried.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastpack.errors import FastpackError, HashMismatch, InputError, MissingDependency, UsageError
from fastpack.hashing import BundleDigest, file_chunks
from fastpack.progress import Progress
from fastpack.sinks import FanOut
from fastpack.store import BUNDLE_NAME, canonical_key
from fastpack.upload.retry import DEFAULT_POLICY, RetryPolicy, call_with_retry

API = "/api/ext-bundles"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
DEFAULT_TIMEOUT = 60.0

_HINTS = {
    "UNAUTHORIZED": "pass --token or set FASTPACK_TOKEN (or ALGA_ADMIN_HEADER=true where the server trusts it)",
    "FORBIDDEN": "this token may not publish; ask for a publish token",
    "EXTENSION_VERSION_ALREADY_EXISTS": "this name@version is published with other content; bump the version",
    "PAYLOAD_TOO_LARGE": "the server's EXT_BUNDLES_MAX_BYTES is smaller than this bundle",
    "RATE_LIMITED": "the server's rate limit was hit; try again later",
    "INVALID_SIGNATURE": "sign the bundle with `fastpack sign` and pass --signature/--signature-algorithm",
}
# HEAD responses have no body: their status says what the code would have been.
_STATUS_CODES = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 413: "PAYLOAD_TOO_LARGE", 429: "RATE_LIMITED"}


@dataclass(frozen=True)
class ServerTarget:
    """Where and as whom to publish."""

    base_url: str
    token: str | None = None
    admin_header: bool = False
    timeout: float = DEFAULT_TIMEOUT
    retry: RetryPolicy = DEFAULT_POLICY

    @classmethod
    def from_env(
        cls, server: str | None, token: str | None, environ: dict[str, str] | os._Environ[str] | None = None
    ) -> ServerTarget:
        """--server/--token beat SERVER_BASE/FASTPACK_TOKEN; ALGA_ADMIN_HEADER=true adds the legacy header."""
        env = os.environ if environ is None else environ
        base = server or env.get("SERVER_BASE")
        if not base:
            raise UsageError("no server: pass --server URL or set SERVER_BASE")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"server must be an http(s):// URL, got {base!r}")
        return cls(
            base_url=base.rstrip("/"),
            token=token or env.get("FASTPACK_TOKEN") or None,
            admin_header=env.get("ALGA_ADMIN_HEADER", "").strip().lower() == "true",
        )


class _Retryable(Exception):
    def __init__(self, response: Any) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class ServerClient:
    """Thin typed wrapper over the HTTP API; every error becomes the matching `FastpackError`."""

    def __init__(self, target: ServerTarget, request_id: str | None = None) -> None:
        try:
            import httpx
        except ImportError:
            raise MissingDependency("publishing to a server needs httpx: pip install 'fastpack[server]'") from None

        self.target = target
        self.request_id = request_id or f"fastpack-{uuid.uuid4().hex}"
        headers = {"user-agent": "fastpack", "x-request-id": self.request_id}
        if target.token:
            headers["authorization"] = f"Bearer {target.token}"
        if target.admin_header:
            headers["x-alga-admin"] = "true"
        self._httpx = httpx
        self.http = httpx.Client(
            base_url=target.base_url, headers=headers, timeout=httpx.Timeout(target.timeout, connect=10.0)
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def has_bundle(self, sha256: str) -> bool:
        response = self._send(lambda: self.http.head(f"{API}/{canonical_key(sha256)}"))
        if response.status_code == 404:
            return False
        self._raise_for(response, "checking whether the server has the bundle")
        return True

    def upload(
        self, path: str, *, size: int, declared_hash: str | None, quiet: bool = True
    ) -> tuple[dict[str, Any], BundleDigest]:
        """Stream the file to upload-proxy; returns the server's JSON and the digest of what was sent."""
        params = {"filename": os.path.basename(path), "size": str(size)}
        if declared_hash:
            params["declaredHash"] = declared_hash
        sent: dict[str, FanOut] = {}

        def attempt() -> Any:
            sent["fanout"] = fanout = FanOut([])
            progress = Progress.for_terminal(f"uploading {os.path.basename(path)}", size, quiet=quiet)
            return self.http.post(
                f"{API}/upload-proxy",
                params=params,
                content=_file_chunks(path, fanout, progress),
                headers={"content-type": "application/octet-stream", "content-length": str(size)},
            )

        response = self._send(attempt)
        self._raise_for(response, "upload refused")
        return response.json(), sent["fanout"].bundle_digest()

    def finalize(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self._send(lambda: self.http.post(f"{API}/finalize", json=body))
        self._raise_for(response, "finalize refused")
        result: dict[str, Any] = response.json()
        return result

    def abort(self, key: str) -> None:
        response = self._send(lambda: self.http.post(f"{API}/abort", json={"key": key}))
        self._raise_for(response, "abort refused")

    def _send(self, request: Callable[[], Any]) -> Any:
        """One request with retries for transport failures and 429/502/503/504."""

        def attempt() -> Any:
            response = request()
            if response.status_code in RETRY_STATUSES:
                raise _Retryable(response)
            return response

        def transient(exc: BaseException) -> bool:
            return isinstance(exc, _Retryable | self._httpx.TransportError)

        try:
            return call_with_retry(attempt, transient, self.target.retry)
        except _Retryable as exc:
            return exc.response
        except self._httpx.TransportError as exc:
            raise FastpackError(
                f"cannot reach the server: {exc or type(exc).__name__}", path=self.target.base_url
            ) from None

    def _raise_for(self, response: Any, doing: str) -> None:
        if response.status_code < 400:
            return
        raise server_error(response, doing, self.target.base_url)


def server_error(response: Any, doing: str, base_url: str) -> FastpackError:
    """The FastpackError subclass whose code the server sent, with a message saying what to do."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    status = response.status_code
    code = str(body.get("code") or _STATUS_CODES.get(status, f"HTTP_{status}"))
    message = str(body.get("error") or response.reason_phrase or "no message")
    details = body.get("details")
    text = f"{doing}: {message} [{code}]"
    issues = details.get("issues") if isinstance(details, dict) else None
    if isinstance(issues, list) and issues and code == "INVALID_MANIFEST":
        text += "".join(
            f"\n  {issue.get('path')}: {issue.get('message')}" for issue in issues if isinstance(issue, dict)
        )
    if code in _HINTS:
        text += f" ({_HINTS[code]})"
    if status >= 500:
        text += f" (server error; request id {response.headers.get('x-request-id', '?')})"
    error_class = _error_classes().get(code, FastpackError)
    return error_class(text, path=base_url, details=details)


def _error_classes() -> dict[str, type[FastpackError]]:
    classes: dict[str, type[FastpackError]] = {}
    pending: list[type[FastpackError]] = [FastpackError]
    while pending:
        cls = pending.pop()
        classes.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return classes


def _file_chunks(path: str, fanout: FanOut, progress: Progress) -> Iterator[bytes]:
    """The file's bytes for httpx, each chunk hashed by `fanout` as it goes out (the one read)."""
    for chunk in file_chunks(path, fresh=True):
        fanout.write(chunk)
        progress.update(len(chunk))
        yield chunk
    progress.close()


def publish_via_server(
    target: ServerTarget,
    bundle: str,
    *,
    manifest: bytes | None = None,
    declared_hash: str | None = None,
    signature: tuple[str, str] | None = None,
    quiet: bool = True,
) -> dict[str, Any]:
    """Publish `bundle` through the server; returns the finalize JSON plus `uploaded`."""
    try:
        size = os.stat(bundle).st_size
    except FileNotFoundError:
        raise InputError("no such file", path=bundle) from None
    except OSError as exc:
        raise InputError(f"cannot read bundle: {exc.strerror}", path=bundle) from None
    if size == 0:
        raise InputError("bundle is empty", path=bundle)
    body: dict[str, Any] = {}
    if manifest is not None:
        try:
            body["manifestJson"] = manifest.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("manifest is not UTF-8 text") from None
    if signature is not None:
        body["signature"] = {"text": signature[0], "algorithm": signature[1]}
    with ServerClient(target) as client:
        if declared_hash and client.has_bundle(declared_hash):
            digest = BundleDigest.from_file(bundle)
            _check_hash(bundle, digest.sha256, declared_hash)
            key, uploaded = canonical_key(declared_hash, BUNDLE_NAME), False
            sha256 = declared_hash
        else:
            reply, digest = client.upload(bundle, size=size, declared_hash=declared_hash, quiet=quiet)
            sha256 = digest.sha256
            key, uploaded = reply["upload"]["key"], True
            if reply.get("sha256") != sha256 or digest.size != size:
                client.abort(key)
                raise HashMismatch(
                    f"the server received bytes hashing to {reply.get('sha256')}, but {sha256} were sent "
                    "(did the file change while it was being sent?)",
                    path=bundle,
                )
        body.update(key=key, size=size, declaredHash=sha256)
        try:
            result = client.finalize(body)
        except FastpackError:
            if uploaded:
                _abort_quietly(client, key)
            raise
    result["uploaded"] = uploaded and bool(result.get("uploaded", True))
    return result


def _check_hash(bundle: str, actual: str, declared: str) -> None:
    if actual != declared:
        raise HashMismatch(f"bundle hashes to {actual}, but {declared} was declared", path=bundle)


def _abort_quietly(client: ServerClient, key: str) -> None:
    """Best effort: the finalize error is what the user needs to see, not a failed cleanup."""
    with contextlib.suppress(FastpackError):
        client.abort(key)
