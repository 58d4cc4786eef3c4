"""Publishing: a bundle's bytes, its manifest and signature, and the version index, in a store (SPEC §5).

The CLI (`publish`, `pack --publish`) and the HTTP server (upload-proxy,
finalize, abort) all go through here. A bundle is read once: the same pass
hashes it, uploads it, and walks it with the safe bundle reader to take its
manifest and member list, so a bad bundle, manifest or signature is refused
before the upload is completed. Writes are ordered so that a crash never leaves
an index entry without its bundle: canonical bundle, manifest, signature, and
the index entry last, each created only if absent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from fastpack.errors import (
    BundleError,
    FastpackError,
    HashMismatch,
    InputError,
    ManifestError,
    ManifestMismatch,
    NotFound,
    SignatureError,
    SizeMismatch,
    StoreError,
    UsageError,
    VersionConflict,
)
from fastpack.hashing import BundleDigest, file_chunks
from fastpack.sinks import FanOut
from fastpack.store import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PART_SIZE,
    IMMUTABLE,
    INDEX_PREFIX,
    Store,
    canonical_key,
    check_key,
    is_staging_key,
    new_staging_key,
)
from fastpack.upload.tee import UploadResult, UploadSink, promote, stage_stream

if TYPE_CHECKING:
    from fastpack.bundle import BundleLimits, BundleSummary
    from fastpack.sign.trust import Trust

_HEX = re.compile(r"^[0-9a-f]{64}$")
_CANONICAL_BUNDLE = re.compile(r"^sha256/([0-9a-f]{64})/bundle\.tar\.zst$")
_BAD_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")
JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"
MAX_PATCH_ATTEMPTS = 50
LOCAL_MAX_TAR_SIZE = 1 << 40


@dataclass(frozen=True)
class SignatureInput:
    text: str
    algorithm: str


@dataclass(frozen=True)
class StagedUpload:
    key: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PublishResult:
    extension: str
    version: str
    content_hash: str
    canonical_key: str
    manifest_key: str
    index_key: str
    uploaded: bool
    signature: dict[str, Any] | None
    size: int
    published_at: str

    def to_json(self) -> dict[str, object]:
        return {
            "extension": self.extension,
            "version": self.version,
            "contentHash": self.content_hash,
            "canonicalKey": self.canonical_key,
            "manifestKey": self.manifest_key,
            "indexKey": self.index_key,
            "uploaded": self.uploaded,
            "signature": self.signature,
            "size": self.size,
            "publishedAt": self.published_at,
        }


def check_sha256(value: str, what: str = "declared hash") -> str:
    if not isinstance(value, str) or not _HEX.match(value):
        raise UsageError(f"{what} must be 64 lowercase hex characters (a SHA-256), got {value!r}")
    return value


# -- one pass over the bundle's bytes ---------------------------------------------------------------------


class _TeeReader(io.RawIOBase):
    """The bundle reader pulls bytes through this; each read also goes to the FanOut (hash + upload)."""

    def __init__(self, chunks: Iterable[bytes], fanout: FanOut, progress: Any = None) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._fanout = fanout
        self._progress = progress
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            self._fanout.write(chunk)
            if self._progress is not None:
                self._progress.update(len(chunk))
            self._pending = memoryview(chunk).cast("B")
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Whole chunks when the caller asks for at least that much (no copy), else a slice."""
        if not self._fill():
            return b""
        count = len(self._pending) if size is None or size < 0 else min(size, len(self._pending))
        if count == len(self._pending) and isinstance(self._pending.obj, bytes):
            data = self._pending.obj if len(self._pending.obj) == count else self._pending.tobytes()
        else:
            data = self._pending[:count].tobytes()
        self._pending = self._pending[count:]
        return data

    def readinto(self, buffer: Any) -> int:
        if not self._fill():
            return 0
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def drain(self) -> None:
        """Whatever the bundle reader left (it stops at the frame's end) still has to be hashed."""
        self._pending = memoryview(b"")
        for chunk in self._chunks:
            self._fanout.write(chunk)


