"""One extension of a batch: digest → local cache → fleet cache → pack → publish.

Every outcome, success or failure, becomes an `ExtensionResult`; an error in one
extension never escapes to stop the others.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import blake3

from fastpack.batch.cache import CachedBundle, FleetCache, LocalCache, LocalRecord, file_identity
from fastpack.batch.digest import PackOptions, tree_digest
from fastpack.batch.discover import MANIFEST, Extension
from fastpack.batch.statcache import StatCache
from fastpack.errors import (
    FastpackError,
    HashMismatch,
    InputError,
    ManifestError,
    NotFound,
    OutputError,
    SizeMismatch,
    SourceChangedError,
    StoreError,
)
from fastpack.tree import Entry, display

BUNDLE_NAME = "bundle.tar.zst"
Status = Callable[[str], None]


@dataclass(frozen=True)
class ExtensionManifest:
    name: str
    version: str
    data: bytes  # the exact manifest.json bytes


def read_extension_manifest(extension: Extension) -> ExtensionManifest:
    """Validated manifest, with a name usable as OUT/<name>/ (npm-style `@scope/name` allowed)."""
    from fastpack.manifest import load_manifest, read_manifest_file

    path = os.path.join(extension.path, MANIFEST)
    data = read_manifest_file(path)
    try:
        doc = load_manifest(data)
    except ManifestError as exc:
        exc.path = display(path)
        raise
    name, version = doc["name"], doc["version"]
    if any(segment in ("", ".", "..") or "\\" in segment or "\0" in segment for segment in name.split("/")):
        raise ManifestError(f"name {name!r} cannot be used as an output directory", path=display(path))
    return ExtensionManifest(name, version, data)


def bundle_target(out: str, manifest: ExtensionManifest) -> str:
    return os.path.join(out, *manifest.name.split("/"), manifest.version, BUNDLE_NAME)


@dataclass
class ExtensionResult:
    """One JSON line of `fastpack batch --json`."""

    key: str  # the extension's path relative to its root (what --shard hashes)
    path: str
    status: str = "failed"  # packed | cached (local cache) | fetched (fleet cache) | failed
    extension: str | None = None  # manifest name, as in publish results
    version: str | None = None
    digest: str | None = None
    sha256: str | None = None
    size: int | None = None
    bundle: str | None = None
    published: dict[str, Any] | None = None
    files_hashed: int = 0
    files_reused: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None

    def fail(self, exc: FastpackError) -> None:
        self.status = "failed"
        self.error = {"code": exc.code, "message": exc.message, "path": exc.path}
        if exc.details is not None:
            self.error["details"] = exc.details

    @property
    def error_line(self) -> str:
        if self.error is None:
            return ""
        return f"{self.error['path']}: {self.error['message']}" if self.error["path"] else self.error["message"]

    def to_json(self) -> dict[str, Any]:
        data = {key: value for key, value in self.__dict__.items() if value is not None}
        if not self.warnings:
            data.pop("warnings")
        return data


@dataclass(frozen=True)
class JobContext:
    out: str
    options: PackOptions
    local: LocalCache
    threads: int
    backend: str | None = None
    store: Any = None  # fastpack.store.Store
    store_label: str | None = None

    @functools.cached_property
    def real_out(self) -> str:
        return os.path.realpath(self.out)

    @functools.cached_property
    def real_cache(self) -> str:
        return os.path.realpath(self.local.root)

    @property
    def fleet(self) -> FleetCache | None:
        return FleetCache(self.store) if self.store is not None else None


def _sidecar_ok(target: str, sha256: str) -> None:
    from fastpack.sidecar import read_sidecar, sidecar_path, sidecar_text
    from fastpack.sinks import write_atomic

    sidecar = sidecar_path(target)
    with contextlib.suppress(FastpackError):
        if read_sidecar(sidecar) == sha256:
            return
    write_atomic(sidecar, sidecar_text(sha256, target).encode())


def _verified(path: str, record: LocalRecord) -> bool:
    """The recorded bundle is still intact: same stat identity, or (if touched) the same bytes."""
    from fastpack.hashing import BundleDigest

    identity = file_identity(path)
    if identity is None:
        return False
    if identity == record.identity:
        return True
    if identity[0] != record.bundle.size:
        return False
    try:
        digest = BundleDigest.from_file(path)
    except FastpackError:
        return False
    return digest.sha256 == record.bundle.sha256 and digest.size == record.bundle.size


def _copy_verified(source: str, target: str, bundle: CachedBundle) -> None:
    from fastpack.hashing import READ_CHUNK
    from fastpack.sinks import BundleFileSink, FanOut

    with open(source, "rb") as handle, FanOut([BundleFileSink(target)]) as fanout:
        while chunk := handle.read(READ_CHUNK):
            fanout.write(chunk)
        if fanout.bundle_digest().sha256 != bundle.sha256:
            raise HashMismatch("cached bundle changed while being copied", path=display(source))
        fanout.commit()


def _reuse_local(record: LocalRecord, target: str) -> bool:
    """Target holds the recorded bundle, or now does (verified copy of the recorded path's file)."""
    if os.path.abspath(record.path) == os.path.abspath(target):
        return _verified(target, record)
    if _verified(target, dataclasses.replace(record, identity=None)):  # e.g. an older OUT, used again
        return True
    if not _verified(record.path, record):
        return False
    _copy_verified(record.path, target, record.bundle)
    return True


class _Build:
    def __init__(self, extension: Extension, manifest: ExtensionManifest, ctx: JobContext, status: Status) -> None:
        self.extension = extension
        self.manifest = manifest
        self.ctx = ctx
        self.status = status
        self.target = bundle_target(ctx.out, manifest)
        self.result = ExtensionResult(
            extension.key, extension.path, extension=manifest.name, version=manifest.version, bundle=self.target
        )

    def run(self) -> None:
        ctx, opts = self.ctx, self.ctx.options
        self._check_outside(ctx.real_out, "output")
        self._check_outside(ctx.real_cache, "cache")
        self.status("hashing")
        entries = self._scan()
        stats = StatCache(ctx.local.stat_path(self.extension.path))
        digest = tree_digest(entries, opts, self._checking_manifest(stats.content_hash))
        stats.save()
        self.result.digest = digest
        self.result.files_hashed, self.result.files_reused = stats.hashed, stats.hits

        record = ctx.local.lookup(digest)
        published = list(record.published) if record else []
        fleet_sound = True
        self._make_output_dir()
        if record and self._matches(record.bundle) and _reuse_local(record, self.target):
            bundle, self.result.status = record.bundle, "cached"
        else:
            fetched, fleet_sound = self._from_fleet(digest)
            if fetched is not None:
                bundle, self.result.status = fetched, "fetched"
                published = [ctx.store_label] if ctx.store_label else []
            else:
                bundle, self.result.status = self._pack(entries), "packed"
                published = []
        _sidecar_ok(self.target, bundle.sha256)
        self.result.sha256, self.result.size = bundle.sha256, bundle.size
        try:
            if ctx.store_label is not None and ctx.store_label not in published:
                self._publish(digest, bundle, replace_fleet_entry=not fleet_sound)
                published.append(ctx.store_label)
            elif ctx.store_label is not None:
                self.result.published = {"contentHash": bundle.sha256, "uploaded": False}
        finally:
            target = os.path.abspath(self.target)
            fresh = LocalRecord(bundle, target, file_identity(target), sorted(set(published)))
            if fresh != record:  # a warm run with nothing new writes nothing
                ctx.local.record(digest, fresh)

    def _checking_manifest(self, content_hash: Callable[[Entry], bytes]) -> Callable[[Entry], bytes]:
        """The digest must cover the manifest whose name and version were read before the job started."""

        def checked(entry: Entry) -> bytes:
            digest = content_hash(entry)
            if entry.name == MANIFEST.encode() and digest != blake3.blake3(self.manifest.data).digest():
                raise SourceChangedError("changed while the batch was running", path=display(entry.source))
            return digest

        return checked

    def _check_outside(self, directory: str, label: str) -> None:
        """The batch's own files must not be part of what it packs (they change on every run)."""
        source = self.extension.real_path
        if directory == source or directory.startswith(source + os.sep):
            raise InputError(
                f"the batch {label} directory {display(directory)} is inside this extension; choose one outside it",
                path=self.extension.display,
            )

    def _scan(self) -> list[Entry]:
        """The entries `pack` will see (native scan when available: same entries, faster)."""
        from fastpack.backend import backend_name, scan_tree

        backend = backend_name(self.ctx.backend)
        return list(scan_tree(self.extension.path, follow_symlinks=self.ctx.options.follow_symlinks, backend=backend))

    def _make_output_dir(self) -> None:
        try:
            os.makedirs(os.path.dirname(self.target), exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create output directory: {exc.strerror}", path=display(self.target)) from None

    def remove_empty_output_dirs(self) -> None:
        """After a failure: no empty OUT/<name>/<version>/ left behind (OUT itself stays)."""
        out = os.path.abspath(self.ctx.out)
        directory = os.path.dirname(os.path.abspath(self.target))
        while directory != out and directory.startswith(out + os.sep):
            try:
                os.rmdir(directory)
            except OSError:
                return
            directory = os.path.dirname(directory)

    def _matches(self, bundle: CachedBundle) -> bool:
        return (bundle.name, bundle.version) == (self.manifest.name, self.manifest.version)

    def _from_fleet(self, digest: str) -> tuple[CachedBundle | None, bool]:
        """(bundle fetched from the store or None, whether the fleet entry is sound or absent)."""
        fleet = self.ctx.fleet
        if fleet is None:
            return None, True
        bundle, present = fleet.lookup(digest)
        if bundle is None or not self._matches(bundle):
            if present:
                self.result.warnings.append(f"fleet cache entry {fleet.key(digest)} is corrupted; packing instead")
            return None, not present
        if _verified(self.target, LocalRecord(bundle, self.target, None)):
            return bundle, True  # OUT already holds it (e.g. restored by CI without the local cache)
        self.status("fetching")
        try:
            fleet.fetch(bundle, self.target)
        except (HashMismatch, SizeMismatch, NotFound) as exc:
            self.result.warnings.append(f"fleet cache entry not usable ({exc}); packing instead")
            return None, False
        return bundle, True

    def _pack(self, entries: list[Entry]) -> CachedBundle:
        from fastpack.pack import pack

        ctx, opts = self.ctx, self.ctx.options
        self.status("packing")
        packed = pack(
            self.extension.path,
            self.target,
            level=opts.level,
            threads=ctx.threads,
            mtime=opts.mtime,
            long_window=opts.long_window,
            follow_symlinks=opts.follow_symlinks,
            backend=ctx.backend,
            quiet=True,
        )
        if self._scan() != entries:
            for path in (packed.path, packed.sidecar):
                with contextlib.suppress(OSError):
                    os.unlink(path)
            raise InputError("extension changed while being packed; run the batch again", path=self.extension.display)
        return CachedBundle(packed.sha256, packed.size, self.manifest.name, self.manifest.version)

    def _publish(self, digest: str, bundle: CachedBundle, *, replace_fleet_entry: bool) -> None:
        """Publish (deduplicated by hash), then tell the fleet: the entry never precedes its bundle."""
        from fastpack.publish import publish

        self.status("publishing")
        result = publish(self.target, self.manifest.data, self.ctx.store, declared_hash=bundle.sha256, quiet=True)
        self.result.published = result.to_json()
        fleet = self.ctx.fleet
        assert fleet is not None  # publishing implies a store
        try:
            fleet.record(digest, bundle, replace=replace_fleet_entry)
        except StoreError as exc:
            self.result.warnings.append(f"could not write the fleet cache entry: {exc}")


def build_extension(
    extension: Extension, manifest: ExtensionManifest, ctx: JobContext, status: Status = lambda text: None
) -> ExtensionResult:
    """Make OUT/<name>/<version>/bundle.tar.zst for one extension, by the cheapest sound route."""
    started = time.perf_counter()
    build = _Build(extension, manifest, ctx, status)
    try:
        build.run()
    except FastpackError as exc:
        build.result.fail(exc)
    except Exception as exc:  # a bug or an unexpected OS error must not stop the other extensions
        build.result.fail(FastpackError(f"internal error: {type(exc).__name__}: {exc}", path=extension.display))
    if build.result.status == "failed":
        build.remove_empty_output_dirs()
    build.result.seconds = round(time.perf_counter() - started, 6)
    return build.result
