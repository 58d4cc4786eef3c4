"""The two caches of `fastpack batch`: local (this machine) and fleet (in the store).

Both map an input-tree digest to the bundle it packs to. They are optimizations
only: a missing, unreadable or corrupted entry reads as a miss (→ pack), and a
bundle is never trusted on the cache's word alone — a local bundle must still
have the stat identity it had when written (else it is re-hashed), and a bundle
fetched from the store is hashed while it downloads.

Local layout (`--cache-dir`): `bundles/<digest>.json` and `stat/<path hash>.bin`
(see statcache). Fleet layout: `cache/<digest>.json` in the store, written
after the bundle is published there, so an entry never names a missing bundle.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import xxhash

from fastpack.errors import HashMismatch, OutputError, SizeMismatch
from fastpack.tree import display

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
FLEET_PREFIX = "cache/"


def replace_file(path: str, data: bytes) -> None:
    """Atomic (temp + rename) but not fsynced: losing a cache file after a crash only costs a repack."""
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    except OSError as exc:
        raise OutputError(f"cannot write the batch cache: {exc.strerror}", path=display(directory)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise OutputError(f"cannot write the batch cache: {exc.strerror}", path=display(path)) from None


def default_cache_dir(environ: Mapping[str, str]) -> str:
    """FASTPACK_CACHE_DIR, else $XDG_CACHE_HOME/fastpack/batch, else ~/.cache/fastpack/batch."""
    if environ.get("FASTPACK_CACHE_DIR"):
        return environ["FASTPACK_CACHE_DIR"]
    cache_home = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache_home, "fastpack", "batch")


@dataclass(frozen=True)
class CachedBundle:
    """What a digest packs to."""

    sha256: str
    size: int
    name: str
    version: str

    @classmethod
    def from_json(cls, data: Any) -> CachedBundle | None:
        """None unless every field is present and well-formed (a corrupted entry is a miss)."""
        if not isinstance(data, dict):
            return None
        sha256, size, name, version = (data.get(key) for key in ("sha256", "size", "name", "version"))
        if not (isinstance(sha256, str) and _HEX64.match(sha256)):
            return None
        if not (isinstance(size, int) and not isinstance(size, bool) and size > 0):
            return None
        if not (isinstance(name, str) and name and isinstance(version, str) and version):
            return None
        return cls(sha256, size, name, version)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def file_identity(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


@dataclass
class LocalRecord:
    bundle: CachedBundle
    path: str  # where the bundle was written
    identity: list[int] | None  # its stat identity then
    published: list[str] = field(default_factory=list)  # stores it is known to be published to


def _load_json(path: str) -> Any:
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read())
    except (OSError, ValueError):
        return None


class LocalCache:
    """digest → bundle on this machine, plus the per-extension stat caches."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def stat_path(self, extension_path: str) -> str:
        name = xxhash.xxh3_128_hexdigest(os.fsencode(os.path.abspath(extension_path)))
        return os.path.join(self.root, "stat", f"{name}.bin")

    def _record_path(self, digest: str) -> str:
        return os.path.join(self.root, "bundles", f"{digest}.json")

    def lookup(self, digest: str) -> LocalRecord | None:
        data = _load_json(self._record_path(digest))
        bundle = CachedBundle.from_json(data)
        if bundle is None:
            return None
        path, identity, published = data.get("path"), data.get("identity"), data.get("published", [])
        if not isinstance(path, str) or not isinstance(published, list):
            return None
        if not (isinstance(identity, list) and all(isinstance(value, int) for value in identity)):
            identity = None
        return LocalRecord(bundle, path, identity, sorted({store for store in published if isinstance(store, str)}))

    def record(self, digest: str, record: LocalRecord) -> None:
        data = {**record.bundle.to_json(), "path": record.path, "identity": record.identity}
        data["published"] = record.published
        replace_file(self._record_path(digest), json.dumps(data, sort_keys=True).encode())


class FleetCache:
    """digest → bundle hash shared by every machine that publishes to the same store."""

    def __init__(self, store: Any) -> None:
        self.store = store

    @staticmethod
    def key(digest: str) -> str:
        return f"{FLEET_PREFIX}{digest}.json"

    def lookup(self, digest: str) -> tuple[CachedBundle | None, bool]:
        """(entry, present): a present but corrupted entry is (None, True)."""
        from fastpack.errors import NotFound

        try:
            with self.store.get(self.key(digest)) as reader:
                data = reader.read()
        except NotFound:
            return None, False
        try:
            return CachedBundle.from_json(json.loads(data)), True
        except ValueError:
            return None, True

    def record(self, digest: str, bundle: CachedBundle, *, replace: bool = False) -> None:
        """Write the entry (objects are immutable: a corrupted one is deleted first when `replace`)."""
        key = self.key(digest)
        if replace:
            self.store.delete(key)
        payload = json.dumps({**bundle.to_json(), "digest": digest}, sort_keys=True).encode()
        self.store.put(key, payload, content_type="application/json")

    def fetch(self, bundle: CachedBundle, target: str) -> None:
        """Download the bundle to `target` (+ sidecar), committed only if its size and SHA-256 match."""
        from fastpack.sinks import BundleFileSink, FanOut
        from fastpack.store import canonical_key

        key = canonical_key(bundle.sha256)
        with self.store.get(key) as reader, FanOut([BundleFileSink(target)]) as fanout:
            for chunk in reader:
                fanout.write(chunk)
                if fanout.size > bundle.size:
                    raise SizeMismatch(
                        f"stored bundle is longer than the {bundle.size} bytes the fleet cache says", path=key
                    )
            got = fanout.bundle_digest()
            if got.size != bundle.size:
                raise SizeMismatch(f"stored bundle has {got.size} bytes, the fleet cache says {bundle.size}", path=key)
            if got.sha256 != bundle.sha256:
                raise HashMismatch(f"stored bundle hashes to {got.sha256}, fleet cache says {bundle.sha256}", path=key)
            fanout.commit()