def _walk(chunks: Iterable[bytes], fanout: FanOut, label: str, limits: BundleLimits, progress: Any = None) -> Any:
    """Read the whole bundle once through the checking reader, feeding `fanout`; returns its summary."""
    from fastpack.bundle import BundleReader, collect

    reader = _TeeReader(chunks, fanout, progress)
    summary = collect(BundleReader(reader, limits, label))  # type: ignore[arg-type]
    reader.drain()
    return summary


# -- checks shared by every front end --------------------------------------------------------------------


def _manifest_bytes(manifest: str | bytes | os.PathLike[str] | None) -> bytes | None:
    if manifest is None or isinstance(manifest, bytes):
        return manifest
    from fastpack.manifest import read_manifest_file

    return read_manifest_file(os.fspath(manifest))


def _same_manifest(given: bytes, inside: bytes) -> bool:
    if given == inside:
        return True
    try:
        return bool(json.loads(given) == json.loads(inside))
    except ValueError:
        return False


def check_manifest(
    inside: bytes | None, given: bytes | None, member_names: Collection[str] | None, label: str
) -> dict[str, Any]:
    """The bundle's manifest: present, equal to the one given, valid, and consistent with the members."""
    from fastpack.manifest import check_bundle_consistency, load_manifest, manifest_error

    if inside is None:
        raise BundleError("no manifest.json at the bundle root", path=label)
    if given is not None and not _same_manifest(given, inside):
        raise ManifestMismatch("the manifest given differs from the bundle's manifest.json", path=label)
    try:
        doc = load_manifest(inside)
    except ManifestError as exc:
        exc.path = exc.path or f"{label}: manifest.json"
        raise
    issues = check_bundle_consistency(doc, member_names) if member_names is not None else []
    if issues:
        raise manifest_error(issues, path=f"{label}: manifest.json")
    name = doc["name"]
    if _BAD_NAME.search(name) or name in (".", "..") or name.startswith("."):
        raise ManifestError(
            f"name {name!r} cannot be stored: no '/', '\\', control characters or leading '.'",
            path=f"{label}: manifest.json",
            details={"issues": [{"path": "name", "message": "not usable as a storage key segment"}]},
        )
    return doc


def check_signature(
    signature: SignatureInput | None, trust: Trust | None, digest: BundleDigest
) -> dict[str, Any] | None:
    """With a trust bundle a signature is required and must verify; without one it is stored unverified."""
    from fastpack.sign import check_algorithm

    if signature is not None:
        check_algorithm(signature.algorithm)
        if not signature.text.strip():
            raise SignatureError("signature is empty")
    if trust is None:
        if signature is None:
            return None
        return {"algorithm": signature.algorithm, "verified": False, "signer": None}
    if signature is None:
        raise SignatureError(f"a signature is required: this store trusts only signed bundles ({trust.source})")
    info = trust.verify(signature.text, signature.algorithm, digest)
    return {"algorithm": info.algorithm, "verified": info.verified, "signer": info.signer}


# -- the writes after the bundle ------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _read_json(store: Store, key: str) -> Any:
    with store.get(key) as stream:
        data = stream.read()
    try:
        return json.loads(data)
    except ValueError:
        raise StoreError("version index entry is not valid JSON", path=key) from None


def _index_key(name: str, version: str) -> str:
    return check_key(f"{INDEX_PREFIX}{name}/{version}.json")


def _create_index(store: Store, name: str, version: str, entry: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """(created, the entry now at the key): the existing entry when the key was already taken."""
    key = _index_key(name, version)
    entry = {**entry, "version": version}
    if store.put(key, (json.dumps(entry, indent=2) + "\n").encode(), content_type=JSON_TYPE):
        return True, entry
    existing = _read_json(store, key)
    return False, existing if isinstance(existing, dict) else {}


def check_version_free(store: Store, manifest: dict[str, Any], sha256: str) -> None:
    """Refuse a known conflict before any canonical object is written (`_write_index` re-checks under races)."""
    name, version = manifest["name"], manifest["version"]
    if version.endswith(".*") or store.head(_index_key(name, version)) is None:
        return
    existing = _read_json(store, _index_key(name, version))
    if isinstance(existing, dict) and existing.get("contentHash") != sha256:
        raise VersionConflict(
            f"{name}@{version} is already published with content {existing.get('contentHash')}, not {sha256}",
            path=_index_key(name, version),
        )


def _write_index(store: Store, name: str, version: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Exact versions: create, or accept an identical hash (idempotent), else VersionConflict.
    `X.Y.*`: the published X.Y.N with this hash, else the next patch after the highest."""
    sha256 = entry["contentHash"]
    if not version.endswith(".*"):
        created, existing = _create_index(store, name, version, entry)
        if not created and existing.get("contentHash") != sha256:
            raise VersionConflict(
                f"{name}@{version} is already published with content {existing.get('contentHash')}, not {sha256}",
                path=_index_key(name, version),
            )
        return existing
    stem = version[:-1]
    pattern = re.compile(re.escape(stem) + r"(0|[1-9][0-9]*)\.json$")
    folder = f"{INDEX_PREFIX}{name}/"
    for _ in range(MAX_PATCH_ATTEMPTS):
        patches = sorted(
            int(match.group(1))
            for key in store.list_keys(folder)
            if (match := pattern.fullmatch(key.rsplit("/", 1)[-1]))
        )
        for patch in patches:
            existing = _read_json(store, _index_key(name, f"{stem}{patch}"))
            if isinstance(existing, dict) and existing.get("contentHash") == sha256:
                return existing
        created, existing = _create_index(store, name, f"{stem}{patches[-1] + 1 if patches else 0}", entry)
        if created or existing.get("contentHash") == sha256:
            return existing
    raise VersionConflict(f"could not find a free patch version for {name}@{version} (too much contention)")


def record(
    store: Store,
    manifest: dict[str, Any],
    manifest_bytes: bytes,
    sha256: str,
    size: int,
    *,
    uploaded: bool,
    signature: SignatureInput | None = None,
    signature_info: dict[str, Any] | None = None,
) -> PublishResult:
    """Everything after the canonical bundle exists: manifest, signature, then the index entry last."""
    bundle_key = canonical_key(sha256)
    manifest_key = canonical_key(sha256, "manifest.json")
    store.put(manifest_key, manifest_bytes, content_type=JSON_TYPE, cache_control=IMMUTABLE)
    if signature is not None:
        store.put(
            canonical_key(sha256, "SIGNATURE"), signature.text.encode(), content_type=TEXT_TYPE, cache_control=IMMUTABLE
        )
        store.put(
            canonical_key(sha256, "signature.json"),
            (json.dumps(signature_info, indent=2) + "\n").encode(),
            content_type=JSON_TYPE,
            cache_control=IMMUTABLE,
        )
    name, version = manifest["name"], manifest["version"]
    entry = _write_index(
        store,
        name,
        version,
        {
            "extension": name,
            "version": version,
            "contentHash": sha256,
            "publishedAt": _now(),
            "size": size,
            "canonicalKey": bundle_key,
            "manifestKey": manifest_key,
            "signature": signature_info,
        },
    )
    return PublishResult(
        extension=name,
        version=str(entry.get("version", version)),
        content_hash=sha256,
        canonical_key=bundle_key,
        manifest_key=manifest_key,
        index_key=_index_key(name, str(entry.get("version", version))),
        uploaded=uploaded,
        signature=signature_info,
        size=size,
        published_at=str(entry.get("publishedAt", "")),
    )


# -- front-end entry points -----------------------------------------------------------------------------


def _local_limits() -> BundleLimits:
    """Bundles from the publisher's own disk: the reader's ratio and entry limits, no total-size cap."""
    from fastpack.bundle import DEFAULT_LIMITS

    return dataclasses.replace(DEFAULT_LIMITS, max_total_size=LOCAL_MAX_TAR_SIZE)


def publish(
    bundle: str | os.PathLike[str],
    manifest: str | bytes | os.PathLike[str] | None,
    store: Store,
    *,
    declared_hash: str | None = None,
    signature: SignatureInput | None = None,
    trust: Trust | None = None,
    part_size: int = DEFAULT_PART_SIZE,
    concurrency: int = DEFAULT_CONCURRENCY,
    quiet: bool = True,
) -> PublishResult:
    """Publish a bundle file: one read hashes, uploads and checks it; the upload completes only if all is well.

    Without a declared hash, the bundle's sha256sum sidecar (as `pack` writes it)
    is taken as a hint: the bytes then go straight to their canonical key instead
    of through a staging object and a server-side copy. A stale sidecar only costs
    a second read (the hinted upload is aborted and the bundle staged instead).
    """
    path = os.fspath(bundle)
    given = _manifest_bytes(manifest)
    options: dict[str, Any] = {
        "signature": signature,
        "trust": trust,
        "part_size": part_size,
        "concurrency": concurrency,
        "quiet": quiet,
    }
    if declared_hash is not None:
        return _publish_file(path, given, store, check_sha256(declared_hash), hinted=False, **options)
    hint = _sidecar_hint(path)
    if hint is not None:
        with contextlib.suppress(_StaleSidecar):
            return _publish_file(path, given, store, hint, hinted=True, **options)
    return _publish_file(path, given, store, None, hinted=False, **options)


class _StaleSidecar(HashMismatch):
    """The sidecar's hash was not the bundle's: publish again without the hint."""


def _sidecar_hint(path: str) -> str | None:
    from fastpack.sidecar import read_sidecar, sidecar_path

    sidecar = sidecar_path(path)
    if not os.path.isfile(sidecar):
        return None
    try:
        return read_sidecar(sidecar)
    except FastpackError:
        return None


def _publish_file(
    path: str,
    given: bytes | None,
    store: Store,
    declared_hash: str | None,
    *,
    hinted: bool,
    signature: SignatureInput | None,
    trust: Trust | None,
    part_size: int,
    concurrency: int,
    quiet: bool,
) -> PublishResult:
    from fastpack.progress import Progress

    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=path) from None
    exists = declared_hash is not None and store.head(canonical_key(declared_hash)) is not None
    sink = None
    if not exists:
        sink = UploadSink(
            store,
            canonical_key(declared_hash) if declared_hash else new_staging_key(),
            declared_sha256=declared_hash,
            declared_size=size,
            part_size=part_size,
            concurrency=concurrency,
        )
    progress = Progress.for_terminal(f"publishing {os.path.basename(path)}", size, quiet=quiet)
    with FanOut([sink] if sink else []) as fanout:
        summary: BundleSummary = _walk(file_chunks(path, fresh=True), fanout, path, _local_limits(), progress)
        digest = fanout.bundle_digest()
        if declared_hash is not None and digest.sha256 != declared_hash:
            error = _StaleSidecar if hinted else HashMismatch
            raise error(f"bundle hashes to {digest.sha256}, declared {declared_hash}", path=path)
        doc = check_manifest(summary.manifest, given, summary.names, path)
        signature_info = check_signature(signature, trust, digest)
        check_version_free(store, doc, digest.sha256)
        fanout.commit()
    progress.close()
    if sink is None:
        uploaded = False
    elif declared_hash is None:
        uploaded = promote(store, sink.key, digest.sha256, digest.size).uploaded
    else:
        uploaded = bool(sink.created)
    assert summary.manifest is not None
    return record(
        store,
        doc,
        summary.manifest,
        digest.sha256,
        digest.size,
        uploaded=uploaded,
        signature=signature,
        signature_info=signature_info,
    )


def publish_staged_pack(
    store: Store, staged: UploadResult, manifest_bytes: bytes, member_names: Collection[str] | None, *, label: str
) -> PublishResult:
    """After `pack` streamed its output into a staging key: check the manifest, promote to canonical, record.

    `member_names` None: pack already checked the manifest against the tree it packed.
    """
    try:
        doc = check_manifest(manifest_bytes, None, member_names, label)
    except BaseException:
        store.delete(staged.key)
        raise
    uploaded = promote(store, staged.key, staged.sha256, staged.size).uploaded
    return record(store, doc, manifest_bytes, staged.sha256, staged.size, uploaded=uploaded)


def stage_upload(
    store: Store,
    chunks: Iterable[bytes],
    *,
    size: int | None,
    declared_hash: str | None = None,
    max_bytes: int | None = None,
    part_size: int = DEFAULT_PART_SIZE,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> StagedUpload:
    """The upload-proxy: bytes to a fresh staging key, kept only if their size (and hash) are as declared."""
    if declared_hash is not None:
        check_sha256(declared_hash)
    if size is not None and size < 0:
        raise UsageError(f"size must not be negative, got {size}")
    staged, _ = stage_stream(
        chunks,
        store,
        size=size,
        declared_hash=declared_hash,
        max_bytes=max_bytes,
        part_size=part_size,
        concurrency=concurrency,
    )
    return StagedUpload(staged.key, staged.size, staged.sha256)


def _finalizable(key: str) -> str | None:
    """None for a staging key, the hash for a canonical bundle key; anything else is refused."""
    check_key(key)
    if is_staging_key(key):
        return None
    match = _CANONICAL_BUNDLE.match(key)
    if match is None:
        raise UsageError(
            f"cannot finalize {key!r}: expected a staging key (sha256/_staging/<id>/bundle.tar.zst) "
            "or a canonical bundle key (sha256/<hex>/bundle.tar.zst)"
        )
    return match.group(1)


def finalize_staged(
    store: Store,
    key: str,
    *,
    size: int | None = None,
    declared_hash: str | None = None,
    manifest_json: str | bytes | None = None,
    signature: SignatureInput | None = None,
    trust: Trust | None = None,
) -> PublishResult:
    """The finalize step: verify the stored bytes in one streamed read, then publish them.

    A staged object whose bytes are not as declared, or that is not a valid
    bundle, is removed; a manifest or signature the caller got wrong leaves it
    in place for another attempt (or `abort_staged`).
    """
    from fastpack.bundle import DEFAULT_LIMITS

    key_hash = _finalizable(key)
    if declared_hash is not None:
        check_sha256(declared_hash)
    given = manifest_json.encode() if isinstance(manifest_json, str) else manifest_json
    info = store.head(key)
    if info is None:
        raise NotFound("nothing staged at this key (finalized or aborted already?)", path=key)
    staged = key_hash is None
    try:
        if size is not None and info.size != size:
            raise SizeMismatch(f"staged object has {info.size} bytes, declared {size}", path=key)
        with FanOut([]) as fanout, store.get(key) as stream:
            summary: BundleSummary = _walk(stream, fanout, key, DEFAULT_LIMITS)
        digest = fanout.bundle_digest()
        expected = declared_hash or key_hash
        if expected is not None and digest.sha256 != expected:
            raise HashMismatch(f"stored bytes hash to {digest.sha256}, expected {expected}", path=key)
        if digest.size != info.size:
            raise SizeMismatch(f"read {digest.size} bytes, the store said {info.size}", path=key)
    except (HashMismatch, SizeMismatch, BundleError):
        if staged:
            store.delete(key)
        raise
    try:
        doc = check_manifest(summary.manifest, given, summary.names, key)
    except ManifestError:
        if staged:
            store.delete(key)
        raise
    signature_info = check_signature(signature, trust, digest)
    check_version_free(store, doc, digest.sha256)
    uploaded = promote(store, key, digest.sha256, digest.size).uploaded if staged else False
    assert summary.manifest is not None
    return record(
        store,
        doc,
        summary.manifest,
        digest.sha256,
        digest.size,
        uploaded=uploaded,
        signature=signature,
        signature_info=signature_info,
    )


def abort_staged(store: Store, key: str) -> bool:
    """Remove a staging object (True if there was one); canonical and other keys are left alone."""
    check_key(key)
    if not is_staging_key(key):
        return False
    existed = store.head(key) is not None
    with contextlib.suppress(NotFound):
        store.delete(key)
    return existed
